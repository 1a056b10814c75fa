"""The `sspnet` command: one verb per job, each in its own module under sspnet/cli/.

A verb module exposes `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Only the chosen verb's module is imported, so `sspnet predict --backend onnxruntime` works on a
device without torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# verb -> module name under sspnet.cli, in the order `sspnet --help` lists them.
VERBS = {
    "info": "info",
    "synth": "synth",
    "train": "train",
    "val": "val",
    "convert": "convert",
    "export": "export_onnx",
    "build-engine": "build_engine",
    "predict": "predict",
    "benchmark": "benchmark",
    "doctor": "doctor",
    "demo": "demo",
}


def _available_verbs() -> dict:
    return {
        verb: module
        for verb, module in VERBS.items()
        if importlib.util.find_spec(f"sspnet.cli.{module}") is not None
    }


def _print_usage(verbs: dict) -> None:
    print("usage: sspnet VERB [options]    (sspnet VERB --help for a verb's options)\n")
    print("verbs:")
    for verb, module in verbs.items():
        help_line = getattr(importlib.import_module(f"sspnet.cli.{module}"), "HELP", "")
        print(f"  {verb:<13} {help_line}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verbs = _available_verbs()
    if not argv or argv[0] in ("-h", "--help"):
        _print_usage(verbs)
        return 0
    verb = argv[0]
    if verb not in verbs:
        print(f"sspnet: unknown verb {verb!r}; choose from: {', '.join(verbs)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"sspnet.cli.{verbs[verb]}")
    parser = argparse.ArgumentParser(prog=f"sspnet {verb}", description=module.HELP)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("\nsspnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
