"""Noisy-neighbour benchmark: busy neighbours always stopped, phases timed as specified, each row's
environment reaching its worker, goals evaluated, and `sspnet benchmark --neighbours`."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_markers import TILE

from sspnet.benchmark.contention import (
    ContentionRow,
    ContentionSettings,
    evaluate_goals,
    run_row,
    table_rows,
    time_phase,
)
from sspnet.benchmark.neighbours import BusyNeighbours
from sspnet.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ContentionSettings(neighbours=1, iters=3, warmup=0, min_iters=1, max_seconds_quiet=5, max_seconds_loaded=5)


def _state(pid):
    """The process state letter from /proc (None once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _state(pid) in (None, "Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_neighbours_spin_in_their_own_sessions_and_stop():
    with BusyNeighbours(2, settle_s=0.2) as neighbours:
        pids = neighbours.pids
        assert len(pids) == 2
        before = [_cpu_ticks(pid) for pid in pids]
        time.sleep(0.6)
        assert all(_cpu_ticks(pid) > ticks for pid, ticks in zip(pids, before))  # busy, not sleeping
        for pid in pids:
            assert os.getsid(pid) == pid != os.getsid(0)  # each leads its own session
    assert all(_wait_gone(pid) for pid in pids)


def test_neighbours_stop_when_the_block_raises():
    with pytest.raises(RuntimeError, match="boom"):
        with BusyNeighbours(1, settle_s=0.0) as neighbours:
            pid = neighbours.pids[0]
            raise RuntimeError("boom")
    assert _wait_gone(pid)


def test_neighbours_exit_when_their_starter_is_killed(tmp_path):
    # SIGKILL leaves no chance to clean up: the neighbour must notice its parent is gone by itself.
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import sys, time
        from sspnet.benchmark.neighbours import BusyNeighbours
        n = BusyNeighbours(1, settle_s=0.0).start()
        print(n.pids[0], flush=True)
        time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = int(starter.stdout.readline())
    assert _state(pid) not in (None, "Z")
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    assert _wait_gone(pid, timeout=5.0)


def test_bad_neighbour_count():
    with pytest.raises(ValueError, match="neighbours must be an integer >= 0"):
        BusyNeighbours(-1)
    with pytest.raises(ValueError, match="--neighbours must be an integer >= 1"):
        ContentionSettings(neighbours=0).check()


def test_time_phase_counts_and_time_limit():
    calls = []
    assert len(time_phase(lambda: calls.append(1), iters=5, warmup=2, min_iters=1, max_seconds=60)) == 5
    assert len(calls) == 7  # 2 untimed + 5 timed
    slow = time_phase(lambda: time.sleep(0.05), iters=100, warmup=0, min_iters=3, max_seconds=0.01)
    assert len(slow) == 3  # cut short by the time limit, but never below min_iters
    assert all(latency >= 45 for latency in slow)  # milliseconds


def test_row_times_quiet_and_loaded_with_its_own_environment(marker_onnx):
    row = ContentionRow(
        label="marker",
        model=str(marker_onnx),
        frame_size=TILE,
        env={"GOMP_SPINCOUNT": "123", "SSPNET_ORT_SPINNING": "1", "OMP_WAIT_POLICY": None},
    )
    result = run_row(row, TINY)
    assert result["error"] is None, result["error"]
    for phase in ("quiet", "loaded"):
        assert len(result[phase]["latencies_ms"]) == 3
        assert result[phase]["p50"] == pytest.approx(sorted(result[phase]["latencies_ms"])[1], abs=1e-3)  # kept to 1 us
    assert result["slowdown_p50"] == pytest.approx(result["loaded"]["p50"] / result["quiet"]["p50"])
    settings = result["worker_settings"]
    assert settings["openmp"]["GOMP_SPINCOUNT"] == "123" and settings["onnxruntime_spinning"] is True
    assert "while os.getppid()" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_worker_applies_the_sspnet_defaults_unless_told_not_to(marker_onnx):
    base = dict(label="m", model=str(marker_onnx), frame_size=TILE)
    plain = {
        "GOMP_SPINCOUNT": None,
        "OMP_WAIT_POLICY": None,
        "SSPNET_OPENMP_DEFAULTS": None,
        "SSPNET_ORT_SPINNING": None,
    }
    defaults = run_row(ContentionRow(**base, env=plain), TINY)["worker_settings"]
    assert defaults["openmp"]["GOMP_SPINCOUNT"] == "4000" and defaults["onnxruntime_spinning"] is False
    untouched = run_row(ContentionRow(**base, env={**plain, "SSPNET_OPENMP_DEFAULTS": "0"}), TINY)["worker_settings"]
    assert untouched["openmp"]["GOMP_SPINCOUNT"] is None


def test_a_failing_row_reports_its_error(tmp_path):
    result = run_row(ContentionRow(label="missing", model=str(tmp_path / "missing.onnx"), frame_size=TILE), TINY)
    assert result["quiet"] is None and "does not exist" in result["error"]
    assert table_rows(evaluate_goals([result]))[0][2].startswith("failed: ")


def test_goals_against_the_baseline():
    def row(label, quiet, loaded, **extra):
        return {
            "label": label,
            "quiet": {"p50": quiet},
            "loaded": {"p50": loaded},
            "slowdown_p50": loaded / quiet,
            **extra,
        }

    rows = evaluate_goals(
        [
            row("before", 100.0, 1000.0),
            row("good", 105.0, 220.0, baseline="before", goal_slowdown=2.2),  # 2.10x, quiet +5 %
            row("slow quiet", 120.0, 150.0, baseline="before", goal_slowdown=2.2),  # quiet +20 %
            row("collapses", 100.0, 300.0, baseline="before", goal_slowdown=2.2),  # 3.0x
        ]
    )
    assert [r["meets_goal"] for r in rows] == [None, True, False, False]
    assert rows[2]["quiet_vs_baseline"] == pytest.approx(1.2)


def test_cli_neighbours_writes_json_and_plot(marker_onnx, tmp_path, capsys):
    out_json, out_png = tmp_path / "busy.json", tmp_path / "busy.png"
    code = main(
        [
            "benchmark",
            "--model",
            str(marker_onnx),
            "--imgsz",
            str(TILE[0]),
            str(TILE[1]),
            "--neighbours",
            "1",
            "--iters",
            "3",
            "--warmup",
            "0",
            "--max-seconds",
            "5",
            "--providers",
            "cpu",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    assert code == 0
    document = json.loads(out_json.read_text())
    assert document["schema"] == "sspnet-contention/1" and document["settings"]["neighbours"] == 1
    (row,) = document["rows"]
    assert row["error"] is None and row["backend"] == "onnxruntime" and row["goal_slowdown"] == 2.2
    assert row["slowdown_p50"] == pytest.approx(row["loaded"]["p50"] / row["quiet"]["p50"])
    assert out_png.read_bytes()[:8] == PNG_SIGNATURE
    assert "slow-down p50" in capsys.readouterr().out


def test_cli_refuses_an_output_that_is_an_input(marker_onnx, capsys):
    assert main(["benchmark", "--model", str(marker_onnx), "--neighbours", "1", "--json", str(marker_onnx)]) == 2
    assert "refusing to write" in capsys.readouterr().err
