"""The shared argparse types (sspnet/cli/arguments.py): what each accepts and refuses, and that a refused
value is argparse's one-line error naming the option (exit 2) before the verb runs."""

from __future__ import annotations

import argparse
import math

import pytest

from sspnet.cli import main
from sspnet.cli.arguments import non_negative_int, non_negative_seconds, positive_int, positive_seconds, unit_interval


@pytest.mark.parametrize(
    "kind, good, bad",
    [
        (positive_int, {"1": 1, "12": 12}, ["0", "-3", "1.5", "x", ""]),
        (non_negative_int, {"0": 0, "7": 7}, ["-1", "2.0", "nan"]),
        (unit_interval, {"0": 0.0, "1": 1.0, "0.25": 0.25}, ["-0.01", "1.01", "nan", "inf", "x"]),
        (non_negative_seconds, {"0": 0.0, "2.5": 2.5}, ["-1", "nan", "inf"]),
        (positive_seconds, {"0.1": 0.1}, ["0", "-0.5", "inf"]),
    ],
)
def test_types(kind, good, bad):
    for text, value in good.items():
        assert kind(text) == value and not (isinstance(value, float) and math.isnan(value))
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            kind(text)


@pytest.mark.parametrize(
    "option, value",
    [("--queue", "0"), ("--conf", "1.5"), ("--overlap", "-1"), ("--read-timeout", "0"), ("--vid-stride", "0")],
)
def test_a_refused_value_names_the_option(option, value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(tmp_path), "--model", str(tmp_path / "m.onnx"), option, value])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("sspnet predict: error: argument ") and option in last
