"""Co-simulation and open synthesis of the RTL matrix-vector unit at 370M-model shapes.

For [1024 x 1024] (the i projection of hidden 1024) and [1024 x 2816] (down, intermediate 2816) at
three PE x SIMD foldings: measured cycles per call over perf.mvu_alone_cycles (no gaps, no backpressure;
every output checked), Verilator's speed in cycles/s under the cocotb bench, and Yosys LUTs per
PE*SIMD lane.  With --batch B the design runs calls of up to B tokens and the testbench's prompt is
one call of B tokens: the ideal is then B*cols/SIMD load beats + B*rows*cols/(PE*SIMD) folds;
with B = 1 it is rows*cols/(PE*SIMD).

    python bench/bench_cosim.py [--foldings 4x8,8x16,16x16] [--weights hbm|onchip] [--batch B] [--no-synth] [--out F]

With --weights hbm (the default) the units take their weights on an AXI-Stream, fed by the bench
from the same words the HLS m_axi ports read: Yosys then counts the datapath alone, not a multi-
megabit ROM image (which costs BRAM, not LUTs, and minutes of Yosys time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from hlsgen.project import build
from hlsgen.tools import cosim
from hlsgen.tools import synth
from hlsgen.model import spec as spec_mod

SHAPES = {"i": "1024 x 1024", "down": "1024 x 2816"}


def config(directory: Path, pe: int, simd: int, weights: str, batch: int) -> Path:
    """One layer of a 370M-shaped model; the testbench runs one call of `batch` tokens."""
    path = directory / f"mvu_{pe}x{simd}_b{batch}.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"vocab": 256, "hidden": 1024, "layers": 1, "intermediate_size": 2816},
        "weights": {"random": {"seed": 0}},
        "hardware": {"board": "u280", "weights": weights, "parallelism": {"pe": pe, "simd": simd}, "batch": batch},
        "project": {"name": "bench_top", "output": f"p_{pe}x{simd}_b{batch}",
                    "testbench": {"prompt_tokens": batch, "decode_steps": 0, "second_prompt_tokens": 0}},
    }))
    return path


def measure(directory: Path, pe: int, simd: int, weights: str, batch: int, with_synth: bool) -> list[dict]:
    spec = spec_mod.load(config(directory, pe, simd, weights, batch))
    project = build.build(spec).out.resolve()
    options = cosim.CosimOptions(tests=("throughput",), throughput_vectors=1)
    rows = []
    for r in cosim.run(project, options, list(SHAPES)):
        row = {"shape": SHAPES[r.kind], "kind": r.kind, "pe": pe, "simd": simd, "passed": r.passed,
               "tokens": r.measured_tokens, "measured_cycles": r.measured_cycles, "ideal_cycles": r.ideal_cycles,
               "ratio": r.measured_cycles / r.ideal_cycles, "cycles_per_s": r.cycles_per_second,
               "build_s": r.build_seconds}
        rows.append(row)
    if with_synth:
        results, _ = synth.run(project, synth.project_mvus(project, list(SHAPES)))
        for row, s in zip(rows, results):
            row.update(lut=s.yosys["lut"], ff=s.yosys["ff"], bram36=s.yosys["bram36"], dsp=s.yosys["dsp"],
                       lut_estimate=s.estimate["lut"], lut_per_lane=s.lut_per_lane, synth_s=s.seconds)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--foldings", default="4x8,8x16,16x16", help="PExSIMD list (default: 4x8,8x16,16x16)")
    parser.add_argument("--weights", choices=("hbm", "onchip"), default="hbm",
                        help="hbm: weights on a stream (default); onchip: from the ROM")
    parser.add_argument("--batch", type=int, default=1, help="tokens per call (hardware.batch; default 1)")
    parser.add_argument("--no-synth", action="store_true", help="skip Yosys")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for folding in args.foldings.split(","):
            pe, simd = map(int, folding.split("x"))
            start = time.perf_counter()
            rows += measure(Path(tmp), pe, simd, args.weights, args.batch, not args.no_synth)
            print(f"# {folding} done in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"{'shape':12s} {'PExSIMD':>8s} {'tokens':>6s} {'cycles':>8s} {'ideal':>8s} {'ratio':>6s} {'cycles/s':>9s} "
          f"{'LUT':>7s} {'LUT/lane':>8s} {'BRAM36':>6s} {'DSP':>3s}")
    for r in rows:
        print(f"{r['shape']:12s} {r['pe']:>3d}x{r['simd']:<4d} {r['tokens']:>6d} {r['measured_cycles']:>8d} {r['ideal_cycles']:>8d} "
              f"{r['ratio']:>6.4f} {r['cycles_per_s']:>9,.0f} {r.get('lut', '-'):>7} "
              f"{r.get('lut_per_lane', float('nan')):>8.1f} {r.get('bram36', '-'):>6} {r.get('dsp', '-'):>3}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
