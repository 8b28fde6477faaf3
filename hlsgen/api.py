"""The Python API, shaped like hls4ml's: convert -> write -> compile -> predict -> build -> report.

    import hlsgen
    project = hlsgen.convert("examples/tiny_lm.yaml", output_dir="out/lm", **{"hardware.parallelism.pe": 8})
    project.compile()                       # the generated C++ as a shared library (C simulation)
    logits = project.predict([100, 101, 102, 32])      # [4, vocab] floats, bit-exact with...
    hlsgen.golden("examples/tiny_lm.yaml", [100, 101, 102, 32], numerics="fixed")  # ...the golden fixed model
    project.build(csim=True, cosim=True)    # testbench csim, RTL cosim of the MVUs
    project.report()                        # report/report.md, .json and plots

The `hlsgen` command is a thin layer over these functions where they overlap.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from hlsgen import progress
from hlsgen.errors import HlsgenError
from hlsgen.hardware import explore as explore_mod
from hlsgen.hardware import planner
from hlsgen.hardware.boards import Board
from hlsgen.model import checkpoint
from hlsgen.model import golden as golden_mod
from hlsgen.model import spec as spec_mod
from hlsgen.project import build as build_mod
from hlsgen.tools import cosim as cosim_mod
from hlsgen.tools import csim as csim_mod
from hlsgen.tools import report as report_mod
from hlsgen.tools import rtl_commands
from hlsgen.tools import synth as synth_mod
from hlsgen.tools.device import CsimDevice


def load_config(config, **overrides) -> spec_mod.Spec:
    """A validated Spec from a YAML path, an HF model directory, a config dict or a Spec; dotted
    `overrides` (`**{"hardware.parallelism.pe": 8}`) are set before validation.  A board file
    named by path is checked here too."""
    if isinstance(config, spec_mod.Spec):
        if overrides:
            raise HlsgenError("overrides: a Spec is already validated (allowed: overrides with a path or a dict)")
        spec = config
    else:
        spec = spec_mod.load(config if isinstance(config, dict) else Path(config), overrides or None)
    Board.load(spec.hardware.board)
    return spec


def _ids(ids, vocab: int) -> list[int]:
    values = np.asarray(ids).reshape(-1)
    if values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise HlsgenError(f"ids: {ids!r} (allowed: a non-empty sequence of integer token ids in [0, {vocab}))")
    bad = values[(values < 0) | (values >= vocab)]
    if bad.size:
        raise HlsgenError(f"ids: {int(bad[0])} is out of range (allowed: integers in [0, {vocab}))")
    return [int(v) for v in values]


# ----------------------------------------------------------------------------- golden
@dataclass
class GoldenRun:
    logits: np.ndarray        # [len(ids), vocab] floats
    saturations: dict         # fixed numerics: clamps per site (empty for float)


def run_golden(spec: spec_mod.Spec, ids, numerics: str = "float", decode: bool = False) -> GoldenRun:
    if numerics not in golden_mod.MODES:
        raise HlsgenError(f"numerics: {numerics!r} (allowed: {', '.join(golden_mod.MODES)})")
    ids = _ids(ids, spec.model.vocab)
    model = golden_mod.Model(spec.model, checkpoint.load(spec), numerics, spec.numerics)
    raw, _ = model.decode(ids) if decode else model.prefill(ids)
    return GoldenRun(model.to_float(raw), dict(model.arith.saturations) if numerics == "fixed" else {})


def golden(config, ids, numerics: str = "float", decode: bool = False) -> np.ndarray:
    """The golden model's logits of `ids` run as one prompt: [len(ids), vocab] floats.  `fixed`
    is the bit-accurate model of the hardware that `HLSProject.predict` matches bit for bit."""
    return run_golden(load_config(config), ids, numerics, decode).logits


# ----------------------------------------------------------------------------- the project
@dataclass
class HLSProject:
    """A model on a board as an HLS project in `output_dir` (written by write(), not before)."""
    spec: spec_mod.Spec
    output_dir: Path
    _plan: planner.HardwarePlan | None = field(default=None, repr=False)
    _device: CsimDevice | None = field(default=None, repr=False)
    _written: build_mod.BuildResult | None = field(default=None, repr=False)

    @property
    def plan(self) -> planner.HardwarePlan:
        """The hardware plan: foldings, widths, memory ports, cycles (checked against the board)."""
        if self._plan is None:
            self._plan = self._written.plan if self._written else planner.plan(self.spec, checkpoint.load(self.spec))
        return self._plan

    def write(self) -> build_mod.BuildResult:
        """Generate the project (atomically; unchanged files are kept)."""
        self._written = build_mod.build(self.spec, self.output_dir)
        self._plan, self._device = self._written.plan, None
        return self._written

    def _project(self) -> Path:
        if self._written is None:
            self.write()
        return Path(self.output_dir).resolve()

    def compile(self) -> "HLSProject":
        """Compile the top function into a shared library (C simulation, cached by content)."""
        device = CsimDevice(self._project())
        device.upload_project_buffers()
        self._device = device
        return self

    def predict(self, ids) -> np.ndarray:
        """`ids` as one prompt (a new sequence) through the compiled C++, in blocks of the design's
        batch: one row of logits per position, [len(ids), vocab], as floats."""
        if self._device is None:
            self.compile()
        device = self._device
        ids = _ids(ids, self.spec.model.vocab)
        rows = [device.run(ids[i:i + device.batch], batch_mode=False, reset_state=int(i == 0))[0]
                for i in range(0, len(ids), device.batch)]
        return golden_mod.FixedArith(self.spec.model, self.spec.numerics).logits(np.concatenate(rows))

    def build(self, csim: bool = True, cosim: bool = False, synth: bool = False, csynth: bool = False) -> dict:
        """Run the steps asked for on the written project: csim (the testbench against the golden
        model), cosim (cocotb on the RTL MVUs), synth (Yosys on the MVUs), csynth (Vitis HLS, where
        installed).  Returns {step: result}; raises HlsgenError when a step fails."""
        project, results = self._project(), {}
        if csim:
            results["csim"] = result = csim_mod.run(project)
            if not result.passed:
                raise HlsgenError(f"csim: {project} does not match the golden model: {result.divergence}")
        if cosim:
            kinds = cosim_mod.run(project, cosim_mod.CosimOptions())
            rtl_commands._write_cosim_report(project, "verilator", kinds)      # what `hlsgen cosim` writes
            results["cosim"] = kinds
            failed = [k.kind for k in kinds if not k.passed]
            if failed:
                raise HlsgenError(f"cosim: {', '.join(failed)} failed (see {project / 'report' / 'cosim.json'})")
        if synth:
            results["synth"], _ = synth_mod.run(project, synth_mod.project_mvus(project))
        if csynth:
            results["csynth"] = run_csynth(project)
        return results

    def report(self) -> dict:
        """Write report/report.md, report.json and the plots; returns the report's data."""
        report_mod.write(self._project())
        return report_mod.gather(self._project())


def run_csynth(project: Path) -> Path:
    """Vitis HLS C synthesis through the project's Tcl; only where vitis_hls is installed."""
    command = ["vitis_hls", "-f", "hls/run_hls.tcl", "-tclargs", "csynth"]
    if shutil.which("vitis_hls") is None:
        raise HlsgenError(f"csynth: vitis_hls is not on PATH (allowed: source a Vitis HLS settings64.sh, then run "
                          f"`cd {project} && {' '.join(command)}`)")
    done = subprocess.run(command, cwd=project, capture_output=True, text=True)
    log = project / "hls" / "csynth.log"
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0 or "ERROR:" in done.stdout:
        raise HlsgenError(f"csynth: vitis_hls failed (log: {log})")
    return log


def convert(config, output_dir=None, **overrides) -> HLSProject:
    """A model (YAML path, HF model directory or config dict, with dotted overrides such as
    `**{"hardware.parallelism.pe": 8}`) as an HLSProject in `output_dir` (default: project.output)."""
    spec = load_config(config, **overrides)
    return HLSProject(spec, Path(output_dir) if output_dir is not None else spec.project.output)


# ----------------------------------------------------------------------------- explore
@dataclass
class ExploreTable:
    """hlsgen explore's result: the Pareto set, the chosen design and its `hardware:` section."""
    spec: spec_mod.Spec
    budget: float
    batches: tuple
    chosen: explore_mod.Candidate
    front: list
    seconds: float

    @property
    def rows(self) -> list[dict]:
        """The Pareto set, one dict per design (the columns of explore's table), chosen marked."""
        return [dict(zip(self.header, explore_mod.row(c)), chosen=c is self.chosen) for c in self.front]

    @property
    def header(self) -> list[str]:
        """The table's columns, each tok/s named with its clock (the design's and the conservative one)."""
        return explore_mod.header(self.chosen.plan.board, self.chosen.plan.clock_mhz)

    @property
    def hardware(self) -> dict:
        """The chosen design as a config's `hardware:` mapping."""
        return explore_mod.hardware_section(self.chosen)

    def __str__(self) -> str:
        m = self.spec.model
        shown = explore_mod.thinned(self.front, self.chosen)
        rows = [[("* " if c is self.chosen else "") + explore_mod.row(c)[0], *explore_mod.row(c)[1:]] for c in shown]
        return "\n".join([
            f"explore {self.spec.project.name} (H {m.hidden}, L {m.layers}, I {m.intermediate}, V {m.vocab}) on "
            f"{self.spec.hardware.board}, budget {self.budget * 100:g}% of LUT and BRAM+URAM, batch "
            f"{', '.join(map(str, self.batches))}: Pareto set of {len(self.front)} designs in {self.seconds:.1f} s "
            f"(shown in steps of 10% tok/s; decode tok/s: the batch's sequences together)",
            explore_mod.table(rows, self.header),
            "chosen (*): " + explore_mod.summary(self.chosen)])

    def hardware_yaml(self) -> str:
        return yaml.safe_dump({"hardware": self.hardware}, sort_keys=False)


def explore(config, board: str | None = None, budget: float | None = None, batch: int | None = None,
            max_batch: int | None = None) -> ExploreTable:
    """Search foldings, weight placements, packings and batches for the fastest design within
    `budget` of the board's LUTs (default: the board's budget, 70% on the multi-SLR Alveo cards;
    board default: the config's hardware.board)."""
    if board:      # checked as the config's hardware.board is; a board file's path is taken as given
        is_file = str(board).endswith(spec_mod.BOARD_FILE_SUFFIXES)
        spec = load_config(config, **{"hardware.board": str(Path(board).resolve()) if is_file else board})
    else:
        spec = load_config(config)
    searched = explore_mod.batches(batch, max_batch)
    start = time.perf_counter()
    # Silent when quick; past two seconds, a line per (placement, packing) searched.
    tick = progress.Ticker(f"explore {spec.hardware.board}: placements x packings searched")
    budget = explore_mod.lut_budget(Board.load(spec.hardware.board), budget)
    chosen, front = explore_mod.explore(spec, budget, searched, tick=tick)
    return ExploreTable(spec, budget, searched, chosen, front, time.perf_counter() - start)
