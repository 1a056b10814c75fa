"""Power and clocks on NVIDIA Jetson boards from `tegrastats`, sampled while a row runs.

Skipped (no error) where the binary does not exist. A tegrastats line looks like (Orin):

    RAM 2345/30536MB (lfb 6655x4MB) SWAP 0/15268MB (cached 0MB) CPU [2%@729,1%@729,off,...]
    EMC_FREQ 0%@3199 GR3D_FREQ 45%@[305,305] CPU@46.5C GPU@44C VDD_GPU_SOC 2392mW/2392mW
    VDD_CPU_CV 399mW/399mW VIN_SYS_5V0 3124mW/3124mW

or, on older boards, `GR3D_FREQ 0%@76 ... POM_5V_IN 1364/1364 POM_5V_GPU 0/0` (rails in mW
without the unit). Each rail shows "current/average"; the current value is used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading

import numpy as np

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?(\d+)[\d,]*\]?)?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_TEMP = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
INPUT_RAILS = ("VDD_IN", "VIN_SYS_5V0", "POM_5V_IN")  # the board's total input power, by generation


def parse_line(line: str) -> dict:
    """One tegrastats line -> {"ram_used_mb", "cpu_percent" (mean over online cores),
    "cpu_mhz" (mean), "gpu_percent", "gpu_mhz", "emc_percent", "emc_mhz", "temps_c" {name: C},
    "rails_mw" {name: current mW}}; keys whose field is absent are left out."""
    sample: dict = {}
    if match := _RAM.search(line):
        sample["ram_used_mb"] = float(match.group(1))
    if match := _CPU.search(line):
        cores = [re.match(r"(\d+)%@(\d+)", entry.strip()) for entry in match.group(1).split(",")]
        online = [core for core in cores if core]
        if online:
            sample["cpu_percent"] = float(np.mean([float(core.group(1)) for core in online]))
            sample["cpu_mhz"] = float(np.mean([float(core.group(2)) for core in online]))
    if match := _GR3D.search(line):
        sample["gpu_percent"] = float(match.group(1))
        if match.group(2):
            sample["gpu_mhz"] = float(match.group(2))
    if match := _EMC.search(line):
        sample["emc_percent"] = float(match.group(1))
        if match.group(2):
            sample["emc_mhz"] = float(match.group(2))
    temps = {name: float(value) for name, value in _TEMP.findall(line)}
    if temps:
        sample["temps_c"] = temps
    rails = {name: float(current) for name, current, _ in _RAIL.findall(line) if name not in ("RAM", "SWAP")}
    if rails:
        sample["rails_mw"] = rails
    return sample


def summarize(lines: list[str]) -> dict | None:
    """Mean of every field over the samples, plus "power_mw" (the input rail when one is known)
    and "samples". None when no line parsed."""
    samples = [parse_line(line) for line in lines if line.strip()]
    samples = [s for s in samples if s]
    if not samples:
        return None
    summary: dict = {"samples": len(samples)}
    for key in ("ram_used_mb", "cpu_percent", "cpu_mhz", "gpu_percent", "gpu_mhz", "emc_percent", "emc_mhz"):
        values = [s[key] for s in samples if key in s]
        if values:
            summary[key] = float(np.mean(values))
    for group in ("temps_c", "rails_mw"):
        names = sorted({name for s in samples for name in s.get(group, {})})
        if names:
            summary[group] = {n: float(np.mean([s[group][n] for s in samples if n in s.get(group, {})])) for n in names}
    rails = summary.get("rails_mw", {})
    for name in INPUT_RAILS:
        if name in rails:
            summary["power_mw"] = rails[name]
            break
    return summary


class TegraStats:
    """Context manager running `tegrastats --interval MS` in the background; `.summary` after exit
    (None where tegrastats is not installed or printed nothing)."""

    def __init__(self, interval_ms: int = 100, binary: str | None = None):
        self.interval_ms = interval_ms
        self.binary = binary or shutil.which("tegrastats")
        self.lines: list[str] = []
        self.summary: dict | None = None
        self._process = None
        self._reader = None

    @property
    def available(self) -> bool:
        return self.binary is not None

    def _read(self) -> None:
        for line in self._process.stdout:
            self.lines.append(line)

    def __enter__(self) -> TegraStats:
        if self.available:
            try:
                self._process = subprocess.Popen(
                    [self.binary, "--interval", str(self.interval_ms)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            except OSError:
                self._process = None
                return self
            self._reader = threading.Thread(target=self._read, name="sspnet-tegrastats", daemon=True)
            self._reader.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._reader.join(timeout=2)
        self.summary = summarize(self.lines)


__all__ = ["TegraStats", "parse_line", "summarize"]
