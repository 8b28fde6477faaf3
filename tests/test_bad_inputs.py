"""A hostile user's table: bad inputs and faults of every class of issue 14 through the real CLI
(`python -m hlsgen.cli` in a subprocess).  For each case: the exit code, exactly one `error:` line
and nothing but indented tool lines after it, no traceback, what the line names, and that nothing
was written (a fresh output stays absent) or the project is unchanged (a checksum of its files).

Permission cases run without CAP_DAC_OVERRIDE when the tests run as root (so that file modes
apply); the full disk is a 64 KiB tmpfs when the tests may mount one, else an injected ENOSPC
(HLSGEN_TEST_FAULT=enospc, hlsgen/project/swap.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from conftest import TINY, merged, needs_tool

ROOT = Path(__file__).resolve().parent.parent
TOP = TINY["project"]["name"]
BIG_MODEL = {"vocab": 1 << 20, "hidden": 1 << 14, "layers": 1024, "intermediate_size": 1 << 15}


@dataclass
class Case:
    name: str
    argv: list                         # after `hlsgen`; "{cfg}", "{project}", "{tmp}", "{out}" are filled in
    names: list                        # what the error line must contain (same placeholders)
    setup: Callable | None = None      # setup(ctx) before the run
    code: int = 2
    env: dict = field(default_factory=dict)
    unprivileged: bool = False         # run without the root's permission override
    tools: tuple = ()                  # optional system tools the case reaches
    project: bool = False              # works on a copy of a built project, which must stay unchanged


class Ctx:
    """One case's directory: a valid config, a fresh output path and (for project cases) a project."""

    def __init__(self, tmp: Path, base_project: Path | None):
        self.tmp = tmp
        self.out = tmp / "out"
        self.cfg = self.config()
        self.project = tmp / "project"
        if base_project is not None:
            shutil.copytree(base_project, self.project, symlinks=True)

    def config(self, name="c.yaml", **sections) -> Path:
        path = self.tmp / name
        path.write_text(yaml.safe_dump(merged(TINY, {"project": {"output": "out"}, **sections}), sort_keys=False))
        self.cfg = path
        return path

    def fill(self, text: str) -> str:
        return (str(text).replace("{cfg}", str(self.cfg)).replace("{project}", str(self.project))
                .replace("{tmp}", str(self.tmp)).replace("{out}", str(self.out)))


# ----------------------------------------------------------------------------- setups
def write(rel: str, data, to_project: bool = False):
    def setup(ctx):
        path = (ctx.project if to_project else ctx.tmp) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def config(**sections):
    return lambda ctx: ctx.config(**sections)


def project_file(rel: str, change: str):
    """Break one file of the project: delete, truncate, edit, or replace with `change` bytes."""
    def setup(ctx):
        path = ctx.project / rel
        if change == "delete":
            path.unlink()
        elif change == "truncate":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        elif change == "edit":
            path.write_bytes(path.read_bytes().replace(b"e", b"E", 1) + b"\n// edited\n")
        else:
            path.write_bytes(change.encode() if isinstance(change, str) else change)
    return setup


def symlink_loop(rel: str):
    def setup(ctx):
        (ctx.tmp / (rel + "_b")).symlink_to(ctx.tmp / rel)
        (ctx.tmp / rel).symlink_to(ctx.tmp / (rel + "_b"))
    return setup


def hf_dir(config_json):
    def setup(ctx):
        directory = ctx.tmp / "hf"
        directory.mkdir()
        data = config_json if isinstance(config_json, bytes) else config_json.encode()
        (directory / "config.json").write_bytes(data)
    return setup


def chmod(rel: str, mode: int, in_project: bool = False):
    def setup(ctx):
        path = (ctx.project if in_project else ctx.tmp) / rel
        path.mkdir(exist_ok=True) if not path.exists() else None
        path.chmod(mode)
    return setup


def both(*setups):
    def setup(ctx):
        for s in setups:
            s(ctx)
    return setup


def existing_output(ctx):
    ctx.out.mkdir()
    (ctx.out / "keep.txt").write_text("an earlier project\n")


def output_is_a_file(ctx):
    ctx.out.write_text("a file where the project should go\n")


def readonly_output(ctx):
    existing_output(ctx)
    ctx.out.chmod(0o555)
    ctx.tmp.chmod(0o555)


# ----------------------------------------------------------------------------- the table
NOT_UTF8 = "model:\n  vocab: 256 # caf\xe9\n".encode("latin-1")
ELF = Path(sys.executable).resolve().read_bytes()[:4096]

CASES = [
    # -- reading the config
    Case("config missing", ["validate", "{tmp}/nope.yaml"], ["nope.yaml: no such file"]),
    Case("config not UTF-8", ["validate", "{tmp}/l1.yaml"], ["l1.yaml: not a UTF-8 text file", "0xe9"], write("l1.yaml", NOT_UTF8)),
    Case("config is a binary", ["build", "{tmp}/bin.yaml"], ["bin.yaml: not a UTF-8"], write("bin.yaml", ELF)),
    Case("config binary, valid UTF-8", ["validate", "{tmp}/z.yaml"], ["z.yaml: not valid YAML"], write("z.yaml", b"\x00\x01\x02abc")),
    Case("config empty", ["validate", "{tmp}/e.yaml"], ["model.vocab: missing"], write("e.yaml", "")),
    Case("config top level a list", ["validate", "{tmp}/l.yaml"], ["l.yaml: the top level is list"], write("l.yaml", "- 1\n- 2\n")),
    Case("config top level a string", ["golden", "{tmp}/s.yaml", "--ids", "1"], ["the top level is str"], write("s.yaml", "hello\n")),
    Case("config YAML syntax", ["validate", "{tmp}/y.yaml"], ["y.yaml: not valid YAML at line 2"], write("y.yaml", "model: {vocab: 1\nhidden: [\n")),
    Case("config tab indentation", ["validate", "{tmp}/t.yaml"], ["t.yaml: not valid YAML"], write("t.yaml", "model:\n\tvocab: 1\n")),
    Case("config nested too deep", ["validate", "{tmp}/d.yaml"], ["d.yaml: not"], write("d.yaml", "[" * 20000 + "]" * 20000)),
    Case("config is a symlink loop", ["validate", "{tmp}/loop"], ["loop"], symlink_loop("loop")),
    Case("config unreadable", ["validate", "{tmp}/c.yaml"], ["c.yaml: cannot be read", "Permission denied"],
         chmod("c.yaml", 0o000), unprivileged=True),
    Case("config dir unreadable", ["validate", "{tmp}/hf"], ["hf", "Permission denied"],
         both(hf_dir('{"model_type": "hgrn_bit"}'), chmod("hf", 0o000)), unprivileged=True),
    Case("config dir without config.json", ["validate", "{tmp}"], ["directory has no config.json"]),
    Case("config.json a directory", ["validate", "{tmp}/hf"], ["hf: directory has no config.json"],
         lambda ctx: (ctx.tmp / "hf" / "config.json").mkdir(parents=True)),
    Case("config.json a list", ["validate", "{tmp}/hf"], ["config.json holds a JSON list, not an object"], hf_dir("[1, 2]")),
    Case("config.json a number", ["golden", "{tmp}/hf", "--ids", "1"], ["holds a JSON int"], hf_dir("7")),
    Case("config.json not JSON", ["validate", "{tmp}/hf"], ["config.json is not readable JSON"], hf_dir("{model_type: x")),
    Case("config.json not UTF-8", ["validate", "{tmp}/hf"], ["config.json is not readable JSON"], hf_dir(b'{"a": "\xff"}')),
    Case("config.json wrong model_type", ["validate", "{tmp}/hf"], ["model_type 'llama'"], hf_dir('{"model_type": "llama"}')),
    Case("model: config.json missing", ["validate", "{cfg}"], ["model:", "does not exist"], config(model="nowhere/config.json")),
    # -- values in the config
    Case("vocab a string", ["validate", "{cfg}"], ["model.vocab: 'many' is not an integer"], config(model={"vocab": "many"})),
    Case("hidden negative", ["build", "{cfg}"], ["model.hidden: -64 is out of range"], config(model={"hidden": -64})),
    Case("layers zero", ["validate", "{cfg}"], ["model.layers: 0 is out of range"], config(model={"layers": 0})),
    Case("layers a bool", ["validate", "{cfg}"], ["model.layers: True is not an integer"], config(model={"layers": True})),
    Case("heads not a divisor", ["validate", "{cfg}"], ["model.heads: 3 does not divide"], config(model={"heads": 3})),
    Case("rms_norm_eps nan", ["validate", "{cfg}"], ["model.rms_norm_eps: nan is not a finite number"], config(model={"rms_norm_eps": float("nan")})),
    Case("unknown top key", ["validate", "{cfg}"], ["modle: unknown key"], config(modle={})),
    Case("unknown hardware key", ["build", "{cfg}"], ["hardware.bord: unknown key", "did you mean 'board'"], config(hardware={"bord": "u280"})),
    Case("board unknown", ["validate", "{cfg}"], ["hardware.board: 'u999' is not a known board", "u280"], config(hardware={"board": "u999"})),
    Case("board a path", ["validate", "{cfg}"], ["hardware.board: '../examples/tiny' is not a known board"], config(hardware={"board": "../examples/tiny"})),
    Case("clock inf", ["validate", "{cfg}"], ["hardware.clock_mhz: inf is not a finite number"], config(hardware={"clock_mhz": float("inf")})),
    Case("clock a string", ["validate", "{cfg}"], ["hardware.clock_mhz: '300MHz' is not a finite number"], config(hardware={"clock_mhz": "300MHz"})),
    Case("pe not a divisor", ["build", "{cfg}"], ["hardware.parallelism.pe: 3 does not divide"], config(hardware={"parallelism": {"pe": 3}})),
    Case("simd not a divisor", ["validate", "{cfg}"], ["hardware.parallelism.simd: 6 does not divide"], config(hardware={"parallelism": {"pe": 8, "simd": 6}})),
    Case("batch too large", ["validate", "{cfg}"], ["hardware.batch: 17 is out of range"], config(hardware={"batch": 17})),
    Case("weights place", ["validate", "{cfg}"], ["hardware.weights: 'sram' is not allowed"], config(hardware={"weights": "sram"})),
    Case("act width 1", ["validate", "{cfg}"], ["numerics.act.width: 1 is out of range"], config(numerics={"act": {"width": 1}})),
    Case("numerics a list", ["validate", "{cfg}"], ["numerics: expected a mapping"], config(numerics=[1, 2])),
    Case("testbench prompt 0", ["build", "{cfg}"], ["project.testbench.prompt_tokens: 0 is out of range"], config(project={"output": "out", "testbench": {"prompt_tokens": 0}})),
    Case("both weight sources", ["validate", "{cfg}"], ["weights: give exactly one of"], config(weights={"path": "w.npz", "random": {"seed": 0}})),
    Case("weights seed negative", ["validate", "{cfg}"], ["weights.random.seed: -1 is out of range"], config(weights={"random": {"seed": -1}})),
    Case("weights.path missing (validate)", ["validate", "{cfg}"], ["weights.path:", "missing.safetensors does not exist"], config(weights={"random": None, "path": "missing.safetensors"})),
    Case("weights.path empty", ["validate", "{cfg}"], ["weights.path: '' is not a path"], config(weights={"random": None, "path": ""})),
    Case("weights.path a symlink loop", ["validate", "{cfg}"], ["weights.path:", "wloop"], both(symlink_loop("wloop"), config(weights={"random": None, "path": "wloop/x.npz"}))),
    Case("weights dir without checkpoint", ["build", "{cfg}"], ["has neither model.safetensors"], both(lambda ctx: (ctx.tmp / "w").mkdir(), config(weights={"random": None, "path": "w"}))),
    Case("weights pickle", ["build", "{cfg}"], ["never loads pickles"], both(write("w.bin", b"\x80\x04"), config(weights={"random": None, "path": "w.bin"}))),
    Case("weights npz garbage", ["build", "{cfg}"], ["w.npz"], both(write("w.npz", b"PK\x03\x04 not a zip"), config(weights={"random": None, "path": "w.npz"}))),
    Case("weights npz empty", ["golden", "{cfg}", "--ids", "1"], ["w.npz"], both(write("w.npz", b""), config(weights={"random": None, "path": "w.npz"}))),
    Case("weights safetensors garbage", ["build", "{cfg}"], ["w.safetensors"], both(write("w.safetensors", b"\xff" * 64), config(weights={"random": None, "path": "w.safetensors"}))),
    Case("weights safetensors truncated header", ["build", "{cfg}"], ["w.safetensors"], both(write("w.safetensors", (200).to_bytes(8, "little") + b'{"a":'), config(weights={"random": None, "path": "w.safetensors"}))),
    Case("weights unknown format", ["build", "{cfg}"], ["has an unknown format"], both(write("w.txt", "hi"), config(weights={"random": None, "path": "w.txt"}))),
    # -- identifiers
    Case("name with a trailing newline", ["validate", "{cfg}"], ["project.name: 'tiny_top\\n' is not a usable"], config(project={"name": "tiny_top\n", "output": "out"})),
    Case("name a C++ keyword", ["build", "{cfg}"], ["project.name: 'int'", "C++ keyword"], config(project={"name": "int", "output": "out"})),
    Case("name main", ["validate", "{cfg}"], ["project.name: 'main'", "reserved name"], config(project={"name": "main", "output": "out"})),
    Case("name __x", ["validate", "{cfg}"], ["project.name: '__x'", "reserved name"], config(project={"name": "__x", "output": "out"})),
    Case("name 65 characters", ["validate", "{cfg}"], ["65 characters long"], config(project={"name": "n" * 65, "output": "out"})),
    Case("name with a dash", ["validate", "{cfg}"], ["project.name: 'a-b'"], config(project={"name": "a-b", "output": "out"})),
    Case("name a list", ["validate", "{cfg}"], ["project.name: ['a']"], config(project={"name": ["a"], "output": "out"})),
    Case("name non-ASCII", ["validate", "{cfg}"], ["project.name: 'tóp'"], config(project={"name": "tóp", "output": "out"})),
    Case("output empty", ["validate", "{cfg}"], ["project.output: '' is not a path"], config(project={"output": ""})),
    Case("output with NUL", ["build", "{cfg}"], ["project.output:", "is not a path"], config(project={"output": "o\0x"})),
    # -- golden arguments and memory
    Case("ids empty", ["golden", "{cfg}", "--ids", ""], ["--ids: '' holds no token ids"]),
    Case("ids not integers", ["golden", "{cfg}", "--ids", "1,a"], ["--ids: 'a' is not an integer"]),
    Case("ids out of range", ["golden", "{cfg}", "--ids", "999"], ["--ids: 999 is out of range"]),
    Case("ids negative", ["golden", "{cfg}", "--ids", "-1"], ["--ids: -1 is out of range"]),
    Case("top zero", ["golden", "{cfg}", "--ids", "1", "--top", "0"], ["--top: 0 is out of range"]),
    Case("top not an int", ["golden", "{cfg}", "--ids", "1", "--top", "x"], ["argument --top: invalid int value: 'x'"]),
    Case("numerics choice", ["golden", "{cfg}", "--ids", "1", "--numerics", "half"], ["argument --numerics: invalid choice"]),
    Case("ids missing", ["golden", "{cfg}"], ["the following arguments are required: --ids"]),
    Case("save into a missing dir", ["golden", "{cfg}", "--ids", "1", "--save", "{tmp}/no/l.npy"], ["--save: directory", "does not exist"]),
    Case("save is a directory", ["golden", "{cfg}", "--ids", "1", "--save", "{tmp}"], ["--save:", "is a directory"]),
    Case("golden needs 13 TiB", ["golden", "{cfg}", "--ids", "1"], ["golden: this run needs about", "GiB of memory"], config(model=BIG_MODEL, hardware={"parallelism": {"pe": 1, "simd": 1}})),
    Case("build needs 13 TiB", ["build", "{cfg}"], ["build: this run needs about"], config(model=BIG_MODEL, hardware={"parallelism": {"pe": 1, "simd": 1}})),
    Case("max-memory too low", ["golden", "{cfg}", "--ids", "1", "--max-memory", "1M"], ["more than --max-memory 1M"]),
    Case("max-memory not a size", ["build", "{cfg}", "--max-memory", "lots"], ["--max-memory: 'lots' is not a size"]),
    Case("unknown command", ["bild", "{cfg}"], ["argument COMMAND: invalid choice: 'bild'"]),
    Case("unknown option", ["build", "{cfg}", "--fast"], ["unrecognized arguments: --fast"]),
    Case("no command", [], ["the following arguments are required: COMMAND"]),
    # -- generate
    Case("temperature denormal", ["generate", "{cfg}", "--prompt", "a", "--temperature", "5e-324"], ["--temperature: 5e-324 is out of range"]),
    Case("temperature negative", ["generate", "{cfg}", "--prompt", "a", "--temperature", "-1"], ["--temperature: -1.0 is out of range"]),
    Case("temperature nan", ["generate", "{cfg}", "--prompt", "a", "--temperature", "nan"], ["--temperature: nan is out of range"]),
    Case("temperature inf", ["generate", "{cfg}", "--prompt", "a", "--temperature", "inf"], ["--temperature: inf is out of range"]),
    Case("seed negative", ["generate", "{cfg}", "--prompt", "a", "--temperature", "1", "--seed", "-1"], ["--seed: -1 is out of range"]),
    Case("seed huge", ["generate", "{cfg}", "--prompt", "a", "--seed", str(1 << 70)], ["--seed:", "is out of range"]),
    Case("max-new-tokens negative", ["generate", "{cfg}", "--prompt", "a", "--max-new-tokens", "-2"], ["--max-new-tokens: -2 is out of range"]),
    Case("prompt empty", ["generate", "{cfg}", "--prompt", ""], ["--prompt: empty"]),
    Case("vocab not bytes", ["generate", "{cfg}", "--prompt", "a"], ["model.vocab: 512 is not byte-level"], config(model={"vocab": 512})),
    Case("float numerics on csim", ["generate", "{cfg}", "--prompt", "a", "--backend", "csim", "--numerics", "float"], ["--numerics: float is not available"]),
    Case("generate needs 13 TiB", ["generate", "{cfg}", "--prompt", "a"], ["generate: this run needs about"], config(model={**BIG_MODEL, "vocab": 256}, hardware={"parallelism": {"pe": 1, "simd": 1}})),
    # -- explore
    Case("explore unknown board", ["explore", "{cfg}", "--board", "foo"], ["hardware.board: 'foo' is not a known board", "allowed: ", "u280"]),
    Case("explore board a path", ["explore", "{cfg}", "--board", "../examples/tiny"], ["hardware.board: '../examples/tiny' is not a known board"]),
    Case("explore write into a missing folder", ["explore", "{cfg}", "--write", "{tmp}/no/hw.yaml"], ["--write: directory", "does not exist"]),
    # -- the build's output location
    Case("output is a regular file", ["build", "{cfg}"], ["project.output:", "is a file, not a directory"], output_is_a_file),
    Case("output under a regular file", ["build", "{cfg}", "-o", "{tmp}/f/out"], ["project.output: cannot write", "/f ("], write("f", "x")),
    Case("output read-only", ["build", "{cfg}"], ["project.output: cannot write", "Permission denied"], readonly_output, unprivileged=True),
    Case("output parent read-only", ["build", "{cfg}", "-o", "{tmp}/ro/out"], ["project.output: cannot write", "Permission denied"], chmod("ro", 0o555), unprivileged=True),
    Case("output a symlink loop", ["build", "{cfg}", "-o", "{tmp}/oloop/out"], ["project.output:", "oloop"], symlink_loop("oloop")),
    Case("output -o a symlink loop itself", ["build", "{cfg}", "-o", "{tmp}/self"], ["self"], lambda ctx: (ctx.tmp / "self").symlink_to(ctx.tmp / "self")),
    # -- broken projects
    Case("csim: manifest garbage", ["csim", "{project}"], ["hlsgen_manifest.json: corrupt, not valid JSON", "rebuild with `hlsgen build`"], project_file("hlsgen_manifest.json", "{garbage"), project=True),
    Case("csim: manifest empty", ["csim", "{project}"], ["hlsgen_manifest.json: corrupt"], project_file("hlsgen_manifest.json", ""), project=True),
    Case("csim: manifest a list", ["csim", "{project}"], ["hlsgen_manifest.json: corrupt, the top level is list"], project_file("hlsgen_manifest.json", "[]"), project=True),
    Case("csim: manifest without files", ["csim", "{project}"], ["hlsgen_manifest.json: corrupt, no 'files'"], project_file("hlsgen_manifest.json", '{"top": "t", "source": "s", "spec_digest": "d"}'), project=True),
    Case("csim: manifest not UTF-8", ["csim", "{project}"], ["hlsgen_manifest.json: corrupt"], project_file("hlsgen_manifest.json", b"\xff\xfe{}"), project=True),
    Case("csim: calls.bin deleted", ["csim", "{project}"], ["broken project:", "tb/data/calls.bin is missing", "rebuild with `hlsgen build`"], project_file("tb/data/calls.bin", "delete"), project=True),
    Case("csim: expected logits truncated", ["csim", "{project}"], ["tb/data/expected_logits.bin was changed or truncated", "rebuild with `hlsgen build`"], project_file("tb/data/expected_logits.bin", "truncate"), project=True),
    Case("csim: top edited", ["csim", "{project}"], [f"src/{TOP}.cpp was changed"], project_file(f"src/{TOP}.cpp", "edit"), project=True),
    Case("csim: testbench deleted", ["csim", "{project}"], [f"tb/{TOP}_tb.cpp is missing"], project_file(f"tb/{TOP}_tb.cpp", "delete"), project=True),
    Case("csim: not a project", ["csim", "{tmp}"], ["directory has no config.json"], lambda ctx: None),
    Case("csim: target missing", ["csim", "{tmp}/nothing"], ["nothing: no such file"]),
    Case("csim: tool choice", ["csim", "{project}", "--tool", "clang"], ["argument --tool: invalid choice"], project=True),
    Case("csim: no compiler", ["csim", "{project}"], ["csim: no C++ compiler on PATH"], env={"CXX": "no-such-g++"}, project=True),
    Case("csim: cache under a file", ["csim", "{project}"], ["csim: cannot write the binary cache", "HLSGEN_CACHE"], write("cachefile", "x"), env={"HLSGEN_CACHE": "{tmp}/cachefile/c"}, project=True, tools=("g++",)),
    Case("csim: cache unwritable", ["csim", "{project}"], ["csim: cannot write the binary cache", "Permission denied"], chmod("rocache", 0o555), env={"HLSGEN_CACHE": "{tmp}/rocache"}, unprivileged=True, project=True, tools=("g++",)),
    Case("report: manifest garbage", ["report", "{project}"], ["hlsgen_manifest.json: corrupt"], project_file("hlsgen_manifest.json", "nul\0l"), project=True),
    Case("report: source file deleted", ["report", "{project}"], [f"src/{TOP}_weights.h is missing"], project_file(f"src/{TOP}_weights.h", "delete"), project=True),
    Case("report: csim.json garbage", ["report", "{project}"], ["report/csim.json: corrupt", "rerun `hlsgen csim"], write("report/csim.json", "{", to_project=True), project=True),
    Case("report: csim.json empty", ["report", "{project}"], ["report/csim.json: corrupt"], write("report/csim.json", "", to_project=True), project=True),
    Case("report: csim.json a list", ["report", "{project}"], ["report/csim.json: corrupt, the top level is list"], write("report/csim.json", "[1]", to_project=True), project=True),
    Case("report: csim.json missing fields", ["report", "{project}"], ["report/csim.json: corrupt, no passed"], write("report/csim.json", '{"x": 1}', to_project=True), project=True),
    Case("report: cosim.json garbage", ["report", "{project}"], ["report/cosim.json: corrupt", "rerun `hlsgen cosim"], write("report/cosim.json", "\xff", to_project=True), project=True),
    Case("report: synth.json without kinds", ["report", "{project}"], ["report/synth.json: corrupt, no kinds"], write("report/synth.json", "{}", to_project=True), project=True),
    Case("bitstream: flow.json garbage", ["bitstream", "{project}", "--dry-run"], ["hls/flow.json"], project_file("hls/flow.json", "{"), project=True),
    Case("bitstream: flow.json empty", ["bitstream", "{project}"], ["hls/flow.json"], project_file("hls/flow.json", ""), project=True),
    Case("bitstream: Makefile deleted", ["bitstream", "{project}"], ["Makefile is missing"], project_file("Makefile", "delete"), project=True),
    Case("flash: flow.json deleted", ["flash", "{project}", "--dry-run"], ["hls/flow.json is missing"], project_file("hls/flow.json", "delete"), project=True),
    Case("flash: manifest garbage", ["flash", "{project}"], ["hlsgen_manifest.json: corrupt"], project_file("hlsgen_manifest.json", "]"), project=True),
    Case("flash: method choice", ["flash", "{project}", "--method", "usb"], ["argument --method: invalid choice"], project=True),
    Case("cosim: index deleted", ["cosim", "{project}"], ["cosim/mvu.json is missing"], project_file("cosim/mvu.json", "delete"), project=True),
    Case("cosim: rtl truncated", ["cosim", "{project}"], ["rtl/", "was changed or truncated"], lambda ctx: project_file(sorted(p.relative_to(ctx.project).as_posix() for p in (ctx.project / "rtl").glob("*.v"))[0], "truncate")(ctx), project=True),
    Case("cosim: gaps out of range", ["cosim", "{project}", "--gaps", "2"], ["--gaps: 2.0 (allowed: 0 <= p < 1)"], project=True),
    Case("synth: manifest deleted", ["synth", "--open", "{project}"], ["not an hlsgen project"], project_file("hlsgen_manifest.json", "delete"), project=True),
]


# ----------------------------------------------------------------------------- running a case
def tree_digest(directory: Path, skip=("report",)) -> str | None:
    if not directory.exists():
        return None
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if rel.parts[0] in skip or not path.is_file():
            continue
        h.update(str(rel).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _drop_root_override():
    """In the child, before exec: root without CAP_DAC_OVERRIDE/READ_SEARCH obeys file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):                    # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        libc.prctl(24, capability, 0, 0, 0)      # PR_CAPBSET_DROP; exec then drops it from the sets


def run_hlsgen(argv, env=None, unprivileged=False, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hlsgen.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout,
                          preexec_fn=_drop_root_override if unprivileged and os.geteuid() == 0 else None)


def check_one_error_line(stderr: str) -> str:
    """The `error:` lines: one problem each, only indented tool lines (at most 20) after the first.
    Progress lines (a long step saying what it does) may come before it.  A config with several
    mistakes reports each on its own `error:` line in the same run (the packaging issue); every
    other failure has exactly one."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.rstrip("\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.startswith("error: ")), None)
    assert first is not None, stderr
    errors = [line for line in lines[first:] if line.startswith("error: ")]
    tail = [line for line in lines[first:] if not line.startswith("error: ")]
    assert len(tail) <= 20 and all(line.startswith("    ") for line in tail), stderr
    assert len(errors) == 1 or not tail, stderr
    assert not any("internal error" in line for line in errors), stderr
    return "\n".join(errors)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("built")
    ctx = Ctx(tmp, None)
    done = run_hlsgen(["build", str(ctx.cfg), "-o", str(tmp / "project")])
    assert done.returncode == 0, done.stderr
    return tmp / "project"


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 100
    assert len({c.name for c in CASES}) == len(CASES)
    commands = {c.argv[0] for c in CASES if c.argv}
    assert commands >= {"validate", "golden", "build", "generate", "explore", "csim", "cosim", "synth",
                        "report", "bitstream", "flash"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=needs_tool(*c.tools)) for c in CASES], ids=[c.name for c in CASES])
def test_bad_input(case, tmp_path, built):
    ctx = Ctx(tmp_path, built if case.project else None)
    if case.setup:
        case.setup(ctx)
    before = tree_digest(ctx.project) if case.project else None
    try:
        done = run_hlsgen([ctx.fill(a) for a in case.argv], {k: ctx.fill(v) for k, v in case.env.items()},
                          case.unprivileged)
    finally:
        for path in [ctx.tmp, *ctx.tmp.rglob("*")]:       # let pytest clean up what the case locked
            if not path.is_symlink():
                path.chmod(0o755)
    assert done.returncode == case.code, done.stderr
    line = check_one_error_line(done.stderr)
    for part in case.names:
        assert ctx.fill(part) in line, line
    if case.project:
        assert tree_digest(ctx.project) == before, "the project changed"
    if case.setup is not existing_output and case.setup is not readonly_output and case.setup is not output_is_a_file:
        assert not ctx.out.exists() or ctx.out.is_symlink(), "a build wrote its output"
    assert not list(ctx.tmp.glob("out.hlsgen-new*")), "staging left behind"


# ----------------------------------------------------------------------------- faults
def test_a_full_disk_leaves_the_previous_project_whole(tmp_path):
    ctx = Ctx(tmp_path, None)
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                                                   capture_output=True).returncode == 0
    try:
        out = disk / "out"
        out.mkdir()
        (out / "earlier.txt").write_text("an earlier project\n")
        before = tree_digest(out)
        env = {} if mounted else {"HLSGEN_TEST_FAULT": "enospc"}
        done = run_hlsgen(["build", str(ctx.cfg), "-o", str(out)], env)
        assert done.returncode == 2, done.stderr
        line = check_one_error_line(done.stderr)
        assert "project.output: cannot write" in line and "No space left on device" in line
        assert "the previous project, if any, is unchanged" in line
        assert tree_digest(out) == before
        assert sorted(p.name for p in disk.iterdir()) == ["out", "out.hlsgen-lock"]
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


def test_ctrl_c_during_a_build_exits_130_with_one_line_and_keeps_the_old_project(tmp_path):
    ctx = Ctx(tmp_path, None)
    assert run_hlsgen(["build", str(ctx.cfg)]).returncode == 0
    before = tree_digest(ctx.out)
    ctx.config(weights={"random": {"seed": 5}})
    process = subprocess.Popen([sys.executable, "-m", "hlsgen.cli", "build", str(ctx.cfg)], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "HLSGEN_TEST_PAUSE": "staged"},
                               # as from a terminal: a background shell job would inherit SIGINT ignored
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert "paused at staged" in process.stderr.readline()
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"no exit after Ctrl-C: {process.communicate()[1]}")
    assert process.returncode == 130
    assert check_one_error_line(stderr) == ("error: interrupted (Ctrl-C); a build in progress left the previous "
                                            "project intact")
    assert tree_digest(ctx.out) == before and not list(tmp_path.glob("out.hlsgen-new*"))


def test_a_traceback_only_with_hlsgen_debug(tmp_path):
    argv = ["golden", str(Ctx(tmp_path, None).cfg), "--ids", "999"]
    assert "Traceback" not in run_hlsgen(argv).stderr
    debug = run_hlsgen(argv, {"HLSGEN_DEBUG": "1"})
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("error: --ids: 999 is out of range")


def test_a_prompt_with_bytes_that_are_not_utf8_reaches_the_byte_model_as_they_are(tmp_path):
    """Not an error: a byte-level model takes any bytes, so the shell's bytes are the prompt."""
    config = Ctx(tmp_path, None).cfg
    done = subprocess.run([sys.executable.encode(), b"-m", b"hlsgen.cli", b"generate", bytes(config),
                           b"--prompt", b"caf\xe9 \xff", b"--max-new-tokens", b"2"], cwd=ROOT, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert b"golden float: 6 prompt + 2 new tokens" in done.stderr
