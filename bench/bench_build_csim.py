"""`hlsgen build` and `hlsgen csim` speed on a 2-layer, hidden-256 model with on-chip weights.

Model: vocab 1024, H = D = 256, I = 512, PE 4 x SIMD 16 (lm_head PE 8 x SIMD 16), random weights.
The testbench runs one prompt token and 63 greedy decode steps: 64 calls of the top function.
Prints the build time, the csim compile time cold (fresh cache) and warm (cached binary), and the
csim run time of the 64 tokens next to the golden fixed-point model's time for the same tokens.

    python bench/bench_build_csim.py [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

from hlsgen.project import build
from hlsgen.project import calls as calls_mod
from hlsgen.model import checkpoint
from hlsgen.tools import csim
from hlsgen.model import golden
from hlsgen.model import spec as spec_mod

CONFIG = {
    "model": {"vocab": 1024, "hidden": 256, "layers": 2, "intermediate_size": 512},
    "weights": {"random": {"seed": 0}},
    "hardware": {"board": "u280", "weights": "onchip",
                 "parallelism": {"pe": 4, "simd": 16, "lm_head_pe": 8, "lm_head_simd": 16}},
    "project": {"name": "bench_top", "output": "bench_top",
                "testbench": {"prompt_tokens": 1, "decode_steps": 64, "second_prompt_tokens": 0}},
}


def timed(run):
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def best_of(run, repeat: int) -> float:
    """Fastest of `repeat` runs (the least disturbed by other load on the machine)."""
    return min(timed(run)[1] for _ in range(repeat))


def golden_seconds(spec, project: Path, repeat: int) -> float:
    """The golden fixed model on the testbench's own calls, one token at a time."""
    model = golden.Model(spec.model, checkpoint.load(spec), "fixed", spec.numerics)
    calls = calls_mod.read_calls(project / "tb" / "data" / "calls.bin")
    return best_of(lambda: calls_mod.run_calls(model, calls), repeat)


def csim_seconds(project: Path, repeat: int) -> float:
    def run():
        result = csim.run(project)
        assert result.passed and result.cached, result.output[-2000:]
        return result.seconds_run
    return min(run() for _ in range(repeat))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each warm measurement; the fastest counts")
    parser.add_argument("--keep", type=Path, help="build here and keep the project (default: a temporary directory)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        config = work / "bench.yaml"
        config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
        os.environ["HLSGEN_CACHE"] = str(Path(tmp) / "cache")      # cold means cold
        spec = spec_mod.load(config)

        built, build_s = timed(lambda: build.build(spec))
        project = built.out.resolve()
        cold, _ = timed(lambda: csim.run(project))
        assert cold.passed and not cold.cached, cold.output[-2000:]
        warm, warm_s = timed(lambda: csim.run(project))
        assert warm.passed and warm.cached
        tokens = int(calls_mod.read_calls(project / "tb" / "data" / "calls.bin")[:, 0].sum())
        run_s = csim_seconds(project, args.repeat)
        golden_s = golden_seconds(spec, project, args.repeat)

    m, p = spec.model, spec.hardware.parallelism
    print(f"model: vocab {m.vocab}, hidden {m.hidden}, {m.layers} layers, intermediate {m.intermediate}; "
          f"PE {p.pe} x SIMD {p.simd}, lm_head PE {p.lm_head_pe} x SIMD {p.lm_head_simd}; on-chip weights")
    print(f"project: {built.files} files, {os.cpu_count()} CPUs\n")
    rows = [
        ("build (golden vectors + render + write)", build_s, ""),
        ("csim compile, cold", cold.seconds_compile, ""),
        ("csim, warm (hash sources, cached binary, run)", warm_s, ""),
        (f"csim run, {tokens} tokens", run_s, f"{1000 * run_s / tokens:.2f}"),
        (f"golden fixed model, {tokens} tokens", golden_s, f"{1000 * golden_s / tokens:.2f}"),
    ]
    print(f"{'step':<48} {'seconds':>8} {'ms/token':>9}")
    for name, seconds, per_token in rows:
        print(f"{name:<48} {seconds:>8.3f} {per_token:>9}")
    print(f"\ncsim / golden: {run_s / golden_s:.2f}x the golden model's time")


if __name__ == "__main__":
    main()
