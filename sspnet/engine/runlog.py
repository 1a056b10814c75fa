"""Training logs: one JSON object per line in ``RUN_DIR/log.jsonl``, TensorBoard where installed.

Record kinds (field ``type``):
  * ``train``: ``iter`` (completed global iterations), ``epoch``, ``lr``, ``loss`` (total, the sum of
    all loss terms) and every ``loss_*`` / other scalar the model returned, averaged over the
    iterations since the previous record and over processes, plus ``sec_per_iter`` and ``eta_s``;
  * ``val``: ``iter``, ``epoch`` and the evaluation metrics (percent), ``best`` flag;
  * ``resume``: where a resumed run picked up.
Only rank 0 creates a logger.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


class RunLogger:
    """Appends records to log.jsonl (flushed per line) and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, append: bool = False, use_tensorboard: bool = True):
        self.path = Path(run_dir) / "log.jsonl"
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")
        self._tensorboard = _open_tensorboard(run_dir) if use_tensorboard else None

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(_finite(record)) + "\n")
        self._file.flush()
        if self._tensorboard is not None:
            step = record.get("iter", 0)
            for key, value in record.items():
                if key not in ("iter", "epoch", "type") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tensorboard.add_scalar(f"{record.get('type', 'misc')}/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


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
