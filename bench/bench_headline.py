"""The headline table: the explored design for MMfreeLM-370M / 1.3B / 2.7B shapes on each board.

Two designs per row: the fastest for one sequence (batch 1, the goal: >= 85% of the *achievable*
bandwidth ceiling when memory-bound), and the fastest over batches 1 to 16 (decode tok/s of its
batch of sequences together; prefill in blocks of its batch runs at the same rate).  Ceilings at
the achievable bandwidth (boards/*.yaml achievable_gbps, with its source) and at the nominal one;
tok/s at the board's target clock and at its conservative clock.  Model estimates
(hlsgen/hardware/perf.py, hlsgen/hardware/estimate.py), not measurements: no weights are loaded and
nothing is synthesised.  Prints a Markdown table; the README's copy comes from here.

    python bench/bench_headline.py [--budget 0.7]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hlsgen.hardware import explore, planner
from hlsgen.model import spec  # noqa: E402
from hlsgen.errors import HlsgenError  # noqa: E402

MODELS = {"370M": (1024, 24, 2816), "1.3B": (2048, 24, 5632), "2.7B": (2560, 32, 6912)}
BOARDS = ("u280", "u55c", "u250", "zcu104", "kv260")


def model_spec(directory: Path, board: str, shape) -> spec.Spec:
    hidden, layers, intermediate = shape
    config = {"model": {"vocab": 32000, "hidden": hidden, "layers": layers, "intermediate_size": intermediate},
              "weights": {"random": {"seed": 0}}, "hardware": {"board": board},
              "project": {"name": "headline_top", "output": "out"}}
    path = directory / f"{board}.yaml"
    path.write_text(yaml.safe_dump(config))
    return spec.load(path)


def fraction(e) -> str:
    return "-" if e.fraction_of_ceiling is None else f"{e.fraction_of_ceiling:.0%}"


def rate(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def clocks(c) -> str:
    return f"{c.plan.clock_mhz:g} / {c.plan.board.conservative_clock_mhz:g}"


def one_sequence(c) -> list:
    """Batch 1, the issue's goal: the chosen design's figures at the target and conservative clocks."""
    p, e, u = c.parallelism, c.perf, c.usage
    slrs = planner.slrs_used(c.plan)
    return [f"{c.spec.hardware.weights} {c.spec.hardware.packing} {p.pe}x{p.simd}", rate(e.ceiling_tokens_per_s),
            rate(e.nominal_ceiling_tokens_per_s), clocks(c), f"{e.decode_tokens_per_s:,.0f}",
            f"{c.conservative.decode_tokens_per_s:,.0f}", fraction(e), e.bound, f"{u['lut']:.0%}",
            f"{u['memory']:.0%}", "-" if slrs is None else f"{slrs} of {c.plan.board.slrs.count}"]


def batched(c) -> list:
    """The design explored over batches 1 to 16: decode of its batch of sequences together (prefill
    in blocks of its batch runs at the same rate)."""
    p, e = c.parallelism, c.perf
    slrs = planner.slrs_used(c.plan)
    return [c.batch, f"{c.spec.hardware.weights} {c.spec.hardware.packing} {p.pe}x{p.simd}",
            rate(e.ceiling_tokens_per_s), f"{e.decode_tokens_per_s:,.0f}", f"{c.conservative.decode_tokens_per_s:,.0f}",
            fraction(e), e.bound, f"{c.usage['lut']:.0%}", f"{c.usage['memory']:.0%}",
            "-" if slrs is None else f"{slrs} of {c.plan.board.slrs.count}"]


HEADER = ["model", "board", "design (batch 1)", "achievable ceiling tok/s", "nominal ceiling tok/s",
          "clock MHz (target / conservative)", "tok/s @target", "tok/s @conservative", "% of achievable ceiling",
          "bound", "LUT", "BRAM+URAM", "SLRs", "batch", "batched design", "achievable ceiling at batch",
          "batched tok/s @target", "@conservative", "% of achievable ceiling", "bound", "LUT", "BRAM+URAM", "SLRs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=None,
                        help="LUT and BRAM+URAM budget (default: each board's, 0.7 on the multi-SLR Alveo cards)")
    args = parser.parse_args()
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in MODELS.items():
            for board in BOARDS:
                s = model_spec(Path(tmp), board, shape)
                try:
                    single, _ = explore.explore(s, args.budget, searched=(1,))
                    best, _ = explore.explore(s, args.budget)
                except HlsgenError as exc:
                    reason = str(exc).split("the smallest at each placement: ")[-1]
                    ddr = next((r for r in reason.split("; ") if r.startswith("ddr:")), reason)
                    cells = [name, board, f"does not fit the budget ({ddr.split(' (allowed')[0]})"]
                    print("| " + " | ".join(cells + [""] * (len(HEADER) - len(cells))) + " |")
                    continue
                print("| " + " | ".join(map(str, [name, board, *one_sequence(single), *batched(best)])) + " |")


if __name__ == "__main__":
    main()
