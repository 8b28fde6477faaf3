"""The generated Python host driver, end to end on the csim backend: `generate` equals the golden
fixed model's tokens and the self-test is bit-exact, on chip and over m_axi (HBM).

The pynq and xrt backends run here too, against stand-ins for the pynq and pyxrt packages that
hold a register file and a memory and compute with the same compiled top as the csim backend.
They check the driver's own side of the contract (registers by the planner's offsets, 64-bit
addresses split low/high, one buffer per port in its bank, arguments by index), not the vendor
libraries, which only a board can.
"""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import write_config
from hlsgen import build, checkpoint, golden
from hlsgen import spec as spec_mod
from hlsgen.device import CsimDevice
from hlsgen.vendor import Flow

pytestmark = pytest.mark.usefixtures("hlsgen_cache")

OFFCHIP = {"pe": 8, "simd": 4, "lm_head_pe": 4, "lm_head_simd": 16}
PROJECTS = {
    "onchip": {},
    "hbm": {"hardware": {"weights": "hbm", "parallelism": OFFCHIP}},
    # The same sources as "hbm" (so the same compiled top) on a Zynq board.
    "zcu104": {"hardware": {"board": "zcu104", "weights": "ddr", "parallelism": OFFCHIP}},
}
CSIM = ["onchip", "hbm"]
PROMPT = [1, 2, 3, 200]
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("driver")
    built = {}
    for name, sections in PROJECTS.items():
        spec = spec_mod.load(write_config(root, name, **sections))
        built[name] = (build.build(spec), spec)
    return built


def load_driver(project, plan):
    path = project / Flow.of_plan(plan).driver
    spec = importlib.util.spec_from_file_location(f"driver_{project.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def golden_tokens(spec, prompt=PROMPT, count=NEW_TOKENS) -> list[int]:
    return golden.Model(spec.model, checkpoint.load(spec), "fixed", spec.numerics).generate(prompt, count)


# ----------------------------------------------------------------------------- csim backend
@pytest.mark.parametrize("name", CSIM)
def test_csim_driver_generates_the_golden_fixed_tokens(projects, name):
    result, spec = projects[name]
    driver = load_driver(result.out, result.plan).Driver("csim")
    driver.load()
    generation = driver.generate(PROMPT, NEW_TOKENS)
    assert generation.tokens == golden_tokens(spec)
    assert generation.seconds_to_first_token > 0 and generation.tokens_per_second > 0
    assert generation.seconds >= generation.seconds_to_first_token
    assert driver.self_test() == []
    # prefill starts a new sequence: a second generation from the same prompt is the same.
    assert driver.generate(PROMPT, NEW_TOKENS).tokens == generation.tokens
    assert driver.generate(PROMPT, 0).tokens == []


def test_self_test_reports_a_wrong_logit(projects, tmp_path):
    result, _ = projects["hbm"]
    project = tmp_path / "tampered"
    shutil.copytree(result.out, project)
    expected = project / "tb" / "data" / "expected_logits.bin"
    logits = np.fromfile(expected, "<i4")
    logits[5] += 1
    logits.tofile(expected)
    driver = load_driver(project, result.plan).Driver("csim")
    driver.load()
    mismatches = driver.self_test()
    assert mismatches[0].startswith("token 0: 1 logits differ, first [5] device ")
    assert len(mismatches) == 1


def test_driver_command_line_self_test_and_generation(projects):
    result, spec = projects["hbm"]
    driver = result.out / Flow.of_plan(result.plan).driver
    done = subprocess.run([sys.executable, str(driver), "--backend", "csim", "--self-test",
                           "--prompt", ",".join(map(str, PROMPT)), "--max-new-tokens", str(NEW_TOKENS)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 mismatches" in done.stdout and "PASS: bit-exact with the golden vectors" in done.stdout
    assert f"tokens: {','.join(map(str, golden_tokens(spec)))}" in done.stdout
    assert "time to first token" in done.stdout


# ----------------------------------------------------------------------------- pynq and xrt stand-ins
class SimulatedKernel:
    """The compiled top behind the kernel's arguments: reads its inputs from the buffers the
    host filled, writes the logits into the host's logits buffer."""

    def __init__(self, project, plan):
        self.device = CsimDevice(project)
        self.plan = plan
        self.uploads = [p.name for p in plan.memory_ports if p.data]

    def execute(self, values: dict) -> int:
        """values: argument name -> scalar or the buffer's bytes (numpy uint8 view)."""
        for index, name in enumerate(self.uploads):
            dtype = self.plan.memory_port(name).dtype
            self.device.upload(index, values[name].view(dtype))
        logits, next_token = self.device.step(int(values["token"]), bool(values["reset_state"]))
        out = values["logits"].view(self.plan.logit_dtype)     # whole 512-bit words: VOCAB and padding
        out[:len(logits)] = logits
        return next_token


def fake_pynq(kernel: SimulatedKernel, calls: list) -> types.ModuleType:
    """A register file at the planner's offsets and buffers at device addresses above 4 GB (so the
    high address word matters)."""
    memory, addresses = {}, itertools.count(0x1_2000_0000, 0x100_0000)
    offsets = {a.name: a for a in kernel.plan.arguments}

    class Buffer(np.ndarray):
        def flush(self):
            calls.append(("flush", self.device_address))

        def invalidate(self):
            calls.append(("invalidate", self.device_address))

    def allocate(shape, dtype, target=None):
        buffer = np.zeros(shape, dtype).view(Buffer)
        buffer.device_address = next(addresses)
        memory[buffer.device_address] = buffer
        calls.append(("allocate", target))
        return buffer

    class IP:
        def __init__(self):
            self.registers = {}

        def write(self, offset, value):
            self.registers[offset] = value
            if offset == 0 and value & 1:
                self.start()

        def read(self, offset):
            return self.registers.get(offset, 0)

        def start(self):
            r = self.registers
            values = {a.name: r[a.offset] for a in offsets.values() if a.kind == "scalar"}
            for a in offsets.values():
                if a.kind == "pointer":
                    values[a.name] = memory[r[a.offset] | r[a.offset + 4] << 32].view(np.uint8)
            r[offsets["next_token"].offset] = kernel.execute(values)
            r[0] = 0x2                                   # ap_done

    class Overlay:
        """Zynq: the block design's cell `accel`; Alveo: the compute unit and the memory banks."""

        def __init__(self, path):
            calls.append(("Overlay", path))
            self.ip = IP()

        def __getattr__(self, name):
            if name in ("accel", f"{kernel.plan.top}_top_1"):
                return self.ip
            if name.startswith(("HBM", "bank")):
                return f"memory {name}"
            raise AttributeError(name)

    return types.SimpleNamespace(Overlay=Overlay, allocate=allocate)


def fake_pyxrt(kernel: SimulatedKernel, calls: list) -> types.SimpleNamespace:
    names = [a.name for a in kernel.plan.arguments]

    class device:
        def __init__(self, index):
            calls.append(("device", index))

        def load_xclbin(self, xclbin):
            return "uuid"

    class xrt_kernel:
        shared = "shared"

        def __init__(self, device, uuid, name, mode):
            calls.append(("kernel", name))

        def group_id(self, index):
            calls.append(("group_id", names[index]))
            return 100 + index

    class bo:
        normal = 0

        def __init__(self, device, nbytes, flags, group):
            self.memory = np.zeros(nbytes, np.uint8)
            self.group = group

        def write(self, data, offset):
            self.memory[offset:offset + len(data)] = np.frombuffer(data, np.uint8)

        def read(self, size, offset):
            return self.memory[offset:offset + size].tobytes()

        def sync(self, direction, size, offset):
            calls.append(("sync", direction))

    class run:
        def __init__(self, kernel_object):
            self.args = {}

        def set_arg(self, index, value):
            self.args[names[index]] = value.memory if isinstance(value, bo) else value

        def start(self):
            kernel.execute(self.args)

        def wait(self):
            return "ERT_CMD_STATE_COMPLETED"

    directions = types.SimpleNamespace(XCL_BO_SYNC_BO_TO_DEVICE="to", XCL_BO_SYNC_BO_FROM_DEVICE="from")
    return types.SimpleNamespace(device=device, xclbin=lambda path: calls.append(("xclbin", path)) or path,
                                 kernel=xrt_kernel, bo=bo, run=run, xclBOSyncDirection=directions)


@pytest.mark.parametrize("backend, fake, name", [("pynq", fake_pynq, "zcu104"), ("pynq", fake_pynq, "hbm"),
                                                  ("xrt", fake_pyxrt, "onchip"), ("xrt", fake_pyxrt, "hbm")])
def test_board_backends_follow_the_register_map_and_argument_order(projects, monkeypatch, backend, fake, name):
    result, spec = projects[name]
    calls: list = []
    monkeypatch.setitem(sys.modules, "pynq" if backend == "pynq" else "pyxrt",
                        fake(SimulatedKernel(result.out, result.plan), calls))
    module = load_driver(result.out, result.plan)
    driver = module.Driver(backend)
    driver.load()
    assert driver.self_test() == []
    assert driver.generate(PROMPT, NEW_TOKENS).tokens == golden_tokens(spec)
    flow = Flow.of_plan(result.plan)
    if backend == "pynq":
        assert calls[0] == ("Overlay", str(result.out / flow.bitstream))
        targets = [c[1] for c in calls if c[0] == "allocate"]
        if flow.alveo:      # PYNQ on Alveo: each buffer in its link.cfg bank
            assert targets == [f"memory HBM{p.channels[0]}" for p in result.plan.memory_ports]
        else:
            assert targets == [None] * len(result.plan.memory_ports)
    else:
        pointers = [a.name for a in result.plan.arguments if a.kind == "pointer"]
        assert [c[1] for c in calls if c[0] == "group_id"] == pointers
        assert ("kernel", flow.kernel) in calls
