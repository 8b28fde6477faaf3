"""cocotb bench of `<top>_core` alone: the cycles of each stage of one token (the sequencer's pc),
for calibrating hlsgen/hardware/perf.py's model of the RTL core (bench/bench_open_board.py
--stages).  The run file (HLSGEN_STAGES_RUN) names the report to write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


@cocotb.test()
async def stage_cycles(dut):
    run = json.loads(Path(os.environ["HLSGEN_STAGES_RUN"]).read_text())
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value, dut.start.value, dut.token.value, dut.slot.value, dut.reset_state.value = 1, 0, 1, 0, 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    cycles, total = {}, 1
    while True:
        await RisingEdge(dut.clk)
        total += 1
        pc = int(dut.pc.value)
        cycles[pc] = cycles.get(pc, 0) + 1
        if int(dut.done.value):
            break
        assert total < run["limit"], "no done"
    Path(run["report"]).write_text(json.dumps({"total": total, "per_pc": [cycles.get(p, 0) for p in range(max(cycles) + 1)]}))
