"""`hlsgen bitstream` and `hlsgen flash`: run the vendor flow of a generated project (hlsgen/project/vendor.py
decides the commands), or print them with --dry-run.

Each problem a user can fix is an HlsgenError (exit code 2): a tool that is not on PATH (the error
prints the exact commands to run once it is), no board attached, a bitstream that was not built
yet. A self-test that runs and finds mismatches is a failure of the design instead (exit code 1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hlsgen.errors import HlsgenError
from hlsgen.project import integrity
from hlsgen.project.vendor import Flow, Step
from hlsgen.tools import board_build, ecp5

# What a programming tool prints when it finds no board or no cable (openFPGALoader 0.10; the
# generated JTAG Tcl prints "hlsgen: no JTAG target" and exits 3).
NO_BOARD = ("unable to open ftdi device", "JTAG init failed", "no JTAG target", "device on the JTAG chain",
            "No devices found", "no devices found")
PYTHON_MODULE = {"pynq": "pynq", "xrt": "pyxrt", "serial": "serial"}   # what the driver's backend imports


def commands_text(project: Path, steps: list[Step]) -> str:
    return " && ".join([f"cd {project}"] + [s.shell for s in steps])


def missing_tools(steps: list[Step]) -> list[str]:
    return sorted({s.argv[0] for s in steps if shutil.which(s.argv[0]) is None})


def require_tools(project: Path, steps: list[Step], what: str) -> None:
    missing = missing_tools(steps)
    if missing:
        raise HlsgenError(f"{what}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on PATH "
                          f"(allowed: install the tools or source their settings script, then run: "
                          f"{commands_text(project, steps)})")


def require_python_module(project: Path, step: Step, module: str) -> None:
    """The driver runs under python3; check there, not in hlsgen's own interpreter."""
    found = shutil.which("python3") and subprocess.run(
        ["python3", "-c", f"import {module}"], capture_output=True).returncode == 0
    if not found:
        raise HlsgenError(f"flash: the Python package {module} is not importable by python3 (allowed: run "
                          f"where it is installed, e.g. on the board's PYNQ image or after sourcing XRT's "
                          f"setup.sh: {commands_text(project, [step])})")


def print_steps(project: Path, steps: list[Step]) -> None:
    print(f"cd {project}")
    for step in steps:
        where = "  (on the board, with PYNQ)" if step.on_board else ""
        print(f"# {step.what}{where}")
        print(step.shell)


def run_step(project: Path, step: Step, capture: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, **dict(step.env)}
    return subprocess.run(list(step.argv), cwd=project, env=env, text=True,
                          capture_output=capture)


def project_dir(target: str | Path) -> Path:
    project = Path(target).resolve()
    integrity.check(project)
    return project


# ----------------------------------------------------------------------------- bitstream
def bitstream(target: str | Path, build_target: str = "hw", dry_run: bool = False, allow_slow: bool = False,
              options: ecp5.PnrOptions = ecp5.PnrOptions()) -> int:
    project = project_dir(target)
    flow = Flow.of_project(project)
    if flow.ecp5:          # open tools, run by hlsgen itself
        if build_target != "hw":
            raise HlsgenError(f"--target: {build_target} is an Alveo emulation target (allowed: hw on {flow.board.key})")
        if dry_run:
            board_build.print_commands(project, flow, options)
            return 0
        return board_build.bitstream(project, allow_slow, options)
    for given, flag in ((options.router, "--router"), (options.seed, "--seed")):
        if given is not None:
            raise HlsgenError(f"{flag}: {flow.board.key}'s vendor flow places and routes with its own tools (allowed: an ECP5 board)")
    if allow_slow:
        raise HlsgenError(f"--allow-slow: the vendor flow of {flow.board.key} sets its own clock (allowed: an ECP5 board)")
    steps = flow.build_steps(build_target)
    if dry_run:
        print_steps(project, steps)
        return 0
    require_tools(project, steps, "bitstream")
    (project / "impl" / build_target).mkdir(parents=True, exist_ok=True)
    for step in steps:
        print(f"hlsgen: {step.what}\n  {step.shell}", flush=True)
        done = run_step(project, step)
        if done.returncode != 0:
            raise HlsgenError(f"bitstream: `{step.shell}` failed with exit code {done.returncode} "
                              f"(allowed: fix the error its log names, then run `hlsgen bitstream {target}` again)")
    product = flow.xclbin(build_target) if flow.alveo else flow.bitstream
    print(f"hlsgen: built {project / product}")
    return 0


# ----------------------------------------------------------------------------- flash
def check_bitstream(project: Path, flow: Flow, method: str) -> None:
    for rel in flow.required_files(method):
        if not (project / rel).is_file():
            raise HlsgenError(f"flash: {project / rel} does not exist yet (allowed: build it first with "
                              f"`hlsgen bitstream {project}`)")


def program(project: Path, step: Step) -> None:
    done = run_step(project, step, capture=True)
    output = (done.stdout + done.stderr).strip()
    if output:
        print(output)
    if done.returncode == 0:
        return
    tail = " | ".join(output.splitlines()[-3:])
    if any(marker in output for marker in NO_BOARD):
        raise HlsgenError(f"flash: no board attached: `{step.shell}` found no board or cable ({tail}) "
                          f"(allowed: connect the board and its JTAG/USB cable, power it on, then retry)")
    raise HlsgenError(f"flash: `{step.shell}` failed with exit code {done.returncode} ({tail})")


def flash(target: str | Path, method: str | None = None, device: str | None = None, dry_run: bool = False,
          persist: bool = False, port: str | None = None) -> int:
    project = project_dir(target)
    flow = Flow.of_project(project)
    method = flow.method(method)
    if port and not flow.ecp5:
        raise HlsgenError(f"--port: {flow.board.key} is not driven over a serial port (allowed: an ECP5 board)")
    steps = flow.program_steps(method, device, persist)
    self_test = flow.self_test_step(method, device, port)
    if dry_run:
        print(f"# {flow.board.name}: program with {method}, then the self-test")
        print_steps(project, steps + [self_test])
        missing = [rel for rel in flow.required_files(method) if not (project / rel).is_file()]
        if missing:
            print(f"# not built yet: {', '.join(missing)} (hlsgen bitstream {project})")
        return 0
    check_bitstream(project, flow, method)
    require_tools(project, steps, "flash")
    if not self_test.on_board:
        require_python_module(project, self_test, PYTHON_MODULE[flow.driver_backend(method)])
    for step in steps:
        print(f"hlsgen: {step.what}\n  {step.shell}", flush=True)
        program(project, step)
    if self_test.on_board:
        print(f"hlsgen: programmed. The self-test drives the PL from the board's processor; run it there:\n"
              f"  {self_test.shell}")
        return 0
    print(f"hlsgen: {self_test.what}\n  {self_test.shell}", flush=True)
    return 0 if run_step(project, self_test).returncode == 0 else 1
