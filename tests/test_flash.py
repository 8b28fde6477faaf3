"""`hlsgen bitstream` and `hlsgen flash`: the exact commands with --dry-run for every board, and
exit code 2 with a clear error for a missing tool, no board attached, or no bitstream yet.

No vendor tool runs here. "No board attached" uses the real openFPGALoader when it is installed
(it fails to open its FTDI cable); otherwise a script that prints what openFPGALoader 0.10 prints
without a cable and fails. Nothing stands in for a tool's success.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from conftest import run_cli, write_config
from hlsgen.hardware import boards
from hlsgen.project import build
from hlsgen.model import spec as spec_mod
from hlsgen.project.vendor import Flow

OFFCHIP = {"pe": 8, "simd": 4, "lm_head_pe": 4, "lm_head_simd": 16}
BOARDS = {"u280": "hbm", "u55c": "hbm", "u250": "ddr", "zcu104": "ddr", "kv260": "ddr", "pynq_z2": "ddr"}
DRIVER = "python3 host/tiny_top_driver.py"


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """board key -> generated project directory (no bitstream built)."""
    root = tmp_path_factory.mktemp("flash")
    built = {}
    for board, weights in BOARDS.items():
        parallelism = {"pe": 4, "simd": 2} if board == "pynq_z2" else OFFCHIP
        config = write_config(root, board, hardware={"board": board, "weights": weights, "parallelism": parallelism})
        built[board] = build.build(spec_mod.load(config)).out.resolve()
    return built


def with_bitstream(project: Path, tmp_path: Path, method: str) -> Path:
    """A copy of the project with placeholder bitstream files, for tests that stop before using them."""
    copy = tmp_path / project.name
    shutil.copytree(project, copy)
    flow = Flow.of_project(copy)
    for rel in flow.required_files(method):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes(b"not a real bitstream")
    return copy


def only_on_path(tmp_path: Path, *tools: str) -> str:
    """A PATH holding python3 and the named tools that are installed, nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("python3", *tools):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


# ----------------------------------------------------------------------------- --dry-run
EXPECTED_DRY_RUN = {
    "u280": ["xbutil program --user impl/hw/tiny_top.xclbin", f"{DRIVER} --backend xrt --self-test"],
    "u55c": ["xbutil program --user impl/hw/tiny_top.xclbin", f"{DRIVER} --backend xrt --self-test"],
    "u250": ["xbutil program --user impl/hw/tiny_top.xclbin", f"{DRIVER} --backend xrt --self-test"],
    "zcu104": [f"{DRIVER} --backend pynq --self-test"],
    "kv260": [f"{DRIVER} --backend pynq --self-test"],
    "pynq_z2": [f"{DRIVER} --backend pynq --self-test"],
}


@pytest.mark.parametrize("board", list(BOARDS))
def test_flash_dry_run_prints_the_exact_commands(projects, board):
    run = run_cli("flash", projects[board], "--dry-run")
    assert run.code == 0, run.err
    commands = [line for line in run.out.splitlines() if line and not line.startswith("#")]
    assert commands == [f"cd {projects[board]}"] + EXPECTED_DRY_RUN[board]
    name = boards.Board.load(board).name
    assert run.out.startswith(f"# {name}: program with {boards.Board.load(board).program.methods[0]}")
    assert "# not built yet: " in run.out


@pytest.mark.parametrize("board, method, device, expected", [
    ("u280", None, "0000:3b:00.1", ["xbutil program --device 0000:3b:00.1 --user impl/hw/tiny_top.xclbin",
                                    f"{DRIVER} --backend xrt --device 0000:3b:00.1 --self-test"]),
    ("u55c", "pynq", None, [f"{DRIVER} --backend pynq --self-test"]),
    ("pynq_z2", "openfpgaloader", None, ["openFPGALoader -b pynq_z2 impl/tiny_top.bit",
                                         f"{DRIVER} --backend pynq --self-test"]),
    ("pynq_z2", "openfpgaloader", "FT12345", ["openFPGALoader -b pynq_z2 --ftdi-serial FT12345 impl/tiny_top.bit",
                                              f"{DRIVER} --backend pynq --self-test"]),
    ("zcu104", "vivado", None, ["vivado -mode batch -nojournal -nolog -source hls/program_jtag.tcl "
                                "-tclargs impl/tiny_top.bit", f"{DRIVER} --backend pynq --self-test"]),
    ("kv260", "vivado", "Digilent/1", ["vivado -mode batch -nojournal -nolog -source hls/program_jtag.tcl "
                                       "-tclargs impl/tiny_top.bit Digilent/1", f"{DRIVER} --backend pynq --self-test"]),
])
def test_flash_dry_run_with_a_method_and_a_device(projects, board, method, device, expected):
    args = ["flash", projects[board], "--dry-run"] + (["--method", method] if method else []) + \
        (["--device", device] if device else [])
    run = run_cli(*args)
    assert run.code == 0, run.err
    assert [l for l in run.out.splitlines() if l and not l.startswith(("#", "cd "))] == expected
    if method in ("openfpgaloader", "vivado"):      # JTAG: the self-test runs on the board's processor
        assert "(on the board, with PYNQ)" in run.out


def test_flash_method_the_board_cannot_use_is_refused(projects):
    run = run_cli("flash", projects["zcu104"], "--method", "openfpgaloader", "--dry-run")
    assert run.code == 2
    assert "error: --method: 'openfpgaloader' cannot program zcu104 (allowed: pynq, vivado)" in run.err


# ----------------------------------------------------------------------------- flash errors
@pytest.mark.parametrize("board, method, missing", [
    ("u280", "xbutil", "impl/hw/tiny_top.xclbin"),
    ("zcu104", "pynq", "impl/tiny_top.bit"),
    ("pynq_z2", "openfpgaloader", "impl/tiny_top.bit"),
])
def test_flash_without_a_bitstream_exits_2(projects, board, method, missing):
    run = run_cli("flash", projects[board], "--method", method)
    assert run.code == 2 and run.out == ""
    assert f"error: flash: {projects[board] / missing} does not exist yet (allowed: build it first with " \
           f"`hlsgen bitstream {projects[board]}`)" in run.err


def test_flash_pynq_needs_the_hwh_beside_the_bit(projects, tmp_path):
    project = with_bitstream(projects["kv260"], tmp_path, "vivado")     # the .bit only
    run = run_cli("flash", project)
    assert run.code == 2 and f"{project}/impl/tiny_top.hwh does not exist yet" in run.err


def test_flash_without_xbutil_names_it_and_prints_the_commands(projects, tmp_path, monkeypatch):
    project = with_bitstream(projects["u250"], tmp_path, "xbutil")
    monkeypatch.setenv("PATH", only_on_path(tmp_path))
    run = run_cli("flash", project, "--device", "0")
    assert run.code == 2
    assert "error: flash: xbutil is not on PATH" in run.err
    assert f"cd {project} && xbutil program --device 0 --user impl/hw/tiny_top.xclbin" in run.err


def test_flash_pynq_off_the_board_names_the_missing_package(projects, tmp_path, monkeypatch):
    project = with_bitstream(projects["zcu104"], tmp_path, "pynq")
    monkeypatch.setenv("PATH", only_on_path(tmp_path))
    run = run_cli("flash", project)
    assert run.code == 2
    assert "error: flash: the Python package pynq is not importable by python3" in run.err
    assert f"{DRIVER} --backend pynq --self-test" in run.err


NO_CABLE = "unable to open ftdi device: -3 (device not found)\nJTAG init failed with: unable to open ftdi device\n"


def test_flash_with_no_board_attached_exits_2(projects, tmp_path, monkeypatch):
    project = with_bitstream(projects["pynq_z2"], tmp_path, "openfpgaloader")
    path = only_on_path(tmp_path, "openFPGALoader")
    if not (Path(path) / "openFPGALoader").exists():
        script = Path(path) / "openFPGALoader"
        script.write_text(f"#!/bin/sh\nprintf '{NO_CABLE.replace(chr(10), chr(92) + 'n')}' >&2\nexit 1\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", path)
    run = run_cli("flash", project, "--method", "openfpgaloader")
    assert run.code == 2, run.out + run.err
    assert "error: flash: no board attached: `openFPGALoader -b pynq_z2 impl/tiny_top.bit` found no board" in run.err
    assert "unable to open ftdi device" in run.err


# ----------------------------------------------------------------------------- bitstream
def test_bitstream_dry_run_alveo_compiles_then_links_for_one_target(projects):
    run = run_cli("bitstream", projects["u280"], "--dry-run", "--target", "hw_emu")
    assert run.code == 0, run.err
    commands = [l for l in run.out.splitlines() if l and not l.startswith("#")]
    platform = boards.Board.load("u280").platform
    assert commands[0] == f"cd {projects['u280']}"
    assert commands[1].startswith(f"v++ -c -t hw_emu --platform {platform} ")
    assert commands[2].startswith(f"v++ -l -t hw_emu --platform {platform} ")
    assert commands[2].endswith("--config hls/link.cfg -o impl/hw_emu/tiny_top.xclbin impl/hw_emu/tiny_top.xo")
    assert commands[3] == f"emconfigutil --platform {platform} --od impl"


def test_bitstream_dry_run_zynq_exports_the_ip_then_runs_vivado(projects):
    run = run_cli("bitstream", projects["pynq_z2"], "--dry-run")
    assert run.code == 0, run.err
    assert [l for l in run.out.splitlines() if l and not l.startswith(("#", "cd "))] == [
        "vitis_hls -f hls/run_hls.tcl -tclargs csynth export",
        "vivado -mode batch -nojournal -log impl/vivado.log -source hls/vivado_bd.tcl"]


@pytest.mark.parametrize("board, tools", [("u55c", "v++"), ("kv260", "vitis_hls, vivado are")])
def test_bitstream_without_the_tools_names_them_and_prints_the_commands(projects, tmp_path, monkeypatch, board, tools):
    monkeypatch.setenv("PATH", only_on_path(tmp_path))
    run = run_cli("bitstream", projects[board])
    assert run.code == 2 and run.out == ""
    assert f"error: bitstream: {tools}" in run.err and "not on PATH" in run.err
    dry = run_cli("bitstream", projects[board], "--dry-run").out
    commands = [l for l in dry.splitlines() if l and not l.startswith("#")]
    assert " && ".join(commands) in run.err


def test_bitstream_emulation_target_on_a_zynq_board_is_refused(projects):
    run = run_cli("bitstream", projects["zcu104"], "--target", "sw_emu", "--dry-run")
    assert run.code == 2 and "error: --target: sw_emu is an Alveo emulation target (allowed: hw on zcu104)" in run.err


@pytest.mark.parametrize("flag,value", [("--router", "router2"), ("--seed", "2")])
def test_bitstream_nextpnr_options_on_a_vendor_board_are_refused(projects, flag, value):
    run = run_cli("bitstream", projects["zcu104"], flag, value, "--dry-run")
    assert run.code == 2 and f"error: {flag}: zcu104's vendor flow places and routes with its own tools" in run.err


def test_bitstream_of_a_directory_that_is_no_project(tmp_path):
    run = run_cli("bitstream", tmp_path, "--dry-run")
    assert run.code == 2 and "not an hlsgen project" in run.err
