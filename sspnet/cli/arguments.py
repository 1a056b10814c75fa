"""argparse types for the value checks verbs share, so each check is written once and a wrong value is
argparse's own one-line error naming the option (`sspnet VERB: error: argument --queue: ...`, exit 2).

    parser.add_argument("--queue", type=positive_int, default=4)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number_type(kind: type, accept: Callable[[float], bool], requirement: str, name: str):
    """An argparse type: `kind` (int or a finite float) for which accept(value) holds."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}") from None
        if (kind is float and not math.isfinite(value)) or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
        return value

    parse.__name__ = name
    return parse


positive_int = _number_type(int, lambda v: v >= 1, "a positive integer", "positive_int")
non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0", "non_negative_int")
unit_interval = _number_type(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]", "unit_interval")  # score, IoU
non_negative_seconds = _number_type(float, lambda v: v >= 0, "a finite number of seconds >= 0", "non_negative_seconds")
positive_seconds = _number_type(float, lambda v: v > 0, "a finite number of seconds > 0", "positive_seconds")

__all__ = ["non_negative_int", "non_negative_seconds", "positive_int", "positive_seconds", "unit_interval"]
