"""Peak host memory of this process while a benchmark row runs.

On Linux a background thread reads the resident set size (/proc/self/statm) every few
milliseconds, so each row gets its own peak. Elsewhere the process's lifetime peak
(resource.getrusage ru_maxrss) is the only figure available; it never goes down, so a later row
reports at least an earlier row's peak (`per_row` says which one you got).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

_STATM = Path("/proc/self/statm")


def current_rss_mb() -> float | None:
    """Resident set size now, in MiB (None where /proc is missing)."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def lifetime_peak_rss_mb() -> float | None:
    """The process's peak RSS so far (getrusage; KiB on Linux, bytes on macOS)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class PeakMemory:
    """Context manager: `peak_mb` (highest RSS seen inside), `start_mb` (RSS on entry), `per_row`."""

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.start_mb: float | None = None
        self.peak_mb: float | None = None
        self.per_row = _STATM.exists()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_mb()
            if rss is not None and (self.peak_mb is None or rss > self.peak_mb):
                self.peak_mb = rss

    def __enter__(self) -> PeakMemory:
        if self.per_row:
            self.start_mb = self.peak_mb = current_rss_mb()
            self._thread = threading.Thread(target=self._sample, name="sspnet-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            rss = current_rss_mb()
            if rss is not None and rss > (self.peak_mb or 0):
                self.peak_mb = rss
        else:
            self.peak_mb = lifetime_peak_rss_mb()


__all__ = ["PeakMemory", "current_rss_mb", "lifetime_peak_rss_mb"]
