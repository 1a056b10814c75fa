"""Training logs: one JSON object per line in ``RUN_DIR/log.jsonl``, TensorBoard where installed.

Record kinds (field ``type``):
  * ``train``: ``iter`` (completed global iterations), ``epoch``, ``lr``, ``loss`` (total, the sum of
    all loss terms) and every ``loss_*`` / other scalar the model returned, averaged over the
    iterations since the previous record and over processes, plus ``sec_per_iter`` and ``eta_s``;
  * ``val``: ``iter``, ``epoch`` and the evaluation metrics (percent), ``best`` flag;
  * ``resume``: where a resumed run picked up, and ``rolled_back_records``: how many records of
    the interrupted run (iterations after the resume point, or a torn last line) were removed.
Only rank 0 creates a logger.

The log is an append-only stream: each record is ONE write() of a whole line to a file opened with
O_APPEND (no user-space buffer), so a crash leaves at most a torn last line, never interleaved or
half-flushed records. A new run starts from an empty file written atomically; `--resume` first
rewrites the log atomically without the rolled-back records (`roll_back_log`), then appends.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from sspnet.io.atomic import atomic_write_bytes

LOG_FILE = "log.jsonl"


class RunLogger:
    """Appends records to RUN_DIR/log.jsonl (one write per line) and mirrors scalars to TensorBoard.

    `append=False` starts a new, empty log; `append=True` continues the existing one."""

    def __init__(self, run_dir: Path, append: bool = False, use_tensorboard: bool = True):
        self.path = Path(run_dir) / LOG_FILE
        if not append or not self.path.exists():
            atomic_write_bytes(self.path, b"")
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._tensorboard = _open_tensorboard(run_dir) if use_tensorboard else None

    def write(self, record: dict) -> None:
        _write_whole(self._fd, (json.dumps(_finite(record)) + "\n").encode("utf-8"))
        if self._tensorboard is not None:
            step = record.get("iter", 0)
            for key, value in record.items():
                if (
                    key not in ("iter", "epoch", "type")
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                ):
                    self._tensorboard.add_scalar(f"{record.get('type', 'misc')}/{key}", value, step)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None


def _write_whole(fd: int, data: bytes) -> None:
    """One write() for the whole line; the loop only continues a short write (a full disk, a signal)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def roll_back_log(path: Path, iteration: int) -> int:
    """Remove from the log every record of an iteration after `iteration` (the resume point) and
    any line that is not a whole JSON record (torn by a crash); rewrite the file atomically.
    Returns how many lines were removed (0: the file is left untouched)."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, removed = [], 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:  # includes undecodable bytes
            record = None
        if not isinstance(record, dict) or (isinstance(record.get("iter"), int) and record["iter"] > iteration):
            removed += 1
            continue
        kept.append(line + b"\n")
    if removed:
        atomic_write_bytes(path, b"".join(kept))
    return removed


def _open_tensorboard(run_dir: Path):
    """A SummaryWriter when tensorboard is installed, else None (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises this when the tensorboard package is missing
        return None
    return SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))


def _finite(record: dict) -> dict:
    """JSON has no NaN/inf: write them as strings so the log stays standard JSON."""
    return {k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def read_log(path: Path, kind: str | None = None) -> list[dict]:
    """The records of a log.jsonl, optionally only those of one `type`."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in records if kind is None or r.get("type") == kind]
