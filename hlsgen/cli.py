"""The `hlsgen` command line.

Each command is a `Command` (name, help, example, add_arguments, run) listed in COMMANDS; adding
a command means writing its two functions and one entry there.  Every HlsgenError becomes one
`error: ...` line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hlsgen.project import build as build_mod
from hlsgen.hardware import explore
from hlsgen.model import checkpoint, golden, memory, weights
from hlsgen.project import vendor
from hlsgen.tools import csim, deploy, ecp5, generate, report, rtl_commands
from hlsgen.model import spec as spec_mod
from hlsgen import api
from hlsgen.errors import EXIT_BUG, EXIT_ERROR, EXIT_INTERRUPTED, HlsgenError, format_error
from hlsgen.version import __version__


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    example: str                                          # shown under --help
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]              # returns the exit code


def load_weights(spec: spec_mod.Spec) -> weights.Weights:
    """The checkpoint (or seeded random weights) named by the spec's `weights` section."""
    return checkpoint.load(spec)


# ----------------------------------------------------------------------------- validate
def parameter_count(model: spec_mod.ModelSpec) -> int:
    """Number of values in the checkpoint tensors of this model shape."""
    return sum(math.prod(shape) for shape in weights.expected_shapes(model).values())


def _describe(spec: spec_mod.Spec) -> list[str]:
    m, hw, p = spec.model, spec.hardware, spec.hardware.parallelism
    source = f"random, seed {spec.weights.seed}" if spec.weights.seed is not None else str(spec.weights.path)
    clock = f"{hw.clock_mhz:g} MHz" if hw.clock_mhz is not None else "board default"
    return [
        f"model        V={m.vocab} H={m.hidden} D={m.inner} I={m.intermediate} L={m.layers} heads={m.heads}",
        f"parameters   {parameter_count(m):,}",
        f"weights      {source}",
        f"board        {hw.board}, clock {clock}, weights {hw.weights}",
        f"parallelism  layers pe={p.pe} simd={p.simd}; lm_head pe={p.lm_head_pe} simd={p.lm_head_simd}",
        f"project      {spec.project.name} -> {spec.project.output}",
    ]


def _validate_arguments(parser):
    parser.add_argument("config", help="YAML config file or Hugging Face MMfreeLM model directory")


def _validate_run(args) -> int:
    spec = api.load_config(args.config)     # a board file given by path is checked too
    print(f"{args.config}: valid")
    for line in _describe(spec):
        print("  " + line)
    return 0


# ----------------------------------------------------------------------------- golden
def parse_ids(text: str, vocab: int) -> list[int]:
    """Token ids from '1,2,3'; each must be an integer in [0, vocab)."""
    allowed = f"(allowed: comma-separated integers in [0, {vocab}))"
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise HlsgenError(f"--ids: {text!r} holds no token ids {allowed}")
    ids = []
    for item in items:
        try:
            token = int(item)
        except ValueError:
            raise HlsgenError(f"--ids: {item!r} is not an integer {allowed}") from None
        if not 0 <= token < vocab:
            raise HlsgenError(f"--ids: {token} is out of range {allowed}")
        ids.append(token)
    return ids


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest logits of each row, largest first (lower index first on ties)."""
    return np.argsort(-logits, axis=-1, kind="stable")[:, :k]


def _golden_arguments(parser):
    parser.add_argument("source", help="YAML config file or Hugging Face MMfreeLM model directory")
    parser.add_argument("--ids", required=True, help="comma-separated input token ids, e.g. 1,2,3")
    parser.add_argument("--numerics", choices=golden.MODES, default="float",
                        help="float: fp32 as the reference; fixed: the bit-accurate hardware model (default: float)")
    parser.add_argument("--decode", action="store_true",
                        help="feed the tokens one at a time (recurrent decode) instead of one prefill pass")
    parser.add_argument("--save", metavar="FILE.npy", type=Path,
                        help="write the logits as a float32 array [T, vocab]")
    parser.add_argument("--top", metavar="K", type=int, default=5, help="tokens to show per position (default: 5)")
    _max_memory_argument(parser)


def _max_memory_argument(parser):
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse a run whose estimated memory exceeds SIZE, e.g. 4G (default: the memory "
                             "available now)")


def _testbench_tokens(spec) -> int:
    t = spec.project.testbench
    return max(t.prompt_tokens, t.second_prompt_tokens, spec.hardware.batch)


def _check_output_file(path: Path) -> None:
    # Checked before the model runs so that a bad path fails fast and nothing is written.
    if not path.parent.is_dir():
        raise HlsgenError(f"--save: directory {path.parent} does not exist (allowed: a file in an existing directory)")
    if path.is_dir():
        raise HlsgenError(f"--save: {path} is a directory (allowed: a file path)")


def _print_top(ids, logits: np.ndarray, k: int) -> None:
    print(f"{'pos':>4} {'input':>6}  top-{k} token:logit")
    for pos, (token, row, best) in enumerate(zip(ids, logits, top_k(logits, k))):
        shown = "  ".join(f"{int(b)}:{row[b]:.4f}" for b in best)
        print(f"{pos:>4} {token:>6}  {shown}")


def _golden_run(args) -> int:
    spec = api.load_config(args.source)
    ids = parse_ids(args.ids, spec.model.vocab)
    if not 1 <= args.top <= spec.model.vocab:
        raise HlsgenError(f"--top: {args.top} is out of range (allowed: 1 to model.vocab {spec.model.vocab})")
    if args.save is not None:
        _check_output_file(args.save)
    memory.check(spec.model, len(ids), "golden", args.max_memory)
    run = api.run_golden(spec, ids, args.numerics, args.decode)
    logits = run.logits.astype(np.float32)
    how = "decode, one token at a time" if args.decode else "prefill"
    print(f"{spec.project.name}: {args.numerics} numerics, {how}, {len(ids)} tokens")
    _print_top(ids, logits, args.top)
    if args.numerics == "fixed":
        counts = run.saturations
        print("saturations: " + (", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"))
    if args.save is not None:
        with open(args.save, "wb") as f:
            np.save(f, logits)
        print(f"saved logits {list(logits.shape)} float32 to {args.save}")
    return 0


# ----------------------------------------------------------------------------- build
def _build_arguments(parser):
    parser.add_argument("config", help="YAML config file or Hugging Face MMfreeLM model directory")
    parser.add_argument("-o", "--output", type=Path, help="project directory (default: project.output)")
    _max_memory_argument(parser)


def _build(config, output, max_memory=None) -> "build_mod.BuildResult":
    project = api.convert(config, output)
    memory.check(project.spec.model, _testbench_tokens(project.spec), "build", max_memory, build=True)
    result = project.write()
    print(f"{result.out}: {result.files} files, {len(result.changed)} changed")
    for b in result.plan.bitlinears:
        print(f"  {b.kind:8s} [{b.rows} x {b.cols}] x{b.matrices}  PE {b.pe} x SIMD {b.simd}  "
              f"{b.cycles_per_matrix} cycles/matrix  acc {b.acc_width} bits")
    manifest = json.loads((result.out / "hlsgen_manifest.json").read_text())
    if manifest["constant_saturations"]:
        print(f"  warning: constants clamped to their formats: {manifest['constant_saturations']}")
    return result


def _build_run(args) -> int:
    _build(args.config, args.output, args.max_memory)
    return 0


# ----------------------------------------------------------------------------- csim
def _csim_arguments(parser):
    parser.add_argument("target", help="a generated project directory, or a config to build first")
    parser.add_argument("-o", "--output", type=Path, help="project directory when building (default: project.output)")
    parser.add_argument("--tool", choices=("gcc", "vitis"), default="gcc",
                        help="gcc: g++ against the ap_types headers (default); vitis: vitis_hls csim_design")
    parser.add_argument("--sanitize", action="store_true", help="compile with AddressSanitizer and UBSan")
    parser.add_argument("--dataflow-threads", action="store_true",
                        help="run each DATAFLOW process in a thread, every stream a blocking FIFO of its depth: "
                             "a too-shallow stream deadlocks as in hardware")


def _csim_run(args) -> int:
    target = Path(args.target)
    project = target if (target / "hlsgen_manifest.json").is_file() else _build(target, args.output).out
    if args.tool == "vitis":
        return csim.run_vitis(project)
    result = csim.run(project, sanitize=args.sanitize, dataflow_threads=args.dataflow_threads)
    how = "cached binary" if result.cached else f"compiled in {result.seconds_compile:.1f} s"
    summary = [line for line in result.output.splitlines() if line.startswith(("checked", "MISMATCH"))]
    print(f"csim {project}: {how}, ran in {result.seconds_run:.2f} s")
    for line in summary:
        print("  " + line)
    print("  saturations: " + (", ".join(f"{k} {v}" for k, v in result.saturations.items()) or "none"))
    print(f"  recorded in {result.record}")
    if result.passed:
        print("PASS: bit-exact with the golden fixed-point model")
        return 0
    if not summary:
        print(result.output[-3000:])
    # A run stopped by the csim's own check (a deadlock, an empty or undrained stream) says why.
    stopped = re.findall(r"^hlsgen csim error: (.*)$", result.output, re.M)
    print(f"FAIL: {stopped[-1]}" if stopped and not result.divergence else f"FAIL: first divergence: {result.divergence}")
    return 1


# ----------------------------------------------------------------------------- generate
def _generate_arguments(parser):
    parser.add_argument("config", help="YAML config or HF model directory: its tokenizer.json, or UTF-8 bytes "
                                       "for a byte-level model (vocab 256)")
    parser.add_argument("--prompt", required=True, help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="tokens to generate (default: 64)")
    parser.add_argument("--backend", choices=("golden", "csim"), default="golden",
                        help="golden: the NumPy golden model (default); csim: build the project and run the "
                             "C-simulated accelerator (the prompt in blocks of hardware.batch, then a token per call)")
    parser.add_argument("--numerics", choices=golden.MODES,
                        help="golden backend: float or fixed (default: float); csim is always fixed")
    parser.add_argument("--temperature", type=float, default=0.0, metavar="T",
                        help="0: greedy (default); > 0: sample from softmax(logits / T)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("-o", "--output", type=Path, help="csim: project directory (default: project.output)")
    _max_memory_argument(parser)


def _generate_backend(args, spec):
    if args.backend == "golden":
        model = golden.Model(spec.model, load_weights(spec), args.numerics or "float", spec.numerics)
        return generate.GoldenBackend(model), f"golden {model.mode}"
    if args.numerics == "float":
        raise HlsgenError("--numerics: float is not available with --backend csim (allowed: fixed, or omit it; "
                          "the accelerator computes in fixed point)")
    result = build_mod.build(spec, args.output)
    print(f"built {result.out} ({len(result.changed)} files changed); compiling the csim device", file=sys.stderr)
    return generate.CsimBackend(result.out, spec), "csim"


def _generate_run(args) -> int:
    spec = api.load_config(args.config)
    tokenizer = generate.tokenizer_for(spec)
    prompt = tokenizer.encode(args.prompt)
    if not 0 <= args.max_new_tokens <= 1 << 20:
        raise HlsgenError(f"--max-new-tokens: {args.max_new_tokens} is out of range (allowed: 0 to {1 << 20})")
    sampler = generate.Sampler(args.temperature, args.seed)
    if args.backend == "csim":
        memory.check(spec.model, _testbench_tokens(spec), "generate", args.max_memory, build=True)
    else:
        memory.check(spec.model, 1, "generate", args.max_memory)     # one token at a time
    backend, name = _generate_backend(args, spec)
    start = time.perf_counter()
    stream = generate.Streamer(tokenizer, prompt, sys.stdout)      # the text as the tokens come
    new = generate.generate(backend, prompt, args.max_new_tokens, sampler, on_token=stream)
    stream.finish()
    seconds = time.perf_counter() - start
    print(f"{name}: {len(prompt)} prompt + {len(new)} new tokens in {seconds:.2f} s (tokenizer: {tokenizer.name})",
          file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- bitstream, flash
def _bitstream_arguments(parser):
    parser.add_argument("project", help="a generated project directory")
    parser.add_argument("--target", choices=vendor.ALVEO_TARGETS, default="hw",
                        help="Alveo: sw_emu, hw_emu or hw (default); Zynq boards build hw only")
    parser.add_argument("--dry-run", action="store_true", help="print the exact commands instead of running them")
    parser.add_argument("--allow-slow", action="store_true",
                        help="ECP5: when place and route misses the clock, build at the clock it meets instead of failing")
    parser.add_argument("--router", choices=ecp5.ROUTERS,
                        help="ECP5: nextpnr's router (default: router1, nextpnr's own default)")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="ECP5: nextpnr's placer seed (default: nextpnr's); Fmax moves with it by several MHz")


def _bitstream_run(args) -> int:
    return deploy.bitstream(args.project, args.target, args.dry_run, args.allow_slow,
                            ecp5.PnrOptions(args.router, args.seed))


def _flash_arguments(parser):
    parser.add_argument("project", help="a generated project directory with a built bitstream")
    parser.add_argument("--device", metavar="ID",
                        help="xbutil/xrt: PCIe BDF or index; openfpgaloader: FTDI serial; vivado: part of "
                             "the JTAG target's name")
    parser.add_argument("--method", choices=("xbutil", "pynq", "openfpgaloader", "vivado"),
                        help="how to program (default: the first of the board file's program.methods)")
    parser.add_argument("--dry-run", action="store_true", help="print the exact commands instead of running them")
    parser.add_argument("--persist", action="store_true",
                        help="openfpgaloader: write the configuration flash (-f), not only the SRAM")
    parser.add_argument("--port", help="ECP5: the serial port of the self-test (default /dev/ttyUSB0)")


def _flash_run(args) -> int:
    return deploy.flash(args.project, args.method, args.device, args.dry_run, args.persist, args.port)


# ----------------------------------------------------------------------------- explore
def _explore_run(args) -> int:
    if args.write and not args.write.parent.is_dir():     # before the search, so nothing is lost
        raise HlsgenError(f"--write: directory {args.write.parent} does not exist (allowed: a file in an existing directory)")
    table = api.explore(args.config, board=args.board, budget=args.budget, batch=args.batch, max_batch=args.max_batch)
    print(table)
    if args.write:
        try:
            args.write.write_text(table.hardware_yaml())
        except OSError as exc:
            raise HlsgenError(f"--write: cannot write {args.write} ({exc.strerror})") from None
        print(f"wrote the hardware section to {args.write}")
    else:
        print(table.hardware_yaml(), end="")
    return 0


# ----------------------------------------------------------------------------- registry
COMMANDS = [
    Command("validate", "check a config and print a summary of the model and target",
            "hlsgen validate examples/tiny.yaml\nhlsgen validate path/to/MMfreeLM-370M",
            _validate_arguments, _validate_run),
    Command("golden", "run the NumPy golden model and print the top tokens per position",
            "hlsgen golden examples/tiny.yaml --ids 1,2,3 --numerics fixed --top 3\n"
            "hlsgen golden examples/tiny.yaml --ids 1,2,3 --decode --save logits.npy",
            _golden_arguments, _golden_run),
    Command("build", "generate the Vitis HLS project (kernels, testbench with golden vectors, vendor scripts)",
            "hlsgen build examples/tiny.yaml\nhlsgen build examples/tiny.yaml -o /tmp/tiny_top",
            _build_arguments, _build_run),
    Command("csim", "compile and run the C simulation; compare with the golden model bit for bit",
            "hlsgen csim out/tiny_top\nhlsgen csim examples/tiny.yaml   # build, then csim",
            _csim_arguments, _csim_run),
    Command("generate", "generate text through the golden model or the C-simulated accelerator, streamed as it comes",
            'hlsgen generate examples/tiny_lm.yaml --prompt "def " --backend csim\n'
            'hlsgen generate examples/tiny_lm.yaml --prompt "import " --temperature 0.8 --seed 1',
            _generate_arguments, _generate_run),
    Command("bitstream", "run the vendor flow to a bitstream (Alveo: v++ to an .xclbin; Zynq: Vivado to .bit/.hwh)",
            "hlsgen bitstream out/tiny_top --dry-run\nhlsgen bitstream out/tiny_top --target hw_emu",
            _bitstream_arguments, _bitstream_run),
    Command("flash", "program the board, then run the golden vectors through the host driver bit for bit",
            "hlsgen flash out/tiny_top --dry-run\nhlsgen flash out/tiny_top --device 0000:3b:00.1",
            _flash_arguments, _flash_run),
    Command("cosim", "co-simulate the RTL matrix-vector units (cocotb) against the golden vectors, bit for bit",
            "hlsgen cosim out/tiny_top\nhlsgen cosim out/tiny_top --sim icarus --kind i --waves",
            rtl_commands.cosim_arguments, rtl_commands.cosim_run),
    Command("synth", "open-source synthesis (Yosys) of the RTL matrix-vector units, next to the plan's estimate",
            "hlsgen synth --open out/tiny_top\nhlsgen synth --open out/tiny_top --kind down",
            rtl_commands.synth_arguments, rtl_commands.synth_run),
    Command("explore", "search foldings, weight placements, packings and batches for the fastest design within "
            "the board budget",
            "hlsgen explore examples/tiny.yaml --board kv260\nhlsgen explore big.yaml --budget 0.6 --write hw.yaml\n"
            "hlsgen explore big.yaml --batch 1    # one sequence at a time",
            explore.arguments, _explore_run),
    Command("csynth", "Vitis HLS C synthesis; per loop the achieved II against the plan's, resources against the "
            "estimate (report/csynth.json)",
            "hlsgen csynth out/tiny_top", report.csynth_arguments, report.csynth_run),
    Command("report", "write report.md, report.json and PNG plots of a project's performance and resources",
            "hlsgen report out/tiny_top", report.arguments, report.run),
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hlsgen", description="Turn a MatMul-free ternary language model into an HLS project.",
        epilog="examples:\n" + "\n".join(f"  {c.example.splitlines()[0]}" for c in COMMANDS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hlsgen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help,
                                  epilog="example:\n" + "\n".join(f"  {line}" for line in command.example.splitlines()),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


class _Parser(argparse.ArgumentParser):
    def error(self, message):        # one `error:` line like every other failure, not a usage dump
        raise HlsgenError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def main(argv=None) -> int:
    """Run one command; every failure ends as one `error: ...` line (a tool's own lines indented
    below it) and an exit code from hlsgen.errors.  HLSGEN_DEBUG=1 adds the traceback."""
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except SystemExit:               # --help, --version
        raise
    except BaseException as exc:
        code, message = _failure(exc)
        if os.environ.get("HLSGEN_DEBUG") == "1":
            traceback.print_exception(exc)
        print(message, file=sys.stderr)
        return code


def _failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and the error line of a failure."""
    if isinstance(exc, HlsgenError):
        return EXIT_ERROR, format_error(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "error: interrupted (Ctrl-C); a build in progress left the previous project intact"
    if isinstance(exc, MemoryError):
        return EXIT_ERROR, "error: out of memory (allowed: a smaller model or sequence, or more memory)"
    if isinstance(exc, OSError):     # a file or device the input layers did not anticipate
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        return EXIT_ERROR, f"error: {where or 'I/O'}: {exc.strerror or exc}"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return EXIT_BUG, (f"error: internal error, {type(exc).__name__}: {first} (a bug in hlsgen; HLSGEN_DEBUG=1 "
                      f"shows the traceback)")


if __name__ == "__main__":
    sys.exit(main())
