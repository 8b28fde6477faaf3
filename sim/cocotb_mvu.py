"""cocotb 2.x bench of one hlsgen ternary matrix-vector unit (rtl/<top>_mvu_<kind>.v).

`hlsgen cosim` runs it; the environment variable HLSGEN_MVU_RUN names a JSON file with the
project directory, the kind's entry of cosim/mvu.json, the random seed, the gap and backpressure
rates and where to write the report.  The bench only touches the ports Vitis HLS gives the
equivalent top function (ap_ctrl_hs, `<port>_TDATA/_TVALID/_TREADY`), so it can drive a
Vitis-generated RTL of that top as well.

Every cycle the bench samples the handshakes in the ReadOnly phase (what the clock edge will
transfer), then drives new values after the edge: the same on every simulator.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hlsgen.project.calls import read_calls
from hlsgen.hardware.perf import mvu_alone_cycles
from hlsgen.hardware.planner import BitLinearPlan
from hlsgen.project.rtl import matrix_lanes, mvu_calls, read_vectors

CLOCK_NS = 10
CALLS = "tb/data/calls.bin"      # the testbench's calls: n tokens each, at most the batch
RESET_CYCLES = 3


# ----------------------------------------------------------------------------- configuration
@dataclass
class Unit:
    """The kind's entry of cosim/mvu.json, its vectors and (for a weight stream) its weight words."""
    entry: dict
    project: Path
    vectors: object = None
    words: np.ndarray | None = None

    @classmethod
    def load(cls, run: dict) -> "Unit":
        project = Path(run["project"])
        unit = cls(run["entry"], project, read_vectors(project, run["entry"]))
        if unit.entry["weight_stream"]:
            stripes = [np.fromfile(project / f, dtype="<u8").reshape(-1, 8) for f in unit.entry["weights"]]
            unit.words = np.concatenate(stripes, axis=1)[unit.entry["base_word"]:]    # lane words
        return unit

    def __getitem__(self, key):
        return self.entry[key]

    @property
    def plan(self) -> BitLinearPlan:
        return BitLinearPlan(**self.entry["plan"])

    @property
    def batch(self) -> int:
        return self.plan.batch

    def calls(self, count: int | None = None) -> list[list[int]]:
        """The first `count` vectors (all: None) in the calls the testbench makes (rtl.mvu_calls)."""
        tokens = read_calls(self.project / CALLS)[:, 0]
        return mvu_calls(self["matrices"], tokens, len(self.vectors.layers) if count is None else count)

    def ideal(self, tokens: int) -> int:
        """perf.py's cycles of the MVU on a call of `tokens` tokens."""
        return mvu_alone_cycles(self.plan, tokens)

    def code_beats(self, codes: np.ndarray) -> list[int]:
        """SIMD int8 codes per beat, code s at bits 8s..8s+7."""
        simd = self["simd"]
        raw = codes.astype(np.uint8).reshape(-1, simd)
        return [int.from_bytes(beat.tobytes(), "little") for beat in raw]

    def sum_beats(self, sums: np.ndarray) -> list[int]:
        """PE accumulators per beat, pe 0 in the low bits, two's complement in acc_width bits; the
        sums of a call's n tokens [n, rows] go out per (row fold, token)."""
        pe, width = self["pe"], self["acc_width"]
        mask = (1 << width) - 1
        sums = sums.reshape(-1, self["rows"] // pe, pe)
        rows = sums.transpose(1, 0, 2).reshape(-1, pe)
        return [sum((int(v) & mask) << (width * p) for p, v in enumerate(row)) for row in rows]

    def weight_lanes(self, layer: int) -> list[int]:
        wpm = self["words_per_matrix"]
        return matrix_lanes(self.words[layer * wpm:(layer + 1) * wpm], self["lane_bits"], self["cycles_per_matrix"],
                            self["plan"]["packing"])

    def decode(self, beat: int) -> list[int]:
        """A sums beat as signed per-PE values (for mismatch messages)."""
        width = self["acc_width"]
        values = [(beat >> (width * p)) & ((1 << width) - 1) for p in range(self["pe"])]
        return [v - (1 << width) if v >> (width - 1) else v for v in values]


@dataclass
class Report:
    """What the tests measured; written as JSON after every test."""
    path: Path
    data: dict = field(default_factory=dict)

    def add(self, test: str, **values):
        self.data[test] = values
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")


def _run_config() -> dict:
    return json.loads(Path(os.environ["HLSGEN_MVU_RUN"]).read_text())


# ----------------------------------------------------------------------------- driving the DUT
class Port:
    """A DUT signal with its handle looked up once and writes only on change: both cost a few
    microseconds each through the GPI, and a bench runs millions of cycles."""

    def __init__(self, handle):
        self.handle, self.last = handle, None

    def set(self, value: int):
        if value != self.last:
            self.handle.value = value
            self.last = value

    def high(self) -> bool:
        return self.handle.value == 1

    def read(self) -> int:
        return int(self.handle.value)


class MvuDriver:
    """Drives one call (the matrix-vector products of its n tokens) at a time through the ap_ctrl_hs
    and AXI-Stream ports."""

    def __init__(self, dut, unit: Unit, rng: np.random.Generator):
        self.dut, self.unit, self.rng = dut, unit, rng
        self.stream = unit["weight_stream"]
        names = ["ap_clk", "ap_rst_n", "ap_start", "ap_idle", "ap_done", "codes_TDATA", "codes_TVALID",
                 "codes_TREADY", "sums_TDATA", "sums_TVALID", "sums_TREADY"]
        names += ["weights_TDATA", "weights_TVALID", "weights_TREADY"] if self.stream else []
        names += ["layer"] if unit["has_layer"] else []
        names += ["n_tokens"] if unit.batch > 1 else []
        self.p = {name: Port(getattr(dut, name)) for name in names}
        self.cycle = 0
        self.mismatches: list[str] = []

    def idle_inputs(self):
        p = self.p
        for name in ("ap_start", "codes_TVALID", "codes_TDATA", "sums_TREADY"):
            p[name].set(0)
        if self.stream:
            p["weights_TVALID"].set(0)
            p["weights_TDATA"].set(0)
        if "layer" in p:
            p["layer"].set(0)
        if "n_tokens" in p:
            p["n_tokens"].set(0)

    async def tick(self):
        await RisingEdge(self.dut.ap_clk)
        self.cycle += 1

    async def reset(self):
        self.idle_inputs()
        self.p["ap_rst_n"].set(0)
        for _ in range(RESET_CYCLES):
            await self.tick()
        self.p["ap_rst_n"].set(1)
        await self.tick()

    def _offer(self, valid: Port, data: Port, beats: list[int], index: int, gaps: float):
        """Present beat `index` unless all are sent or a random gap falls on this cycle."""
        present = index < len(beats) and (gaps == 0.0 or self.rng.random() >= gaps)
        valid.set(int(present))
        if present:
            data.set(beats[index])

    def _drive(self, codes, lanes, sent, gaps, backpressure):
        p = self.p
        self._offer(p["codes_TVALID"], p["codes_TDATA"], codes, sent["codes"], gaps)
        if self.stream:
            self._offer(p["weights_TVALID"], p["weights_TDATA"], lanes, sent["weights"], gaps)
        p["sums_TREADY"].set(int(backpressure == 0.0 or self.rng.random() >= backpressure))

    async def call(self, vectors: list[int], gaps: float = 0.0, backpressure: float = 0.0,
                   stop_after: int | None = None) -> int | None:
        """Run the call of `vectors` (n tokens of one matrix) and check every output beat; returns
        the cycles from the start edge to the one that sees ap_done, or None when stopped after
        `stop_after` cycles."""
        p, unit, v = self.p, self.unit, self.unit.vectors
        layer = int(v.layers[vectors[0]])
        assert all(int(v.layers[i]) == layer for i in vectors), f"call {vectors}: one matrix per call"
        codes = unit.code_beats(v.codes[vectors])          # token after token
        expected = unit.sum_beats(v.expected[vectors])
        lanes = unit.weight_lanes(layer) if self.stream else []
        sent = {"codes": 0, "weights": 0}
        received, started, begin = 0, None, self.cycle
        limit = 20 * unit.ideal(len(vectors)) + 1000
        p["ap_start"].set(1)
        if "layer" in p:
            p["layer"].set(layer)
        if "n_tokens" in p:
            p["n_tokens"].set(len(vectors))
        self._drive(codes, lanes, sent, gaps, backpressure)
        while True:
            await ReadOnly()      # what the coming edge transfers
            start_now = started is None and p["ap_idle"].high()
            took_code = p["codes_TVALID"].last == 1 and p["codes_TREADY"].high()
            took_lane = self.stream and p["weights_TVALID"].last == 1 and p["weights_TREADY"].high()
            beat = p["sums_TDATA"].read() if p["sums_TREADY"].last == 1 and p["sums_TVALID"].high() else None
            done = p["ap_done"].high()
            await self.tick()
            if start_now:
                started = self.cycle
            sent["codes"] += took_code
            sent["weights"] += took_lane
            if beat is not None:
                self._check(vectors, received, beat, expected)
                received += 1
            if done:
                p["ap_start"].set(0)     # ap_ready came with ap_done: the start was taken
                break
            if stop_after is not None and self.cycle - begin >= stop_after:
                return None
            if self.cycle - begin > limit:
                raise AssertionError(f"call {vectors}: no ap_done after {limit} cycles "
                                     f"(codes sent {sent['codes']}/{len(codes)}, sums received {received}/{len(expected)})")
            self._drive(codes, lanes, sent, gaps, backpressure)
        self.idle_inputs()
        if received != len(expected):
            self.mismatches.append(f"call {vectors}: {received} sums beats, expected {len(expected)}")
        return self.cycle - started

    def _check(self, vectors: list[int], beat_index: int, beat: int, expected: list[int]):
        if beat_index >= len(expected):
            self.mismatches.append(f"call {vectors}: extra sums beat {beat_index}: {self.unit.decode(beat)}")
        elif beat != expected[beat_index]:
            pe, n = self.unit["pe"], len(vectors)
            fold, index = beat_index // n, vectors[beat_index % n]     # beats per (row fold, token)
            self.mismatches.append(
                f"vector {index} (layer {int(self.unit.vectors.layers[index])}), rows "
                f"{fold * pe}..{fold * pe + pe - 1}: got {self.unit.decode(beat)} "
                f"(0x{beat:x}), expected {self.unit.decode(expected[beat_index])} (0x{expected[beat_index]:x})")


async def _setup(dut):
    run = _run_config()
    unit = Unit.load(run)
    cocotb.start_soon(Clock(dut.ap_clk, CLOCK_NS, unit="ns").start())
    driver = MvuDriver(dut, unit, np.random.default_rng(run["seed"]))
    await driver.reset()
    return run, unit, driver, Report(Path(run["report"]), _existing(Path(run["report"])))


def _existing(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _fail_on(driver: MvuDriver, what: str):
    assert not driver.mismatches, f"{what}: {len(driver.mismatches)} mismatches; first: " + "; ".join(driver.mismatches[:3])


# ----------------------------------------------------------------------------- tests
@cocotb.test()
async def golden_vectors(dut):
    """Every golden vector, in calls of up to the batch, with random valid gaps on the inputs and
    random backpressure on sums."""
    run, unit, driver, report = await _setup(dut)
    count = min(len(unit.vectors.layers), run["max_vectors"] or len(unit.vectors.layers))
    calls = unit.calls(count)
    wall, first = time.perf_counter(), driver.cycle
    cycles = [await driver.call(c, run["gaps"], run["backpressure"]) for c in calls]
    wall = time.perf_counter() - wall
    report.add("golden_vectors", vectors=count, of=len(unit.vectors.layers), calls=len(calls),
               tokens=[len(c) for c in calls], ideals=[unit.ideal(len(c)) for c in calls], gaps=run["gaps"],
               backpressure=run["backpressure"], cycles=cycles, mismatches=driver.mismatches[:20],
               sim_cycles=driver.cycle - first, wall_seconds=wall)
    _fail_on(driver, "golden_vectors")


@cocotb.test()
async def throughput(dut):
    """No gaps, no backpressure: cycles per call against perf.mvu_alone_cycles (rows*cols/(PE*SIMD) for
    one token).  The first calls, which are full ones of the batch when there are enough tokens."""
    run, unit, driver, report = await _setup(dut)
    calls = unit.calls()[:run["throughput_vectors"]]
    wall, first = time.perf_counter(), driver.cycle
    cycles = [await driver.call(c) for c in calls]
    wall = time.perf_counter() - wall
    tokens, ideals = [len(c) for c in calls], [unit.ideal(len(c)) for c in calls]
    worst = max(range(len(calls)), key=lambda i: cycles[i] / ideals[i])
    report.add("throughput", vectors=sum(tokens), calls=len(calls), tokens=tokens, cycles=cycles, ideals=ideals,
               ideal=ideals[worst], worst=worst, ratio=cycles[worst] / ideals[worst],
               mismatches=driver.mismatches[:20], sim_cycles=driver.cycle - first, wall_seconds=wall)
    _fail_on(driver, "throughput")


@cocotb.test()
async def reset_mid_stream(dut):
    """ap_rst_n in the middle of a product: the unit goes idle, then computes the next one right."""
    run, unit, driver, report = await _setup(dut)
    calls = unit.calls()
    stop = int(driver.rng.integers(2, max(3, unit.ideal(len(calls[0])))))
    await driver.call(calls[0], run["gaps"], run["backpressure"], stop_after=stop)
    driver.mismatches.clear()           # the interrupted product's beats are not checked
    await driver.reset()
    await ReadOnly()
    idle = (dut.ap_idle.value == 1, dut.sums_TVALID.value == 0, dut.codes_TREADY.value == 0)
    await driver.tick()
    assert all(idle), f"after reset: ap_idle, !sums_TVALID, !codes_TREADY = {idle}"
    last = calls[-1]
    cycles = await driver.call(last, run["gaps"], run["backpressure"])
    report.add("reset_mid_stream", reset_after=stop, then_vectors=last, cycles=cycles,
               mismatches=driver.mismatches[:20])
    _fail_on(driver, "reset_mid_stream")
