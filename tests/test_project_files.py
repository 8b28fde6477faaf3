"""The generated project files themselves: snapshots, the Tcl flow run by tclsh against a Vitis
stub, the unified-flow config, and the Makefile's csim target.

Snapshots live in tests/snapshots/<name>/: text files verbatim, data files (and the kernel
headers, which are copies of kernels_cpp/) as a sha256 in DIGESTS. After an intended change to
generated code, refresh them and review the diff:

    HLSGEN_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_project_files.py
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import needs_tool, write_config
from hlsgen.hardware import planner
from hlsgen.project import build
from hlsgen.model import spec as spec_mod
from hlsgen.resources import BOARDS_DIR

TESTS = Path(__file__).resolve().parent
SNAPSHOTS = TESTS / "snapshots"
UPDATE = os.environ.get("HLSGEN_UPDATE_SNAPSHOTS") == "1"
TMP = "<TMP>"                 # stands for the directory holding the config and the project

PROJECTS = {
    # Alveo, Vitis flow, on-chip ROMs.
    "tiny": {},
    # Zynq, Vivado flow (ip_catalog export), weights over m_axi, a clock other than the board's.
    "kv260_ddr": {"hardware": {"board": "kv260", "weights": "ddr", "clock_mhz": 150}},
}


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """name -> generated project directory, each built once per module (no compile)."""
    root = tmp_path_factory.mktemp("projects")
    return {name: build.build(spec_mod.load(write_config(root, name, **overrides))).out
            for name, overrides in PROJECTS.items()}


def config_of(project: Path) -> Path:
    return project.with_name(project.name + ".yaml")


def top_function(project: Path, top: str) -> str:
    """The one function src/<top>.cpp defines with external linkage."""
    names = re.findall(r"^void (\w+)\(", (project / "src" / f"{top}.cpp").read_text(), re.M)
    assert len(names) == 1, names
    return names[0]


def board_part(project: Path) -> str:
    board = spec_mod.load(config_of(project)).hardware.board
    return yaml.safe_load((BOARDS_DIR / f"{board}.yaml").read_text())["part"]


# ----------------------------------------------------------------------------- snapshots
DATA_SUFFIXES = (".bin", ".mem")


def is_digested(rel: str) -> bool:
    """Data, the constant tables, the kernel headers copied from kernels_cpp/, and the ap_types
    headers copied from hls4ml (third-party code: digested, never stored in this repository)."""
    return (rel.endswith(DATA_SUFFIXES) or rel.endswith("_weights.h")
            or rel.startswith(("src/hlsgen/", "src/ap_types/")))


def normalised(data: bytes, tmp: Path) -> bytes:
    """The absolute paths of this run (project root, config file) replaced by a placeholder."""
    return data.replace(str(tmp).encode(), TMP.encode())


def snapshot_of(project: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(verbatim text files, digests of the others), both by relpath, paths normalised."""
    tmp = project.parent
    texts, digests = {}, {}
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        rel, data = path.relative_to(project).as_posix(), normalised(path.read_bytes(), tmp)
        if is_digested(rel):
            digests[rel] = hashlib.sha256(data).hexdigest()
        elif rel == "hlsgen_manifest.json":
            texts[rel] = normalised_manifest(project, data)
        else:
            texts[rel] = data.decode()
    return texts, digests


def normalised_manifest(project: Path, data: bytes) -> str:
    """The manifest as on any machine: file digests over the normalised files, and no spec digest
    (the spec holds absolute paths; test_build_csim checks that digest)."""
    manifest = json.loads(data)
    manifest["spec_digest"] = "<sha256 of the spec>"
    manifest["files"] = {rel: hashlib.sha256(normalised((project / rel).read_bytes(), project.parent)).hexdigest()
                         for rel in manifest["files"]}
    return json.dumps(manifest, indent=2) + "\n"


def write_snapshot(directory: Path, texts: dict, digests: dict) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    for rel, text in texts.items():
        (directory / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / "files" / rel).write_text(text)
    (directory / "DIGESTS").write_text("".join(f"{digest}  {rel}\n" for rel, digest in digests.items()))


def read_snapshot(directory: Path) -> tuple[dict, dict]:
    files = directory / "files"
    texts = {p.relative_to(files).as_posix(): p.read_text() for p in sorted(files.rglob("*")) if p.is_file()}
    digests = dict(reversed(line.split("  ", 1)) for line in (directory / "DIGESTS").read_text().splitlines())
    return texts, digests


def snapshot_diff(stored: dict, current: dict) -> str:
    lines = []
    for rel in sorted(stored.keys() | current.keys(), key=lambda rel: (rel == "hlsgen_manifest.json", rel)):
        old, new = stored.get(rel, ""), current.get(rel, "")
        if old != new:
            lines += difflib.unified_diff(old.splitlines(), new.splitlines(), f"snapshot/{rel}", f"generated/{rel}",
                                          lineterm="", n=2)
    return "\n".join(lines[:200])


@pytest.mark.parametrize("name", list(PROJECTS))
def test_generated_files_match_the_snapshot(projects, name):
    directory = SNAPSHOTS / name
    texts, digests = snapshot_of(projects[name])
    if UPDATE or not directory.exists():
        write_snapshot(directory, texts, digests)
        if not UPDATE:
            pytest.fail(f"no snapshot for {name}: wrote {directory}; review and commit it")
    stored_texts, stored_digests = read_snapshot(directory)
    assert texts == stored_texts, ("generated code differs from the snapshot (HLSGEN_UPDATE_SNAPSHOTS=1 "
                                   "refreshes it):\n" + snapshot_diff(stored_texts, texts))
    changed = {rel for rel in stored_digests.keys() | digests.keys() if stored_digests.get(rel) != digests.get(rel)}
    assert not changed, f"data or kernel files differ from tests/snapshots/{name}/DIGESTS: {sorted(changed)}"


def test_snapshots_hold_no_machine_specific_paths():
    for path in SNAPSHOTS.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "/tmp/" not in text and str(TESTS.parent) not in text, path


# ----------------------------------------------------------------------------- run_hls.tcl
needs_tclsh = needs_tool("tclsh")


def run_tcl(project: Path, *steps: str) -> tuple[int, list[list[str]], list[str]]:
    """run_hls.tcl under tclsh with the Vitis stub: (exit status, Vitis calls, other output)."""
    done = subprocess.run(["tclsh", str(TESTS / "vitis_stub.tcl"), str(project / "hls" / "run_hls.tcl"), *steps],
                          capture_output=True, text=True, timeout=60)
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    calls = [line.split("\t")[1:] for line in lines if line.startswith("CALL\t")]
    return done.returncode, calls, [line for line in lines if not line.startswith("CALL\t")]


STEP_COMMANDS = {"csim": "csim_design", "csynth": "csynth_design", "cosim": "cosim_design", "export": "export_design"}


def called(calls, command: str) -> list[list[str]]:
    return [call[1:] for call in calls if call[0] == command]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@needs_tclsh
@pytest.mark.parametrize("steps, expected", [
    ((), ["csim_design", "csynth_design", "cosim_design", "export_design"]),
    (("csim",), ["csim_design"]),
    (("csynth",), ["csynth_design"]),
    (("cosim",), ["csynth_design", "cosim_design"]),
    (("csim", "export"), ["csim_design", "csynth_design", "export_design"]),
])
def test_tcl_runs_exactly_the_steps_asked_for(projects, steps, expected):
    status, calls, _ = run_tcl(projects["tiny"], *steps)
    assert status == 0
    assert [call[0] for call in calls if call[0] in STEP_COMMANDS.values()] == expected
    assert calls[-1] == ["exit", "0"]


@needs_tclsh
@pytest.mark.parametrize("name", list(PROJECTS))
def test_tcl_project_setup_matches_the_generated_sources(projects, name):
    project = projects[name]
    spec = spec_mod.load(config_of(project))
    top = spec.project.name
    _, calls, _ = run_tcl(project, "csim")
    assert called(calls, "set_top") == [[top_function(project, top)]]
    assert called(calls, "set_part") == [[board_part(project)]]
    plan = planner.plan(spec)
    assert option(called(calls, "create_clock")[0], "-period") == plan.clock_period_ns
    assert float(plan.clock_period_ns) == pytest.approx(1000 / (spec.hardware.clock_mhz or plan.board.clock_mhz),
                                                        abs=5e-4)
    sources, testbench = [], []
    for args in called(calls, "add_files"):
        paths = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in ("-cflags", "-csimflags")]
        (testbench if "-tb" in args else sources).extend(Path(p) for p in paths)
    assert all(p.exists() for p in sources + testbench), sources + testbench
    assert sources == [project / "src" / f"{top}.cpp"]
    assert {project / "tb" / f"{top}_tb.cpp", project / "tb" / "data"} <= set(testbench)


@needs_tclsh
@pytest.mark.parametrize("name, flow, export_format", [("tiny", "vitis", "xo"), ("kv260_ddr", "vivado", "ip_catalog")])
def test_tcl_flow_and_export_format_follow_the_board(projects, name, flow, export_format):
    project = projects[name]
    _, calls, _ = run_tcl(project, "export")
    assert option(called(calls, "open_solution")[0], "-flow_target") == flow
    (export,) = called(calls, "export_design")
    assert option(export, "-format") == export_format
    assert Path(option(export, "-output")).parent == project / "hls"


@needs_tclsh
def test_tcl_refuses_an_unknown_step_before_opening_a_project(projects):
    status, calls, output = run_tcl(projects["tiny"], "csim", "synth")
    assert status == 2
    assert calls == [["exit", "2"]]
    assert output == ["unknown step 'synth' (allowed: csim csynth cosim export)"]


# ----------------------------------------------------------------------------- hls_config.cfg
def parse_cfg(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values]}}; keys before the first [section] go under ''."""
    sections: dict[str, dict[str, list[str]]] = {"": {}}
    current = sections[""]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("name", list(PROJECTS))
def test_unified_flow_config_matches_the_project(projects, name):
    project = projects[name]
    spec = spec_mod.load(config_of(project))
    plan = planner.plan(spec)
    cfg = parse_cfg((project / "hls" / "hls_config.cfg").read_text())
    assert set(cfg) == {"", "hls"}
    assert cfg[""] == {"part": [board_part(project)]}
    hls = cfg["hls"]
    assert hls["syn.top"] == [top_function(project, spec.project.name)]
    assert hls["clock"] == [f"{plan.clock_period_ns}ns"]
    assert hls["flow_target"] == ["vitis" if plan.board.flow == "alveo" else "vivado"]
    # Relative to the project's root, so that the project can move.
    files = [Path(f) for f in hls["syn.file"] + hls["tb.file"]]
    assert all(not f.is_absolute() and (project / f).exists() for f in files), files
    assert Path(hls["package.output.file"][0]).parent == Path("hls")
    assert str(project) not in (project / "hls" / "hls_config.cfg").read_text()


# ----------------------------------------------------------------------------- Makefile
@needs_tool("make", "g++")
def test_make_csim_compiles_and_passes_with_gxx_only(projects):
    project = projects["tiny"]
    # The project's own src/ap_types (tests/test_self_contained.py runs it with no Python on PATH).
    env = {k: v for k, v in os.environ.items() if k != "XILINX_HLS"}
    done = subprocess.run(["make", "csim"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "PASS"
    up_to_date = subprocess.run(["make", "-q", "tb/csim.exe"], cwd=project, env=env)
    assert up_to_date.returncode == 0                     # a second `make csim` would not recompile
