"""One process owns a run folder: an OS-level lock held for the whole run.

    with acquire_run_lock("runs/a"):        # BusyError (one line) when another process holds it
        ...train, writing into runs/a...

The lock is `flock(LOCK_EX)` on the file RUN_DIR/.sspnet-run.lock. The kernel releases it when the
holder closes the file or ends in any way (normal exit, exception, Ctrl-C, SIGKILL, power loss of a
local disk), so there is no stale state to clean up: the file itself is never written, never
deleted (deleting a lock file races with a process that is opening it) and its presence means
nothing; only a live lock counts. Processes forked by the holder (data-loader workers) share the
lock until they exit too.

flock works between processes on one machine; on a network file system (NFS) it may not be
enforced across machines.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sspnet.errors import BusyError

LOCK_NAME = ".sspnet-run.lock"


class RunLock:
    """A held lock on a run folder; `release()` (or leaving the `with` block) gives it up."""

    def __init__(self, run_dir: Path, fd: int):
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = fd
        self._owner_pid = os.getpid()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            # A forked child (data-loader worker) shares the lock with its parent: unlocking there
            # would free the parent's run folder, so a child only closes its copy of the file.
            if os.getpid() == self._owner_pid:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):  # a forgotten lock must not outlive its owner object
        self.release()


def acquire_run_lock(run_dir: str | os.PathLike, *, what: str = "sspnet process") -> RunLock:
    """Create `run_dir` if needed and lock it for this process, without waiting.

    Raises BusyError naming the folder when another process (or another RunLock of this process)
    holds it; `what` names the kind of holder in the message ("another sspnet train process"). Creating the
    folder and the empty lock file is all this writes."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BusyError(
            f"{run_dir} is in use by another {what} (it holds the lock {path}); "
            "wait for it to finish, stop it, or choose another folder"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return RunLock(run_dir, fd)


__all__ = ["LOCK_NAME", "RunLock", "acquire_run_lock"]
