"""Kernel-level C-simulation: run single kernels of kernels_cpp/ from Python, case by case.

A `KernelProgram` collects kernel instances (numerics variants, BitLinear configs, mixer sizes)
into ONE C++ translation unit, because a TU with the ap_types headers takes seconds to compile.
The config structs are printed by the same Jinja macros as a generated project's config header
(templates/config_structs.j2), with widths from planner.size_bitlinear, so the kernels see what
they see in a real build.  The drivers that feed and drain each kernel are C++ templates in
sim/kernel_harness.h.  Binaries are cached by content hash (hlsgen.tools.csim.compile_cached).

`Binary.run` runs a list of `Case`s (an entry and its input arrays) in one process and returns,
per case, the output arrays, the kernels' trace records and the saturation counts.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2
import numpy as np

from hlsgen.tools import csim
from hlsgen.hardware import planner
from hlsgen.project import render
from hlsgen import resources
from hlsgen.errors import HlsgenError
from hlsgen.hardware.planner import BitLinearPlan, lane_words
from hlsgen.model.numerics import NumericsSpec
from hlsgen.model.spec import HardwareSpec, ModelSpec, ProjectSpec, Spec, WeightsSpec
from hlsgen.project.words import weight_words

SIM_DIR = Path(__file__).resolve().parent
HARNESS_HEADER = SIM_DIR / "kernel_harness.h"
# A sanitizer report must fail the run, not scroll past.
SANITIZER_ENV = {"UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
SANITIZER_MARKERS = ("runtime error:", "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer")


class KernelRunError(HlsgenError):
    pass


# ----------------------------------------------------------------------------- the program
@dataclass
class Variant:
    """One set of numeric formats: a C++ namespace holding `numerics` and its BitLinear configs."""
    name: str
    numerics: NumericsSpec
    bitlinears: list = field(default_factory=list)

    @property
    def spec(self) -> Spec:
        """The planner sizes kernels from a Spec; only its numerics matter here."""
        return Spec(model=ModelSpec(vocab=1, hidden=1, layers=1), weights=WeightsSpec(seed=0),
                    numerics=self.numerics, hardware=HardwareSpec(), project=ProjectSpec(),
                    source=Path("<kernel tests>"))

    @property
    def constants(self) -> dict:
        return planner.numerics_constants(self.spec)

    @property
    def cpp(self) -> str:
        return f"{self.name}::numerics"


@dataclass(frozen=True)
class BitLinear:
    """One BitLinear config in a program, runnable from an on-chip ROM or an m_axi port."""
    variant: Variant
    plan: BitLinearPlan

    @property
    def config(self) -> str:
        return f"{self.variant.name}::{self.plan.config_name}"

    def entry(self, source: str) -> str:
        """source: 'rom' (uint64_t [words][8 * stripes]) or 'axi' (one ap_uint<512>* per stripe)."""
        return f"harness::bitlinear_{source}<{self.variant.cpp},{self.config}>"

    def shape(self, rows: int, cols: int) -> list[int]:
        """The shape_t a case runs on this engine: [rows, cols, words_per_matrix]."""
        return [rows, cols, lane_words(rows, cols, self.plan.pe, self.plan.simd, self.plan.packing)]

    def words(self, matrices: list[np.ndarray]) -> np.ndarray:
        """Codes [rows, cols] per matrix -> the packed lane words the generator writes (a matrix
        smaller than the engine's largest is packed at its own shape, as the top's kinds are)."""
        rows, cols = matrices[0].shape
        plan = replace(self.plan, rows=rows, cols=cols, words_per_matrix=self.shape(rows, cols)[2])
        return np.concatenate([weight_words(codes, plan) for codes in matrices])


class KernelProgram:
    """The kernel instances of one test program; `build()` compiles them into one binary."""

    def __init__(self, name: str):
        self.name = name
        self.variants: list[Variant] = []
        self.entries: list[str] = []
        self.overfetching: list[str] = []      # qualified config names

    def variant(self, name: str, numerics: NumericsSpec) -> Variant:
        v = Variant(name, numerics)
        self.variants.append(v)
        return v

    def bitlinear(self, variant: Variant, rows: int, cols: int, pe: int, simd: int, matrices: int = 1,
                  max_beta: int = 1, mix_input: bool = False, overfetching: bool = False,
                  packing: str = "2bit", batch: int = 1, qsimd: int | None = None) -> BitLinear:
        """Sized by the planner as a projection fed by act values (or mix values: o, down).

        `overfetching` injects a fault for the stream-safety test: this instance's ROM weight
        streamer writes one lane too many, which bitlinear's drain check must turn into an error.
        """
        plan = planner.size_bitlinear(variant.spec, "o" if mix_input else "i", rows, cols, pe, simd,
                                      matrices, max_beta, qsimd)
        # The kind only chose the input format; the struct needs a name of its own.
        plan = replace(plan, kind=f"bitlinear{len(variant.bitlinears)}", packing=packing, batch=batch,
                       words_per_matrix=lane_words(rows, cols, pe, simd, packing))
        variant.bitlinears.append(plan)
        instance = BitLinear(variant, plan)
        if overfetching:
            self.overfetching.append(instance.config)
            self.entries.append(instance.entry("rom"))
        else:
            self.entries += [instance.entry("rom"), instance.entry("axi")]
        return instance

    def kernel(self, driver: str, *template_args) -> str:
        """A driver of sim/kernel_harness.h; a Variant argument stands for its numerics struct."""
        args = ",".join(a.cpp if isinstance(a, Variant) else str(a) for a in template_args)
        entry = f"harness::{driver}<{args}>"
        if entry not in self.entries:
            self.entries.append(entry)
        return entry

    def source(self) -> str:
        env = render._environment().overlay(loader=jinja2.FileSystemLoader([SIM_DIR, resources.templates()]))
        return env.get_template("kernel_program.cpp.j2").render(name=self.name, variants=self.variants,
                                                               entries=self.entries, overfetching=self.overfetching)

    def build(self, sanitize: bool = False, extra_flags: tuple = ()) -> "Binary":
        source = self.source()
        hashed = {"program.cpp": source.encode(), "kernel_harness.h": HARNESS_HEADER.read_bytes()}
        hashed.update({f"kernels_cpp/{h.name}": h.read_bytes() for h in sorted(resources.kernels().glob("*.h"))})
        with tempfile.TemporaryDirectory() as tmp:
            cpp = Path(tmp) / f"{self.name}.cpp"
            cpp.write_text(source)
            path, cached, seconds = csim.compile_cached([cpp], [resources.kernels(), SIM_DIR], hashed, sanitize,
                                                        f"kernel test program {self.name}", extra_flags=extra_flags)
        return Binary(path, cached, seconds, sanitize)


def build_all(builds: list[tuple[KernelProgram, bool]]) -> list["Binary"]:
    """(program, sanitize) pairs compiled side by side: g++ runs one TU per core."""
    with ThreadPoolExecutor(max_workers=max(os.cpu_count() or 1, 1)) as pool:
        return list(pool.map(lambda b: b[0].build(sanitize=b[1]), builds))


# ----------------------------------------------------------------------------- running cases
@dataclass
class Case:
    entry: str
    inputs: dict          # name -> integer array (or scalar); uint64 arrays keep their bit patterns


@dataclass
class CaseResult:
    outputs: dict                 # name -> int64 array
    trace: list                   # (name, int64 values) in the order the kernels wrote them
    saturations: dict             # site -> count

    def traced(self, name: str) -> np.ndarray:
        """Every record of `name`, one row per kernel call (token)."""
        return np.stack([values for record, values in self.trace if record == name])

    @classmethod
    def read(cls, directory: Path) -> "CaseResult":
        outputs = {p.name[len("out."):-len(".bin")]: np.fromfile(p, "<i8") for p in directory.glob("out.*.bin")}
        lines = (directory / "saturations.txt").read_text().split("\n")
        saturations = {site: int(count) for site, count in (line.split() for line in lines if line)}
        return cls(outputs, csim.read_trace(directory / "trace.bin"), saturations)


def _as_int64(values) -> np.ndarray:
    array = np.asarray(values)
    return array.view("<i8") if array.dtype == np.uint64 else array.astype("<i8")


@dataclass(frozen=True)
class Binary:
    path: Path
    cached: bool
    seconds_compile: float
    sanitize: bool

    def launch(self, cases: list[Case], workdir: Path) -> tuple[subprocess.CompletedProcess, list[Path]]:
        """Write every case's inputs under `workdir` and run them all in one process."""
        directories = []
        for index, case in enumerate(cases):
            directory = workdir / f"case{index:03d}"
            directory.mkdir()
            for name, values in case.inputs.items():
                _as_int64(values).reshape(-1).tofile(directory / f"in.{name}.bin")
            directories.append(directory)
        listing = workdir / "cases.txt"
        listing.write_text("".join(f"{c.entry} {d}\n" for c, d in zip(cases, directories)))
        done = subprocess.run([str(self.path), str(listing)], capture_output=True, text=True,
                              env={**os.environ, **SANITIZER_ENV})
        return done, directories

    def run_raw(self, cases: list[Case]) -> subprocess.CompletedProcess:
        """For cases that are meant to fail: the exit code and the messages, nothing read back."""
        with tempfile.TemporaryDirectory() as tmp:
            return self.launch(cases, Path(tmp))[0]

    def run(self, cases: list[Case]) -> list[CaseResult]:
        with tempfile.TemporaryDirectory() as tmp:
            done, directories = self.launch(cases, Path(tmp))
            report = next((m for m in SANITIZER_MARKERS if m in done.stderr), None)
            if done.returncode != 0 or report:
                reported = f" and a {report} report" if report else ""
                raise KernelRunError(f"{self.path} exited with {done.returncode}{reported}:\n{done.stderr[-4000:]}")
            return [CaseResult.read(d) for d in directories]
