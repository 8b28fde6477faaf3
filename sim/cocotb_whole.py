"""cocotb 2.x bench of the whole accelerator in RTL (rtl/<top>_core.v, hlsgen/project/rtl_core.py).

`hlsgen cosim --whole` runs it; the environment variable HLSGEN_WHOLE_RUN names a JSON file with
the project directory, cosim/whole.json, how many tokens to run and where to write the report.

The bench feeds the testbench's calls (tb/data/calls.bin) token by token: a call of n tokens in
batch_mode 0 is n tokens in slot 0; in batch_mode 1 token t goes to slot t; reset_state bit s
zeroes slot s before its next token.  Each cycle it samples the core's probes (dbg_pc, the stage;
dbg_wr_*, every value a stage writes, on each lane of the write bus; dbg_codes_*, a quantiser's
codes, several a cycle per slot) and its outputs after the clock edge, and compares:
- every probed value with the golden fixed model's value of that stage (cosim/whole_expected.bin),
  naming the first divergence by token, layer and stage;
- every logit and the next token with the testbench's golden files (tb/data/expected_*.bin).
It measures the cycles from `start` to `done` of every token.
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

from hlsgen.model.spec import MAX_BATCH
from hlsgen.project.calls import read_calls

CLOCK_NS = 10
RESET_CYCLES = 3


@dataclass(frozen=True)
class TokenStep:
    """One `start` of the core: which token, in which slot, whether that slot is reset first, and
    whether the token is the previous one's argmax fed back (decode) or given (prefill)."""
    token: int
    slot: int
    reset: bool
    decode: bool


def token_steps(calls: np.ndarray, expected_next: np.ndarray) -> list[TokenStep]:
    """The calls as the core's starts, in the order calls.run_calls feeds the golden model."""
    steps, pending_reset, last_next = [], [False] * MAX_BATCH, {}
    for n, batch_mode, reset_mask, *tokens in calls.tolist():
        for slot in range(MAX_BATCH):
            if reset_mask >> slot & 1:
                pending_reset[slot] = True
                last_next.pop(slot, None)
        for t, token in enumerate(tokens[:n]):
            slot = t if batch_mode else 0
            decode = last_next.get(slot) == token
            steps.append(TokenStep(int(token), slot, pending_reset[slot], decode))
            pending_reset[slot] = False
            last_next[slot] = int(expected_next[len(steps) - 1])
    return steps


@dataclass
class Golden:
    index: dict
    values: np.ndarray          # int64 [T, values_per_token]: every stage's probed values
    logits: np.ndarray          # int64 [T, V]
    next_tokens: np.ndarray     # int64 [T]
    steps: list

    @classmethod
    def load(cls, project: Path, index: dict) -> "Golden":
        vocab = index["vocab"]
        values = np.fromfile(project / index["expected"], dtype="<i8").reshape(-1, index["values_per_token"])
        logits = np.fromfile(project / "tb/data/expected_logits.bin", dtype="<i4").reshape(-1, vocab).astype(np.int64)
        next_tokens = np.fromfile(project / "tb/data/expected_next.bin", dtype="<i4").astype(np.int64)
        steps = token_steps(read_calls(project / "tb/data/calls.bin"), next_tokens)
        return cls(index, values, logits, next_tokens, steps)

    def stage(self, pc: int) -> dict:
        return self.index["stages"][pc]


@dataclass
class TokenResult:
    cycles: int
    next_token: int
    logits: list = field(default_factory=list)
    last_writes: list = field(default_factory=list)     # per stage: the cycle of its last probed value


class Divergence(Exception):
    """The first value that differs from the golden model (token, layer, stage, index)."""

    def __init__(self, **where):
        self.where = where
        layer = f"layer {where['layer']}, " if where.get("layer", -1) >= 0 else ""
        super().__init__(f"token {where['token']} ({layer}stage {where['stage']!r}, index {where['index']}): "
                         f"{where['what']}")


class Port:
    """A DUT signal looked up once (each lookup costs microseconds through the GPI)."""

    def __init__(self, handle):
        self.handle = handle

    def set(self, value: int):
        self.handle.value = value

    def read(self) -> int:
        return int(self.handle.value)

    def signed(self) -> int:
        return self.handle.value.to_signed()


class CoreDriver:
    def __init__(self, dut, golden: Golden):
        self.dut, self.golden = dut, golden
        names = ["clk", "rst", "start", "token", "slot", "reset_state", "idle", "done", "next_token",
                 "logit_valid", "logit", "dbg_pc", "dbg_wr_valid", "dbg_wr_index", "dbg_wr_value",
                 "dbg_codes_valid", "dbg_codes_index", "dbg_codes_value"]
        self.p = {name: Port(getattr(dut, name)) for name in names}
        self.index_w = len(dut.dbg_wr_index) // golden.index["write_lanes"]
        self.cycle = 0

    async def tick(self):
        await RisingEdge(self.dut.clk)
        self.cycle += 1

    async def reset(self):
        p = self.p
        for name in ("start", "token", "slot", "reset_state"):
            p[name].set(0)
        p["rst"].set(1)
        for _ in range(RESET_CYCLES):
            await self.tick()
        p["rst"].set(0)
        await self.tick()

    async def run_token(self, t: int, step: TokenStep, limit: int) -> TokenResult:
        """One token: start, then every cycle the probes and outputs until done."""
        p, g = self.p, self.golden
        expected = g.values[t]
        stages = g.index["stages"]
        written = [0] * len(stages)
        last_write = [0] * len(stages)
        p["token"].set(step.token)
        p["slot"].set(step.slot)
        p["reset_state"].set(int(step.reset))
        p["start"].set(1)
        await self.tick()
        p["start"].set(0)
        begin = self.cycle - 1
        result = None
        logits = []
        while result is None:
            await ReadOnly()
            lanes_valid = p["dbg_wr_valid"].read()
            if lanes_valid:     # lane s's values are at the stage's lane_offsets[s] + index
                pc, indexes, values = p["dbg_pc"].read(), p["dbg_wr_index"].read(), p["dbg_wr_value"].read()
                stage = stages[pc]
                for lane in range(g.index["write_lanes"]):
                    if lanes_valid >> lane & 1:
                        index = (indexes >> (lane * self.index_w)) & ((1 << self.index_w) - 1)
                        value = (values >> (64 * lane)) & ((1 << 64) - 1)
                        self._check_probe(t, stage, stage["lane_offsets"][lane] + index,
                                          value - (1 << 64) if value >> 63 else value, expected)
                        written[pc] += 1
                last_write[pc] = self.cycle - begin
            slots_valid = p["dbg_codes_valid"].read()
            if slots_valid:     # a quantise stage's codes, codes_lanes a cycle per slot (a signed byte each)
                pc, index, packed = p["dbg_pc"].read(), p["dbg_codes_index"].read(), p["dbg_codes_value"].read()
                stage, lanes = stages[pc], g.index["codes_lanes"]
                for slot in range(g.index["write_lanes"]):
                    if slots_valid >> slot & 1:
                        for lane in range(lanes):
                            code = (packed >> (8 * (slot * lanes + lane))) & 0xFF
                            self._check_probe(t, stage, stage["lane_offsets"][slot] + index + lane,
                                              code - 256 if code & 0x80 else code, expected)
                        written[pc] += lanes
                last_write[pc] = self.cycle - begin
            if p["logit_valid"].read():
                logits.append(p["logit"].signed())
            if p["done"].read():
                result = TokenResult(self.cycle - begin, p["next_token"].read(), logits, last_write)
            await self.tick()
            if self.cycle - begin > limit:
                raise AssertionError(f"token {t}: no done after {limit} cycles (stage {stages[p['dbg_pc'].read()]['name']})")
        for stage, count in zip(stages, written):
            if count != stage["length"]:
                raise Divergence(token=t, layer=stage["layer"], stage=stage["name"], index=count,
                                 what=f"{count} values written, expected {stage['length']}")
        return result

    def _check_probe(self, t: int, stage: dict, index: int, value: int, expected: np.ndarray):
        if index >= stage["length"]:
            raise Divergence(token=t, layer=stage["layer"], stage=stage["name"], index=index,
                             what=f"index past the stage's {stage['length']} values")
        want = int(expected[stage["offset"] + index])
        if value != want:
            raise Divergence(token=t, layer=stage["layer"], stage=stage["name"], index=index,
                             what=f"got {value}, expected {want}", got=value, expected=want)


def _run_config() -> dict:
    return json.loads(Path(os.environ["HLSGEN_WHOLE_RUN"]).read_text())


@cocotb.test()
async def whole_model(dut):
    """Every token of the testbench's calls (or the first max_tokens): every probed stage value,
    every logit and every next token, bit for bit; cycles per token."""
    run = _run_config()
    project = Path(run["project"])
    golden = Golden.load(project, run["index"])
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    driver = CoreDriver(dut, golden)
    await driver.reset()
    steps = golden.steps[:run["max_tokens"] or len(golden.steps)]
    report = {"tokens": len(steps), "of": len(golden.steps), "cycles": [], "decode": [], "slots": [],
              "logit_mismatches": [], "next_token_mismatches": [], "divergence": None}
    limit = 20 * run["index"]["mvu_cycles"] + 100_000
    wall = time.perf_counter()
    first_cycle = driver.cycle
    try:
        for t, step in enumerate(steps):
            result = await driver.run_token(t, step, limit)
            report["cycles"].append(result.cycles)
            report["decode"].append(step.decode)
            report["slots"].append(step.slot)
            if t == 0:     # where the cycles go: from one stage's last value to the next one's
                ends = [0] + result.last_writes
                report["stage_cycles"] = [{"name": s["name"], "layer": s["layer"], "op": s["op"],
                                           "cycles": ends[i + 1] - ends[i]}
                                          for i, s in enumerate(golden.index["stages"])]
            want = golden.logits[t]
            if len(result.logits) != len(want) or np.any(np.array(result.logits) != want):
                bad = [i for i in range(len(want)) if i >= len(result.logits) or result.logits[i] != want[i]]
                report["logit_mismatches"].append({"token": t, "count": len(bad), "first": bad[:5],
                                                   "received": len(result.logits)})
            if result.next_token != golden.next_tokens[t]:
                report["next_token_mismatches"].append({"token": t, "got": result.next_token,
                                                        "expected": int(golden.next_tokens[t])})
    except Divergence as exc:
        report["divergence"] = {**exc.where, "message": str(exc)}
    report["sim_cycles"] = driver.cycle - first_cycle
    report["wall_seconds"] = time.perf_counter() - wall
    Path(run["report"]).write_text(json.dumps(report, indent=1) + "\n")
    assert report["divergence"] is None, f"first divergence: {report['divergence']['message']}"
    assert not report["logit_mismatches"], f"logits differ: {report['logit_mismatches'][:3]}"
    assert not report["next_token_mismatches"], f"next tokens differ: {report['next_token_mismatches'][:3]}"
