"""Busy neighbour processes: the load a companion computer's other programs put on its cores.

    with BusyNeighbours(1):          # one process spinning `while True: pass`
        measure()
    # every neighbour has exited here, whatever happened inside the block

Each neighbour is a separate Python process in its own session (setsid), so the scheduler treats
it as a separate program (Linux autogroups one session as one scheduling entity), as the flight
stack or a video encoder would be. Neighbours are always stopped: on leaving the block (also on an
exception or Ctrl-C), at interpreter exit, and by themselves within ~0.1 s when the process that
started them dies (they poll their parent pid), so a killed benchmark leaves no spinning process.
Torch-free.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time

from sspnet.errors import UsageError

# A pure-Python busy loop that exits once its parent is gone (the parent pid changes when the
# orphan is re-parented). ~2e5 empty iterations take a few ms, so the check costs nothing.
_BUSY_LOOP = """
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(200_000):
        pass
"""

_LIVE: set[subprocess.Popen] = set()


def _stop(processes, timeout: float = 5.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _LIVE.discard(process)


@atexit.register
def _stop_all() -> None:
    _stop(list(_LIVE))


class BusyNeighbours:
    """Context manager running `count` busy processes (see the module docstring).

    settle_s: time after starting them before the block runs, so they are at full speed."""

    def __init__(self, count: int, settle_s: float = 0.5):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise UsageError(f"neighbours must be an integer >= 0, got {count!r}")
        self.count = count
        self.settle_s = settle_s
        self.processes: list[subprocess.Popen] = []

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def start(self) -> BusyNeighbours:
        try:
            for _ in range(self.count):
                process = subprocess.Popen(
                    [sys.executable, "-c", _BUSY_LOOP, str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    close_fds=True,
                )
                self.processes.append(process)
                _LIVE.add(process)
        except BaseException:
            self.stop()
            raise
        if self.count:
            time.sleep(self.settle_s)
        return self

    def stop(self) -> None:
        _stop(self.processes)
        self.processes = []

    def __enter__(self) -> BusyNeighbours:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["BusyNeighbours"]
