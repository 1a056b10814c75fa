"""Threading defaults (runtime/threads.py): what is set, what the user's settings override, and that
the `sspnet` command sets OpenMP's variables before a verb can load torch."""

import subprocess
import sys

import pytest
from sspnet.runtime import threads


def test_openmp_defaults_are_set_only_when_the_user_chose_nothing():
    environ = {}
    assert threads.apply_openmp_defaults(environ) == {"GOMP_SPINCOUNT": "4000"}
    assert environ == {"GOMP_SPINCOUNT": "4000"}
    for user in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10"}, {"SSPNET_OPENMP_DEFAULTS": "0"}):
        environ = dict(user)
        assert threads.apply_openmp_defaults(environ) == {}
        assert environ == user  # untouched


def test_onnxruntime_spinning_switch():
    assert threads.onnxruntime_spinning({}) is False
    assert threads.onnxruntime_spinning({"SSPNET_ORT_SPINNING": "1"}) is True
    assert threads.onnxruntime_spinning({"SSPNET_ORT_SPINNING": "off"}) is False


def test_session_options_get_spinning_off_or_on():
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    threads.configure_onnxruntime_session(options, spinning=False)
    for key in threads.ORT_SPINNING_KEYS:
        assert options.get_session_config_entry(key) == "0"
    assert options.get_session_config_entry("optimization.disable_specified_optimizers") == "QDQS8ToU8Transformer"
    threads.configure_onnxruntime_session(options, spinning=True)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_dynamic_block_base_only_when_asked(monkeypatch):
    ort = pytest.importorskip("onnxruntime")

    def dynamic_block_base():
        options = ort.SessionOptions()
        threads.configure_onnxruntime_session(options)
        try:
            return options.get_session_config_entry("session.dynamic_block_base")
        except RuntimeError:  # not set
            return None

    monkeypatch.delenv("SSPNET_ORT_DYNAMIC_BLOCK_BASE", raising=False)
    assert dynamic_block_base() is None
    for value, expected in (("4", "4"), ("0", None), ("many", None)):
        monkeypatch.setenv("SSPNET_ORT_DYNAMIC_BLOCK_BASE", value)
        assert dynamic_block_base() == expected


def test_the_onnxruntime_backend_does_not_spin(tmp_path, monkeypatch):
    from runtime_models import build_marker_model
    from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

    monkeypatch.delenv("SSPNET_ORT_SPINNING", raising=False)
    seen = []
    original = threads.configure_onnxruntime_session
    monkeypatch.setattr(
        "sspnet.runtime.onnxruntime_backend.configure_onnxruntime_session",
        lambda options: (
            original(options),
            seen.append(options.get_session_config_entry("session.intra_op.allow_spinning")),
        ),
    )
    OnnxRuntimeBackend(build_marker_model(tmp_path / "m.onnx"))
    assert seen and set(seen) == {"0"}  # every session of the backend (adaptive threads: two)


def test_the_command_sets_openmp_variables_before_torch_loads():
    # A fresh interpreter: the CLI entry must put GOMP_SPINCOUNT into the environment before the
    # verb module (here `info`, which imports torch) loads libgomp.
    code = (
        "import os, sys\n"
        "from sspnet.cli import main\n"
        "main(['--help'])\n"
        "from sspnet.runtime.threads import openmp_runtime_loaded\n"
        "print('RESULT', os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules, openmp_runtime_loaded())\n"
    )
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "SSPNET_OPENMP_DEFAULTS")
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
    assert line == "RESULT 4000 False False"  # set, and no OpenMP runtime was loaded yet


# ---- adaptive thread count (ThreadGovernor) ------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def write_proc(folder, busy, own, idle=5000):
    """A /proc/stat first line and a /proc/self/stat whose CPU times are `busy` and `own` ticks.
    busy is spread over user, nice, system, irq, softirq and steal; idle and iowait do not count."""
    user, nice, system, irq, softirq, steal = busy - 50, 10, 20, 5, 5, 10
    (folder / "stat").write_text(f"cpu  {user} {nice} {system} {idle} 7 {irq} {softirq} {steal} 0 0\ncpu0 1 2 3\n")
    utime, stime = own - own // 3, own // 3
    # the process name holds a space and a parenthesis, as names may
    (folder / "self_stat").write_text(
        f"4242 (my (odd) name) R 1 1 1 0 -1 4194304 10 0 0 0 {utime} {stime} 0 0 20 0 3\n"
    )


def test_other_load_is_machine_busy_time_minus_our_own(tmp_path):
    clock = FakeClock()
    load = threads.OtherLoad(str(tmp_path / "stat"), str(tmp_path / "self_stat"), clock=clock, ticks_per_second=100)
    write_proc(tmp_path, busy=1000, own=300)
    assert load.sample() is None  # the first sample is the reference
    clock.now += 2.0
    write_proc(tmp_path, busy=1000 + 350, own=300 + 150, idle=5100)
    # others: (350 - 150) ticks / 100 Hz / 2 s = 1.0 core
    assert load.sample() == pytest.approx(1.0)
    clock.now += 1.0
    write_proc(tmp_path, busy=1350 + 200, own=450 + 200)  # only we worked: no one else
    assert load.sample() == pytest.approx(0.0)


def test_other_load_without_proc_is_unavailable(tmp_path):
    load = threads.OtherLoad(str(tmp_path / "missing"), str(tmp_path / "missing_too"))
    assert not load.available() and load.sample() is None and load.sample() is None


class ScriptedLoad:
    """An OtherLoad that returns the given values, one per sample, on a fake clock."""

    def __init__(self, values):
        self.values, self.clock, self.samples = list(values), FakeClock(), 0

    def sample(self):
        self.samples += 1
        return self.values.pop(0) if self.values else None


@pytest.mark.parametrize(
    "cores, others, expected",
    [
        # 2 cores: a busy neighbour takes one (1 thread left); a half-busy core changes nothing
        # (hysteresis: taken at >= 0.6, freed below 0.4); a neighbour gone gives both back.
        (2, [0.0, 1.0, 0.5, 0.45, 0.3, 0.5, 0.7, 1.9], [2, 1, 1, 1, 2, 2, 1, 1]),
        # 8 cores: others at 2.7 cores take 3 (5 left), never more than cores - 1; a taken core is
        # given back only when others' use of it falls below 0.4 (6.5 keeps 7 taken, 6.3 frees one).
        (8, [2.7, 9.0, 6.5, 6.3, 0.1], [5, 1, 1, 2, 8]),
    ],
)
def test_governor_runs_on_the_cores_others_leave_free(cores, others, expected):
    calls = []
    load = ScriptedLoad([None, *others])  # the constructor's reference sample
    governor = threads.ThreadGovernor(cores, calls.append, load=load, cores=cores, interval_s=0.5)
    seen = []
    for _ in others:
        load.clock.now += 0.5
        seen.append(governor.before_call())
    assert seen == expected
    changes = [n for previous, n in zip([cores, *expected], expected) if n != previous]
    assert calls == changes  # set_threads only when the count changes


def test_governor_samples_at_most_once_per_interval_and_never_exceeds_max_threads():
    calls = []
    load = ScriptedLoad([None, 0.0, 0.0])
    governor = threads.ThreadGovernor(3, calls.append, load=load, cores=8, interval_s=0.5)
    load.clock.now += 0.5
    assert [governor.before_call() for _ in range(5)] == [3] * 5  # 8 free cores, but at most 3
    assert load.samples == 2 and calls == []


def test_busy_neighbour_is_seen_and_our_own_spinning_is_not():
    """On the real /proc: a busy child process counts as about one core of others' load; the same
    spinning inside this process (a thread of ours) does not count at all."""
    import threading
    import time

    load = threads.OtherLoad()
    if not load.available():
        pytest.skip("no /proc/stat here (not Linux)")

    def measure(seconds=1.0):
        load.sample()
        time.sleep(seconds)
        return load.sample()

    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        with_our_spinning = measure()
    finally:
        stop.set()
        spinner.join()
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        with_busy_child = measure()
    finally:
        child.kill()
        child.wait()
    assert with_busy_child >= with_our_spinning + 0.5, (with_our_spinning, with_busy_child)


def test_torch_backend_adapts_threads_on_cpu_unless_told_not_to(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    from sspnet.runtime.backend import load_backend

    from sspnet.inference.torch_backend import TorchBackend
    from sspnet.models import build_model

    if not threads.OtherLoad().available():
        pytest.skip("no /proc/stat here (not Linux)")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model = build_model("fovea_r18_sspnet_small")
        governor = TorchBackend(model, input_size=(64, 64), device="cpu").thread_governor
        assert governor is not None and governor.max_threads == 2
        assert TorchBackend(model, input_size=(64, 64), device="cpu", adaptive_threads=False).thread_governor is None
        monkeypatch.setenv("SSPNET_ADAPTIVE_THREADS", "0")
        assert TorchBackend(model, input_size=(64, 64), device="cpu").thread_governor is None
        monkeypatch.delenv("SSPNET_ADAPTIVE_THREADS")
        # a fixed --threads: that count, and no adapting
        from sspnet.checkpoint import save_checkpoint

        path = tmp_path / "m.safetensors"
        save_checkpoint(path, model, preset="fovea_r18_sspnet_small")
        # --threads 0 means the default count, as for ONNX Runtime: adapted
        assert load_backend(path, "torch", input_size=(64, 64), device="cpu", threads=0).thread_governor is not None
        backend = load_backend(path, "torch", input_size=(64, 64), device="cpu", threads=1)
        assert backend.thread_governor is None and torch.get_num_threads() == 1
        assert backend.infer(torch.zeros(1, 3, 64, 64, dtype=torch.uint8).numpy())["num_dets"].shape == (1, 1)
    finally:
        torch.set_num_threads(before)


def test_torch_thread_governor_applies_only_to_multithreaded_cpu_work(monkeypatch):
    class FakeTorch:
        def __init__(self, threads):
            self.threads = threads

        def get_num_threads(self):
            return self.threads

        def set_num_threads(self, n):
            self.threads = n

    if not threads.OtherLoad().available():
        pytest.skip("no /proc/stat here (not Linux)")
    monkeypatch.delenv("SSPNET_ADAPTIVE_THREADS", raising=False)
    assert threads.torch_thread_governor(FakeTorch(4), "cpu").max_threads == 4
    assert threads.torch_thread_governor(FakeTorch(1), "cpu") is None  # e.g. torchrun's OMP_NUM_THREADS=1
    assert threads.torch_thread_governor(FakeTorch(4), "cuda") is None
    assert threads.torch_thread_governor(FakeTorch(4), "cpu", adaptive=False) is None
    monkeypatch.setenv("SSPNET_ADAPTIVE_THREADS", "0")
    assert threads.torch_thread_governor(FakeTorch(4), "cpu") is None


# ---- ONNX Runtime: a one-thread session beside the all-cores one ---------------------------------


def test_onnxruntime_thread_governor_applies_only_to_default_count_cpu_sessions(monkeypatch):
    monkeypatch.delenv("SSPNET_ADAPTIVE_THREADS", raising=False)
    load = ScriptedLoad([None])
    load.available = lambda: True
    cpu = ["CPUExecutionProvider"]
    governor = threads.onnxruntime_thread_governor(cpu, None, load=load, cores=4, max_threads=4)
    assert governor is not None and governor.max_threads == 4
    # SMT: 4 logical cores, 2 physical ones (ONNX Runtime's default count): never more than 2 threads
    smt_load = ScriptedLoad([None, 0.0, 1.0, 2.0])
    smt_load.available = lambda: True
    smt = threads.onnxruntime_thread_governor(cpu, None, load=smt_load, cores=4, max_threads=2)
    smt.interval_s = 0.0
    assert (smt.max_threads, smt.cores) == (2, 4)
    assert [smt.before_call() for _ in range(3)] == [2, 2, 2]  # 4, 3 and 2 cores left: 2 threads each time
    assert threads.onnxruntime_thread_governor(cpu, 0, load=load, cores=4) is not None  # 0: the default count
    assert threads.onnxruntime_thread_governor(cpu, 2, load=load, cores=4) is None  # a fixed --threads
    assert threads.onnxruntime_thread_governor(["CUDAExecutionProvider", *cpu], None, load=load, cores=4) is None
    assert threads.onnxruntime_thread_governor(cpu, None, adaptive=False, load=load, cores=4) is None
    assert threads.onnxruntime_thread_governor(cpu, None, load=load, cores=1) is None
    monkeypatch.setenv("SSPNET_ADAPTIVE_THREADS", "0")
    assert threads.onnxruntime_thread_governor(cpu, None, load=load, cores=4) is None


def wait_for_session(backend, count, seconds=30.0):
    import time

    deadline = time.monotonic() + seconds
    while count not in backend.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    return backend.sessions.get(count)


def test_onnxruntime_backend_runs_each_call_on_the_session_the_governor_picks(tmp_path, monkeypatch):
    import numpy as np
    from runtime_models import build_marker_model
    from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

    if not threads.OtherLoad().available() or threads.usable_cores() < 2:
        pytest.skip("needs /proc and at least 2 cores")
    monkeypatch.delenv("SSPNET_ADAPTIVE_THREADS", raising=False)
    backend = OnnxRuntimeBackend(build_marker_model(tmp_path / "m.onnx"))
    governor = backend.thread_governor
    cores = min(threads.usable_cores(), threads.physical_cores())
    assert governor is not None and governor.max_threads == cores
    assert backend.sessions[cores] is backend.session
    one = wait_for_session(backend, 1)  # built beside the all-cores session at load time
    assert one is not None and one is not backend.session
    assert one.get_session_options().intra_op_num_threads == 1
    assert one.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"

    # others' load, scripted: a busy neighbour on all other cores -> 1 thread; gone -> all cores
    governor.load = ScriptedLoad([governor.cores - 1.0, governor.cores - 1.0, 0.0])
    governor.interval_s = 0.0
    picked = [backend.session_for_call() for _ in range(3)]
    assert picked == [one, one, backend.session]
    # both sessions compute the same model
    images = np.zeros((1, 3, *backend.input_size), np.uint8)
    images[0, 0, 10, 20] = 200
    np.testing.assert_array_equal(
        one.run(["boxes"], {"images": images})[0], backend.session.run(["boxes"], {"images": images})[0]
    )


def test_onnxruntime_backend_off_switches(tmp_path, monkeypatch):
    from runtime_models import build_marker_model
    from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

    model = build_marker_model(tmp_path / "m.onnx")
    fixed = OnnxRuntimeBackend(model, intra_op_num_threads=1)
    assert fixed.thread_governor is None and fixed.sessions == {} and fixed.session_for_call() is fixed.session
    monkeypatch.setenv("SSPNET_ADAPTIVE_THREADS", "0")
    assert OnnxRuntimeBackend(model).thread_governor is None
    monkeypatch.delenv("SSPNET_ADAPTIVE_THREADS")
    assert OnnxRuntimeBackend(model, adaptive_threads=False).thread_governor is None


def test_physical_cores_counts_distinct_package_and_core_pairs(tmp_path):
    import os

    allowed = sorted(os.sched_getaffinity(0))
    for k, cpu in enumerate(allowed):  # every two logical CPUs share one core (SMT siblings)
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text("0\n")
        (topology / "core_id").write_text(f"{k // 2}\n")
    assert threads.physical_cores(str(tmp_path)) == (len(allowed) + 1) // 2
    (tmp_path / f"cpu{allowed[0]}" / "topology" / "core_id").unlink()  # sysfs cannot say: the logical count
    assert threads.physical_cores(str(tmp_path)) == threads.usable_cores()
