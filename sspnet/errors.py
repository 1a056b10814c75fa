"""User-facing errors: the one error surface of the toolkit.

Everything a user can get wrong (an argument, an input file, an output path, a busy run folder, a
missing optional package or plugin) raises one of these. The CLI dispatcher (sspnet/cli/__init__.py)
prints such an error as ONE line and exits 2:

    sspnet VERB: <what is wrong> (<file>[: <field>]: expected ..., got ...)

Anything else is a bug: traceback plus a hint, exit 1. Torch-free on purpose (sspnet.runtime uses it).

    raise InputError("annotation box outside the image", path="val.json", field="annotations[3].bbox",
                     expected="inside 640x512", got="[600, 10, 80, 20]")
"""

from __future__ import annotations

import os


class SSPNetError(Exception):
    """Base of every user-facing error. `str(error)` is the complete one-line message."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        field: str | None = None,
        expected: object = None,
        got: object = None,
    ):
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(self._format())

    def _format(self) -> str:
        where = ": ".join(part for part in (self.path, self.field) if part)
        facts = []
        if self.expected is not None:
            facts.append(f"expected {self.expected}")
        if self.got is not None:
            facts.append(f"got {self.got}")
        detail = ", ".join(facts)
        if where and detail:
            return f"{self.message} ({where}: {detail})"
        if where or detail:
            return f"{self.message} ({where or detail})"
        return self.message


class UsageError(SSPNetError, ValueError):
    """A command-line argument or API argument with a wrong value or combination."""


class InputError(SSPNetError, ValueError):
    """An input file (image, annotation, results, checkpoint, model, video) that cannot be used."""


class OutputConflictError(SSPNetError, ValueError):
    """An output path that would destroy an input or a file of another kind."""


class BusyError(SSPNetError, RuntimeError):
    """A resource another process owns (e.g. a training run folder that is locked)."""


class MissingDependencyError(SSPNetError, ImportError):
    """An optional package, runtime or plugin library that this job needs is not installed."""


__all__ = [
    "BusyError",
    "InputError",
    "MissingDependencyError",
    "OutputConflictError",
    "SSPNetError",
    "UsageError",
]
