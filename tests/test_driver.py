"""The generated Python host driver, end to end on the csim backend: `generate` (the prompt in
blocks of the batch) and `generate_batch` (prompts side by side) equal the golden fixed model's
tokens and the self-test replays tb/data/calls.bin bit-exactly, on chip and over m_axi (HBM).

The pynq and xrt backends run here too, against stand-ins for the pynq and pyxrt packages that
hold a register file and a memory and compute with the same compiled top as the csim backend.
They check the driver's own side of the contract (registers by the planner's offsets, 64-bit
addresses split low/high, the tokens word in and the next tokens out, one buffer per port in its
bundle's bank, arguments by index), not the vendor libraries, which only a board can.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import needs_tool, write_config
from hlsgen.model import checkpoint, golden
from hlsgen.project import build
from hlsgen.project import calls as calls_mod
from hlsgen.model import spec as spec_mod
from hlsgen.tools.device import CsimDevice
from hlsgen.errors import HlsgenError
from hlsgen.project.vendor import Flow, bundle_ports

pytestmark = [pytest.mark.usefixtures("hlsgen_cache"), needs_tool("g++")]

OFFCHIP = {"pe": 8, "simd": 4, "lm_head_pe": 4, "lm_head_simd": 16}
BATCH = 3      # PROMPT: a full block and a partial one
PROJECTS = {
    "onchip": {},
    "hbm": {"hardware": {"weights": "hbm", "parallelism": OFFCHIP, "batch": BATCH}},
    # The same sources as "hbm" (so the same compiled top) on a Zynq board.
    "zcu104": {"hardware": {"board": "zcu104", "weights": "ddr", "parallelism": OFFCHIP, "batch": BATCH}},
}
CSIM = ["onchip", "hbm"]
PROMPT = [1, 2, 3, 200]
PROMPTS = [PROMPT, [5], [7, 8]]      # side by side: of different lengths, one a single token
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
    assert generation.prefill_tokens_per_second > 0
    assert generation.seconds >= generation.seconds_to_first_token
    assert driver.self_test() == []
    # prefill starts a new sequence: a second generation from the same prompt is the same.
    assert driver.generate(PROMPT, NEW_TOKENS).tokens == generation.tokens
    assert driver.generate(PROMPT, 0).tokens == []
    batch = result.plan.batch
    side_by_side = driver.generate_batch(PROMPTS[:batch], NEW_TOKENS)
    assert side_by_side.tokens == [golden_tokens(spec, p) for p in PROMPTS[:batch]]
    assert side_by_side.tokens_per_second > 0
    # After a batched call slot 0 holds another sequence's state; generate starts afresh anyway.
    assert driver.generate(PROMPT, NEW_TOKENS).tokens == generation.tokens


def test_driver_refuses_calls_the_kernel_cannot_take(projects):
    result, _ = projects["hbm"]
    driver = load_driver(result.out, result.plan).Driver("csim")
    driver.load()
    for tokens, mode, mask, message in (([], 0, 0, "0 tokens in one call (allowed: 1 to 3)"),
                                        ([1] * 4, 1, 0, "4 tokens in one call (allowed: 1 to 3)"),
                                        ([256], 0, 0, "token 256 is out of range (allowed: 0 to 255)"),
                                        ([1], 0, 8, "reset mask 0x8 is out of range (allowed: 0 to 0x7)")):
        with pytest.raises(ValueError, match=re.escape(message)):
            driver.run(tokens, mode, mask)
    with pytest.raises(ValueError, match=re.escape("4 prompts (allowed: 1 to 3")):
        driver.generate_batch([[1]] * 4, 2)


def test_csim_device_runs_calls_and_refuses_what_the_top_cannot_take(projects):
    result, spec = projects["hbm"]
    device = CsimDevice(result.out)
    device.upload_project_buffers()
    assert (device.vocab, device.batch) == (spec.model.vocab, BATCH)
    model = golden.Model(spec.model, checkpoint.load(spec), "fixed", spec.numerics)
    calls = np.array([calls_mod.call_row(PROMPT[:3], False, 1), calls_mod.call_row([9, 10], True, 0b11)], np.int32)
    expected = calls_mod.run_calls(model, calls)
    first = device.run(PROMPT[:3], batch_mode=False, reset_state=1)
    second = device.run(np.array([9, 10]), batch_mode=True, reset_state=0b11)
    assert np.array_equal(np.concatenate([first[0], second[0]]), expected)
    assert np.array_equal(np.concatenate([first[1], second[1]]), np.argmax(expected, axis=1))
    logits, next_token = device.step(PROMPT[0], reset=True)
    assert np.array_equal(logits, expected[0]) and next_token == int(np.argmax(expected[0]))
    for args, message in ((([],), "0 tokens in one call (allowed: 1 to 3)"),
                          (([0, 1, 2, 3],), "4 tokens in one call (allowed: 1 to 3)"),
                          (([-1],), "token -1 is out of range (allowed: 0 to 255)"),
                          (([1], False, 1 << 3), "reset_state 0x8 is out of range")):
        with pytest.raises(HlsgenError, match=re.escape("csim device: " + message)):
            device.run(*args)


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
    assert mismatches[0].startswith("token 0 (call 0): 1 logits differ, first [5] device ")
    assert len(mismatches) == 1


def test_self_test_replays_the_calls_as_recorded(projects, monkeypatch):
    """Every row of calls.bin is one call, with its own tokens, mode and reset mask."""
    result, _ = projects["hbm"]
    module = load_driver(result.out, result.plan)
    driver = module.Driver("csim")
    driver.load()
    seen = []
    call = driver.backend.call
    monkeypatch.setattr(driver.backend, "call", lambda *args: seen.append(args[:3]) or call(*args))
    assert driver.self_test() == []
    calls = calls_mod.read_calls(result.out / "tb" / "data" / "calls.bin")
    assert [(list(t), m, r) for t, m, r in seen] == [(c[calls_mod.CALL_HEADER:calls_mod.CALL_HEADER + c[0]], c[1], c[2]) for c in calls.tolist()]
    assert {m for _, m, _ in seen} == {0, 1} and max(len(t) for t, _, _ in seen) == BATCH


def test_driver_command_line_self_test_and_generation(projects):
    result, spec = projects["hbm"]
    driver = result.out / Flow.of_plan(result.plan).driver
    command = [sys.executable, str(driver), "--backend", "csim", "--max-new-tokens", str(NEW_TOKENS)]
    done = subprocess.run(command + ["--self-test", "--prompt", ",".join(map(str, PROMPT))],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 mismatches" in done.stdout and "PASS: bit-exact with the golden vectors" in done.stdout
    assert f"batch_mode 0, {BATCH} tokens per call: " in done.stdout
    assert f"tokens: {','.join(map(str, golden_tokens(spec)))}" in done.stdout
    assert re.search(r"prefill [\d.]+ tokens/s, time to first token [\d.]+ ms; decode [\d.]+ tokens/s", done.stdout)
    prompts = [a for p in PROMPTS for a in ("--prompt", ",".join(map(str, p)))]
    done = subprocess.run(command + prompts, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for s, p in enumerate(PROMPTS):
        assert f"tokens[{s}]: {','.join(map(str, golden_tokens(spec, p)))}" in done.stdout
    done = subprocess.run(command + prompts + ["--prompt", "1"], capture_output=True, text=True)
    assert done.returncode == 2 and "--prompt: 4 prompts (allowed: at most 3, the kernel's batch)" in done.stderr


# ----------------------------------------------------------------------------- pynq and xrt stand-ins
class SimulatedKernel:
    """The compiled top behind the kernel's arguments: reads its inputs from the buffers the
    host filled, writes the logits into the host's logits buffer."""

    def __init__(self, project, plan):
        self.device = CsimDevice(project)
        self.plan = plan
        self.uploads = [p.name for p in plan.memory_ports if p.data]

    def execute(self, values: dict) -> None:
        """values: argument name -> scalar or the buffer's bytes (numpy uint8 view)."""
        for index, name in enumerate(self.uploads):
            dtype = self.plan.memory_port(name).dtype
            self.device.upload(index, values[name].view(dtype))
        n = int(values["n_tokens"])
        tokens = values["tokens"].view("<i4")[:n]
        logits, next_tokens = self.device.run(tokens, bool(values["batch_mode"]), int(values["reset_state"]))
        # Token t's logits from word t * logit_words (whole 512-bit words: VOCAB and padding).
        rows = values["logits"].view(self.plan.logit_dtype).reshape(self.plan.batch, -1)
        rows[:n, :logits.shape[1]] = logits
        values["next_tokens"].view("<i4")[:n] = next_tokens


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
            kernel.execute(values)
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

        def wait(self, timeout_ms=0):
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
        if flow.alveo:      # PYNQ on Alveo: each buffer in its bundle's link.cfg bank
            bundles = bundle_ports(result.plan)
            assert targets == [f"memory HBM{bundles[p.bundle].channels[0]}" for p in result.plan.memory_ports]
        else:
            assert targets == [None] * len(result.plan.memory_ports)
    else:
        pointers = [a.name for a in result.plan.arguments if a.kind == "pointer"]
        assert [c[1] for c in calls if c[0] == "group_id"] == pointers
        assert ("kernel", flow.kernel) in calls
