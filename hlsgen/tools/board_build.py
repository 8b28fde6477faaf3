"""`hlsgen bitstream` on an ECP5 board: the project's RTL (rtl/: `<top>_core`; board/: the top with
the PLL, UART and protocol) through Yosys, nextpnr-ecp5 and ecppack (hlsgen/tools/ecp5.py), in
impl/ecp5/, to impl/<top>.bit and report/pnr.json.

The fit check runs on the synthesized netlist, before place and route: LUT4, FF, DP16KD and
MULT18X18D against the chip, with the numbers.  The clock constraint is the plan's clock: the .lpf
constrains the oscillator and nextpnr derives the PLL's output from it.  A design that misses it
is refused; with `allow_slow` it is built again at the fastest PLL setting within what was met, and
report/pnr.json records that clock (`hlsgen report` and the driver read it there).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from hlsgen.errors import HlsgenError
from hlsgen.hardware import open_board as ob
from hlsgen.project.open_board import BoardFiles
from hlsgen.project.vendor import Flow
from hlsgen.tools import ecp5
from hlsgen.tools.serial_sim import MEMORY_IMAGES, core_sources
from hlsgen.version import BANNER

WORK = "impl/ecp5"
PNR_REPORT = "report/pnr.json"
SLOW_ATTEMPTS = 3          # lowering the clock moves the placement: try again if it still misses
# nextpnr's cell types, in the chip's resources (board files' ECP5 keys).
PNR_CELLS = {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "DP16KD": "dp16kd", "MULT18X18D": "mult18"}


def device(flow: Flow) -> ecp5.Device:
    e = flow.board.ecp5
    return ecp5.Device(e.size, e.package, e.speed)


def stage_sources(project: Path, work: Path) -> list[Path]:
    """The core's and the board's Verilog, and the ROM images, copied into the work directory
    (Yosys reads them there, and $readmemh opens the images relative to it)."""
    flow = Flow.of_project(project)
    board = [project / v for v in BoardFiles(flow.top).verilog]
    work.mkdir(parents=True, exist_ok=True)
    staged = []
    for source in core_sources(project) + board:
        shutil.copyfile(source, work / source.name)
        staged.append(work / source.name)
    for pattern in MEMORY_IMAGES:
        for image in (project / "rtl").glob(pattern):
            shutil.copyfile(image, work / image.name)
    shutil.copyfile(project / BoardFiles(flow.top).lpf, work / Path(BoardFiles(flow.top).lpf).name)
    return staged


def commands(project: Path, flow: Flow, clock_mhz: float, options: ecp5.PnrOptions = ecp5.PnrOptions()) -> list[list[str]]:
    """What bitstream() runs, in impl/ecp5/ (for --dry-run)."""
    files = BoardFiles(flow.top)
    work = project / WORK
    sources = [Path(p).name for p in sorted((project / "rtl").glob("*.v"))] + [Path(v).name for v in files.verilog]
    netlist = work / f"{files.module}.ecp5.json"
    config = work / f"{flow.top}.config"
    return [ecp5.synth_command(sources, files.module, netlist, ob.clock_defines(flow.board, clock_mhz)),
            ecp5.pnr_command(netlist, clock_mhz, device(flow), lpf=Path(Path(files.lpf).name), textcfg=config,
                             options=options),
            ecp5.pack_command(Path(config.name), Path(config.with_suffix(".bit").name))]


def print_commands(project: Path, flow: Flow, options: ecp5.PnrOptions = ecp5.PnrOptions()) -> None:
    import shlex
    print(f"# {flow.board.name}: Yosys, nextpnr-ecp5 and ecppack at {flow.clock_mhz:g} MHz "
          f"(the sources and ROM images of rtl/ and board/ are copied into {WORK} first)")
    print(f"cd {project / WORK}")
    for command in commands(project, flow, flow.clock_mhz, options):
        print(shlex.join(command))
    print(f"mv {flow.top}.bit {project / flow.bitstream}")


def place(project: Path, flow: Flow, work: Path, sources: list[Path], clock_mhz: float,
          options: ecp5.PnrOptions) -> tuple:
    """Synthesis, the fit check and place and route at one clock: (netlist usage, PnrResult)."""
    files = BoardFiles(flow.top)
    print(f"hlsgen: yosys synth_ecp5 of {files.module} at {clock_mhz:g} MHz", flush=True)
    netlist = ecp5.synthesize(sources, files.module, work, ob.clock_defines(flow.board, clock_mhz))
    used = ob.netlist_usage(json.loads(netlist.read_text()), files.module)
    print("hlsgen: synthesized: " + ", ".join(f"{k.upper()} {n:,}" for k, n in used.items()), flush=True)
    ob.check_netlist(used, flow.board)
    print(f"hlsgen: nextpnr-ecp5 --{flow.board.ecp5.size} --package {flow.board.ecp5.package} "
          f"(its progress: {netlist.with_suffix('.pnr.log')})", flush=True)
    # Relative: the YoWASP build sees only its working directory.
    result = ecp5.place_and_route(netlist, clock_mhz, device(flow), lpf=Path(Path(files.lpf).name),
                                  textcfg=work / f"{flow.top}.config", options=options)
    return used, result


def bitstream(project: Path, allow_slow: bool = False, options: ecp5.PnrOptions = ecp5.PnrOptions()) -> int:
    flow = Flow.of_project(project)
    work = project / WORK
    sources = stage_sources(project, work)
    start = time.perf_counter()
    clock = ob.pll(flow.board.ecp5.oscillator_mhz, flow.clock_mhz).output_mhz
    used, result = place(project, flow, work, sources, clock, options)
    attempts = 0
    while not result.met():
        fmax = result.worst_fmax_mhz
        if not allow_slow:       # recorded all the same: `hlsgen report` shows what was reached
            write_report(project, pnr_report(flow, clock, used, result, time.perf_counter() - start, options))
            raise HlsgenError(f"bitstream: {flow.top} reaches {fmax:g} MHz ({fmax_text(result)}), below its "
                              f"{clock:g} MHz clock (allowed: a lower hardware.clock_mhz, or --allow-slow to build "
                              f"it at the clock it meets)")
        if attempts == SLOW_ATTEMPTS:
            raise HlsgenError(f"bitstream: {flow.top} still misses its clock after {SLOW_ATTEMPTS} lower ones "
                              f"({fmax_text(result)}) (allowed: a lower hardware.clock_mhz)")
        attempts += 1
        clock = ob.pll_at_most(flow.board.ecp5.oscillator_mhz, fmax).output_mhz
        print(f"hlsgen: {fmax:g} MHz met; --allow-slow: building again at {clock:g} MHz", flush=True)
        used, result = place(project, flow, work, sources, clock, options)
    bit = project / flow.bitstream
    ecp5.pack(work / f"{flow.top}.config", bit)
    report = pnr_report(flow, clock, used, result, time.perf_counter() - start, options)
    path = write_report(project, report)
    print(f"hlsgen: built {bit}: {fmax_text(result)}, clock {clock:g} MHz"
          f"{' (lowered from %g MHz)' % flow.clock_mhz if report['lowered'] else ''}")
    print("  " + ", ".join(f"{k.upper()} {report['used'][k]:,} of {report['available'][k]:,}" for k in report["used"]))
    print(f"  recorded in {path}")
    return 0


def write_report(project: Path, report: dict) -> Path:
    path = project / PNR_REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path


def fmax_text(result: ecp5.PnrResult) -> str:
    """Fmax per clock, and where the slowest path runs: what a user changes to reach the clock."""
    text = ", ".join(f"{net} Fmax {mhz:g} MHz" for net, mhz in result.fmax_mhz.items())
    path = result.critical_path
    if path:
        text += (f"; critical path {path['from']} -> {path['to']}: {path['delay_ns']:g} ns, "
                 f"{path['routing_ns']:g} ns of it routing")
    return text


def pnr_report(flow: Flow, clock_mhz: float, synthesized: dict, result: ecp5.PnrResult, seconds: float,
               options: ecp5.PnrOptions = ecp5.PnrOptions()) -> dict:
    board = flow.board
    p = ob.pll(board.ecp5.oscillator_mhz, clock_mhz)
    return {"generated_by": BANNER, "top": flow.top, "board": board.key, "part": board.part,
            "plan_clock_mhz": flow.clock_mhz, "clock_mhz": clock_mhz, "lowered": clock_mhz < flow.clock_mhz - 1e-9,
            "met": result.met(), "fmax_mhz": result.fmax_mhz, "constraint_mhz": result.constraint_mhz,
            "pll": {"clki_div": p.clki_div, "clkfb_div": p.clkfb_div, "clkop_div": p.clkop_div, "vco_mhz": p.vco_mhz},
            "used": {PNR_CELLS[k]: result.used.get(k, 0) for k in PNR_CELLS},
            "available": {PNR_CELLS[k]: result.available.get(k, board.resources[PNR_CELLS[k]]) for k in PNR_CELLS},
            "critical_path": result.critical_path, "synthesized": synthesized, "seconds": round(seconds, 1),
            **options.recorded()}
