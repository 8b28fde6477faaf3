"""The RTL core's multiplier (templates/rtl/core_mul.v.j2) at widths of every piece count, in
Verilator: the products it prints are checked against Python's integers, which share nothing with
the Verilog."""

import random
import re
import subprocess
from types import SimpleNamespace

from hlsgen.project.rtl import environment
from hlsgen.tools.cosim import SIMULATORS

# (AW, BW): one piece, a 1-bit top piece, the rescale's 16 x 41, two pieces each, three, four
SHAPES = [(8, 5), (18, 18), (19, 18), (16, 41), (24, 20), (35, 35), (36, 19), (53, 40), (70, 24)]
CASES = 64


def operands(width: int, rng: random.Random) -> list[int]:
    """The extremes, then random values over the whole range."""
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return [low, high, -1, 0, 1] + [rng.randint(low, high) for _ in range(CASES - 5)]


def bench_source(pairs: dict) -> str:
    """One multiplier per shape, fed one pair a cycle from a register; each prints its products with
    their operands. Operands set at edge e are in the product registered at edge e + 2."""
    cases = len(next(iter(pairs.values()))[0])
    regs, feeds, shows = [], [[] for _ in range(cases)], []
    for s, ((aw, bw), (a_values, b_values)) in enumerate(pairs.items()):
        regs.append(f"    reg signed [{aw - 1}:0] a{s} = 0, a{s}_1 = 0, a{s}_2 = 0;\n"
                    f"    reg signed [{bw - 1}:0] b{s} = 0, b{s}_1 = 0, b{s}_2 = 0;\n"
                    f"    wire signed [{aw + bw - 1}:0] p{s};\n"
                    f"    t_mul #(.AW({aw}), .BW({bw})) dut{s} (.clk(clk), .a(a{s}), .b(b{s}), .p(p{s}));\n")
        shows.append(f"        a{s}_1 <= a{s}; b{s}_1 <= b{s}; a{s}_2 <= a{s}_1; b{s}_2 <= b{s}_1;\n"
                     f"        if (n >= 3) $display(\"{s} %0d %0d %0d\", a{s}_2, b{s}_2, p{s});\n")
        for k, (a, b) in enumerate(zip(a_values, b_values)):
            feeds[k].append(f"a{s} <= {aw}'h{a & ((1 << aw) - 1):x}; b{s} <= {bw}'h{b & ((1 << bw) - 1):x};")
    return ("module tb (input wire clk);\n    integer n = 0;\n" + "".join(regs)
            + "    always @(posedge clk) begin\n        n <= n + 1;\n        case (n)\n"
            + "".join(f"        {k}: begin {' '.join(f)} end\n" for k, f in enumerate(feeds))
            + "        default: ;\n        endcase\n" + "".join(shows)
            + f"        if (n == {cases + 2}) $finish;\n    end\nendmodule\n")


MAIN = """#include "Vtb.h"
#include "verilated.h"
int main(int argc, char** argv) {
    VerilatedContext context;
    context.commandArgs(argc, argv);
    Vtb tb{&context};
    while (!context.gotFinish()) { tb.clk = !tb.clk; tb.eval(); }
    tb.final();
}
"""


def test_the_product_is_exact_at_every_piece_count(tmp_path):
    rng = random.Random(7)
    pairs = {}
    for aw, bw in SHAPES:
        a_values, b_values = operands(aw, rng), operands(bw, rng)
        rng.shuffle(b_values)
        pairs[(aw, bw)] = (a_values, b_values)
    (tmp_path / "mul.v").write_text(environment().get_template("core_mul.v.j2")
                                    .render(c=SimpleNamespace(module="t"), banner="test"))
    (tmp_path / "tb.v").write_text(bench_source(pairs))
    verilator = SIMULATORS["verilator"].require() / "verilator"
    (tmp_path / "main.cpp").write_text(MAIN)
    subprocess.run([str(verilator), "--cc", "--exe", "--build", "-Wno-fatal", "--top-module", "tb",
                    "mul.v", "tb.v", "main.cpp"], cwd=tmp_path, check=True, capture_output=True, text=True)
    out = subprocess.run([str(tmp_path / "obj_dir" / "Vtb")], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    rows = [tuple(map(int, line.split())) for line in out.splitlines() if re.fullmatch(r"\d+ -?\d+ -?\d+ -?\d+", line)]
    for s, (shape, (a_values, b_values)) in enumerate(pairs.items()):
        mine = [(a, b, p) for unit, a, b, p in rows if unit == s]
        assert [(a, b) for a, b, _ in mine] == list(zip(a_values, b_values)), shape
        wrong = [(a, b, p) for a, b, p in mine if p != a * b]
        assert not wrong, f"{shape[0]} x {shape[1]}: {len(wrong)} of {len(mine)} products differ, first {wrong[0]}"
