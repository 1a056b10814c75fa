"""sspnet.io.run_lock: one process owns a run folder; the lock dies with its holder (no stale state)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from sspnet.errors import BusyError
from sspnet.io.run_lock import LOCK_NAME, acquire_run_lock

HOLDER = """
import sys, time
from sspnet.io.run_lock import acquire_run_lock
lock = acquire_run_lock(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


def start_holder(run_dir) -> subprocess.Popen:
    """A separate process that takes the lock on `run_dir` and keeps it until killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    line = holder.stdout.readline()
    if line.strip() != "locked":
        holder.kill()
        holder.wait()
        pytest.fail(f"the lock holder did not start (said {line!r})")
    return holder


def test_a_second_process_is_refused_until_the_holder_is_killed(tmp_path):
    run_dir = tmp_path / "runs" / "a"  # created, parents included
    holder = start_holder(run_dir)
    try:
        with pytest.raises(BusyError, match=rf"{run_dir} is in use by another sspnet process"):
            acquire_run_lock(run_dir)
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to clean up
        holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    with acquire_run_lock(run_dir) as lock:  # free at once: the kernel dropped the dead holder's lock
        assert lock.held
    assert sorted(os.listdir(run_dir)) == [LOCK_NAME]
    assert (run_dir / LOCK_NAME).stat().st_size == 0  # nothing in it that could go stale


def test_the_same_process_cannot_lock_twice_and_release_frees_it(tmp_path):
    first = acquire_run_lock(tmp_path / "run")
    with pytest.raises(BusyError, match="in use by another sspnet train process"):
        acquire_run_lock(tmp_path / "run", what="sspnet train process")
    first.release()
    first.release()  # idempotent
    assert not first.held
    second = acquire_run_lock(tmp_path / "run")
    del second  # a dropped lock object releases too
    acquire_run_lock(tmp_path / "run").release()


def test_a_forked_child_releasing_its_copy_keeps_the_parents_lock(tmp_path):
    lock = acquire_run_lock(tmp_path / "run")
    pid = os.fork()
    if pid == 0:  # the child, like a data-loader worker: drops its inherited copy
        lock.release()
        os._exit(0)
    os.waitpid(pid, 0)
    with pytest.raises(BusyError):
        acquire_run_lock(tmp_path / "run")
    lock.release()
