"""The `sspnet` command: one verb per job, each in its own module under sspnet/cli/.

A verb module exposes `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Only the chosen verb's module is imported, so `sspnet predict --backend onnxruntime` works on a
device without torch.

Errors have ONE handler, here: a user-facing error (sspnet.errors.SSPNetError, or an OS error about
a named file such as a missing input or a full disk) prints one line `sspnet VERB: ...` and exits 2
(1 for an environment fault such as a full disk); anything else is a bug and prints its traceback
plus a hint (exit 1). `--debug` anywhere on the line, or SSPNET_DEBUG=1, shows tracebacks always.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import os
import sys
import traceback

# verb -> module name under sspnet.cli, in the order `sspnet --help` lists them.
VERBS = {
    "info": "info",
    "data": "data",
    "synth": "synth",
    "train": "train",
    "val": "val",
    "convert": "convert",
    "export": "export_onnx",
    "build-engine": "build_engine",
    "predict": "predict",
    "track": "track",
    "benchmark": "benchmark",
    "quantize": "quantize",
    "doctor": "doctor",
    "demo": "demo",
}


def _available_verbs() -> dict:
    return {
        verb: module for verb, module in VERBS.items() if importlib.util.find_spec(f"sspnet.cli.{module}") is not None
    }


def _print_usage(verbs: dict) -> None:
    print("usage: sspnet VERB [options]    (sspnet VERB --help for a verb's options)\n")
    print("verbs:")
    for verb, module in verbs.items():
        help_line = getattr(importlib.import_module(f"sspnet.cli.{module}"), "HELP", "")
        print(f"  {verb:<13} {help_line}")


# OS errors that mean "the user named a path that cannot be used": exit 2, like any user mistake.
_USER_OS_ERRORS = (
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENAMETOOLONG,
    errno.EEXIST,
)


def _os_error_line(error: OSError) -> str:
    what = error.strerror or str(error)
    if error.filename is not None:
        what += f": {error.filename}"
    if error.errno == errno.ENOSPC:
        what += " (the file being written was not replaced: sspnet writes files atomically)"
    return what


def _debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    debug = os.environ.get("SSPNET_DEBUG", "").lower() not in ("", "0", "false", "no")
    if "--debug" in argv:
        debug = True
        argv = [a for a in argv if a != "--debug"]
    return debug, argv


def run_verb(verb: str, module, args, debug: bool) -> int:
    """Run one verb with the single error handler described in the module docstring."""
    from sspnet.errors import SSPNetError

    prefix = f"sspnet {verb}"
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{prefix}: interrupted", file=sys.stderr)
        return 130
    except SSPNetError as error:
        if debug:
            traceback.print_exc()
        print(f"{prefix}: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        if error.errno is None or (error.filename is None and error.errno != errno.ENOSPC):
            return _bug(prefix, error)
        if debug:
            traceback.print_exc()
        print(f"{prefix}: {_os_error_line(error)}", file=sys.stderr)
        return 2 if error.errno in _USER_OS_ERRORS else 1
    except MemoryError:
        if debug:
            traceback.print_exc()
        print(f"{prefix}: out of memory; try a smaller --batch, tile chunk or image size", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: show everything
        return _bug(prefix, error)


def _bug(prefix: str, error: BaseException) -> int:
    traceback.print_exception(error)
    print(
        f"{prefix}: unexpected error ({type(error).__name__}); this is a bug in sspnet, not in your input. "
        "Please report it with the traceback above (rerun with --debug for more).",
        file=sys.stderr,
    )
    return 1


def verb_parser(verb: str, module) -> argparse.ArgumentParser:
    """The parser of one verb; also what the docs' CLI reference is generated from (docs/gen/cli_reference.py)."""
    parser = argparse.ArgumentParser(prog=f"sspnet {verb}", description=module.HELP)
    module.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for every error (or SSPNET_DEBUG=1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from sspnet.runtime.threads import apply_openmp_defaults

    apply_openmp_defaults()  # before any verb imports torch: OpenMP reads it once, at load
    debug, argv = _debug_requested(argv)
    verbs = _available_verbs()
    if not argv or argv[0] in ("-h", "--help"):
        _print_usage(verbs)
        return 0
    verb = argv[0]
    if verb not in verbs:
        print(f"sspnet: unknown verb {verb!r}; choose from: {', '.join(verbs)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"sspnet.cli.{verbs[verb]}")
    args = verb_parser(verb, module).parse_args(argv[1:])
    args.debug = debug
    return run_verb(verb, module, args, debug)


if __name__ == "__main__":
    sys.exit(main())
