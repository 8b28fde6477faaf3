"""Device calls that cannot hang: every backend of the generated driver (csim, pynq, xrt) and the
native XRT host wait with a deadline, derived from the performance model's cycles for the call at
the plan's clock (x DEADLINE_MARGIN, at least a second) or given as `timeout`.  Past it the call
raises a DeviceTimeout naming the call, the time waited and the control register's last value,
and Driver.reset() makes the device usable again.

The csim backend runs the real compiled top (with a deadline too short for it); pynq, xrt and
the native host run against stand-ins whose kernel never finishes.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import needs_tool
from hlsgen.hardware import perf
from test_driver import PROMPT, SimulatedKernel, fake_pynq, fake_pyxrt, golden_tokens, load_driver, projects  # noqa: F401
from test_vendor_flow import XRT_STUBS

pytestmark = [pytest.mark.usefixtures("hlsgen_cache"), needs_tool("g++")]

TIMEOUT_MESSAGE = re.compile(r"kernel call (\d+) \((\d+) tokens?, batch_mode (\d), reset_state (0x[0-9a-f]+)\): not "
                             r"done after (\d+\.\d+) s \(deadline (\d+\.\d+) s\); control register last read (.+); "
                             r"Driver\.reset\(\) reprograms the device")


def test_the_default_deadline_is_the_models_call_time_with_a_margin(projects):
    for name in ("onchip", "hbm"):
        result, _ = projects[name]
        module = load_driver(result.out, result.plan)
        cycles = [math.ceil(perf.estimate(result.plan, n).cycles_per_call) for n in range(1, result.plan.batch + 1)]
        assert module.CALL_CYCLES == cycles and module.CLOCK_MHZ == result.plan.clock_mhz
        for n in range(1, result.plan.batch + 1):
            modelled = cycles[n - 1] / (result.plan.clock_mhz * 1e6)
            assert module.call_deadline(n) == max(1.0, 100 * modelled)
            assert module.call_deadline(n, timeout=0.25) == 0.25


def test_csim_call_past_its_deadline_raises_and_reset_recovers(projects):
    result, spec = projects["hbm"]
    module = load_driver(result.out, result.plan)
    driver = module.Driver("csim", timeout=1e-6)          # far shorter than the C-simulated top takes
    driver.load()
    with pytest.raises(module.DeviceTimeout) as raised:
        driver.run([1, 2], False, 1)
    match = TIMEOUT_MESSAGE.fullmatch(str(raised.value))
    assert match and match.group(1, 2, 3, 4) == ("1", "2", "0", "0x1"), str(raised.value)
    assert float(match.group(5)) >= float(match.group(6)) == 0.0      # the deadline as printed: 1e-6 s
    assert match.group(7).startswith("0x1 (ap_start set, no ap_done")
    driver.reset()
    driver.timeout = None                                 # the model's deadline
    assert driver.self_test() == []
    assert driver.generate(PROMPT, 4).tokens == golden_tokens(spec, count=4)


def never_finishing_pynq(kernel, calls, hang):
    module = fake_pynq(kernel, calls)
    overlay = module.Overlay

    def Overlay(path):
        o = overlay(path)
        if hang[0]:               # ap_start stays set, ap_done never comes
            o.ip.start = lambda: o.ip.registers.__setitem__(0, 0x1)
        return o

    module.Overlay = Overlay
    return module


def never_finishing_pyxrt(kernel, calls, hang):
    module = fake_pyxrt(kernel, calls)
    real_run = module.run

    class run(real_run):
        def start(self):
            if not hang[0]:
                super().start()

        def wait(self, timeout_ms=0):
            if not hang[0]:
                return super().wait(timeout_ms)
            time.sleep(timeout_ms / 1000)               # as XRT: the time runs out, the state is still running
            return type("State", (), {"name": "ERT_CMD_STATE_RUNNING"})()

        def state(self):
            return type("State", (), {"name": "ERT_CMD_STATE_RUNNING" if hang[0] else "ERT_CMD_STATE_COMPLETED"})()

        def abort(self):
            calls.append(("abort",))

    module.run = run
    return module


@pytest.mark.parametrize("backend, stand_in, name", [("pynq", never_finishing_pynq, "zcu104"),
                                                      ("xrt", never_finishing_pyxrt, "hbm")])
def test_a_kernel_that_never_finishes_times_out_and_reset_recovers(projects, monkeypatch, backend, stand_in, name):
    result, spec = projects[name]
    calls, hang = [], [True]
    monkeypatch.setitem(sys.modules, {"pynq": "pynq", "xrt": "pyxrt"}[backend],
                        stand_in(SimulatedKernel(result.out, result.plan), calls, hang))
    module = load_driver(result.out, result.plan)
    driver = module.Driver(backend, timeout=0.3)
    driver.load()
    start = time.monotonic()
    with pytest.raises(module.DeviceTimeout) as raised:
        driver.step(7)
    waited = time.monotonic() - start
    match = TIMEOUT_MESSAGE.fullmatch(str(raised.value))
    assert match, str(raised.value)
    assert match.group(1, 2, 3, 4) == ("1", "1", "0", "0x1") and match.group(6) == "0.300"
    assert 0.3 <= float(match.group(5)) <= waited + 0.0005 < 5      # the message rounds to the millisecond
    if backend == "pynq":
        assert match.group(7) == "0x1"                   # ap_start, no ap_done
    else:
        assert "run state ERT_CMD_STATE_RUNNING" in match.group(7)
    hang[0] = False                                      # a fixed bitstream: reset() reprograms
    driver.reset()
    if backend == "xrt":
        assert ("abort",) in calls
    assert driver.self_test() == []
    assert driver.generate(PROMPT, 3).tokens == golden_tokens(spec, count=3)


# ----------------------------------------------------------------------------- the native host
NEVER_FINISHING_XRT = """
    #include <chrono>
    #include <cstdio>
    #include <cstring>
    #include <thread>
    #include "xrt/xrt_bo.h"
    #include "xrt/xrt_device.h"
    #include "xrt/xrt_kernel.h"
    namespace xrt {
    device::device(unsigned int) {}
    device::device(const std::string&) {}
    uuid device::load_xclbin(const std::string&) { return uuid(); }
    bo::bo(const device&, size_t, memory_group) {}
    void bo::write(const void*) {}
    void bo::read(void* destination) { std::memset(destination, 0, 64); }
    void bo::sync(xclBOSyncDirection) {}
    kernel::kernel(const device&, const uuid&, const std::string&) {}
    int kernel::group_id(int) const { return 0; }
    run::run(const kernel&) {}
    template <> void run::set_arg<xrt::bo&>(int, xrt::bo&) {}
    template <> void run::set_arg<unsigned int>(int, unsigned int&&) {}
    void run::start() {}
    ert_cmd_state run::wait(const std::chrono::milliseconds& timeout) const {
        std::this_thread::sleep_for(timeout);      // a kernel that never finishes
        return ERT_CMD_STATE_RUNNING;
    }
    ert_cmd_state run::abort() { std::puts("stand-in: run aborted"); return ERT_CMD_STATE_RUNNING; }
    }
"""


def test_native_host_times_out_on_a_kernel_that_never_finishes(tmp_path):
    from conftest import write_config
    from hlsgen.model import spec as spec_mod
    from hlsgen.project import build

    result = build.build(spec_mod.load(write_config(tmp_path, "alveo")))
    for rel, text in XRT_STUBS.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    (tmp_path / "stand_in.cpp").write_text(textwrap.dedent(NEVER_FINISHING_XRT))
    host = tmp_path / "host"
    done = subprocess.run(["g++", "-std=c++17", "-O0", "-I", str(tmp_path), str(result.out / "host" / "tiny_top_host.cpp"),
                           str(tmp_path / "stand_in.cpp"), "-o", str(host), "-pthread"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = str(result.out / "tb" / "data")
    for extra, deadline in ((["--timeout", "0.25"], "0.250"), ([], "1.000")):     # given, and the model's (floor)
        start = time.monotonic()
        run = subprocess.run([str(host), "x.xclbin", data, *extra], capture_output=True, text=True, timeout=60)
        assert run.returncode == 3, run.stdout + run.stderr
        assert re.fullmatch(rf"error: kernel call 0 \(\d+ token\(s\), batch_mode 0, reset_state 0x1\): not done after "
                            rf"\d+\.\d+ s \(deadline {deadline} s\); run state 3 \(ert_cmd_state, .*\n", run.stderr), run.stderr
        assert "stand-in: run aborted" in run.stdout
        assert time.monotonic() - start < float(deadline) + 10
