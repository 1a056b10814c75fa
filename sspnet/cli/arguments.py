"""argparse types for the value checks verbs share, so each check is written once and a wrong value is
argparse's own one-line error naming the option (`sspnet VERB: error: argument --queue: ...`, exit 2).

    parser.add_argument("--queue", type=positive_int, default=4)
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1] (a score or an IoU threshold)."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value:g}")
    return value


def non_negative_seconds(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {value:g}")
    return value


def positive_seconds(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {value:g}")
    return value


__all__ = ["non_negative_int", "non_negative_seconds", "positive_int", "positive_seconds", "unit_interval"]
