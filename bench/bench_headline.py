"""The headline table: the explored design for MMfreeLM-370M / 1.3B / 2.7B shapes on each board.

Model estimates (hlsgen/perf.py, hlsgen/estimate.py), not measurements: no weights are loaded
and nothing is synthesised.  Prints a Markdown table; the README's copy comes from here.

    python bench/bench_headline.py [--budget 0.8]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hlsgen import explore, spec  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.8)
    args = parser.parse_args()
    print("| model | board | weights | packing | layer PE x SIMD | weight ports | decode tok/s | % of ceiling | bound | "
          "prefill tok/s | LUT | BRAM+URAM | DSP |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in MODELS.items():
            for board in BOARDS:
                try:
                    chosen, _ = explore.explore(model_spec(Path(tmp), board, shape), args.budget)
                except HlsgenError as exc:
                    reason = str(exc).split("the smallest at each placement: ")[-1]
                    ddr = next((r for r in reason.split("; ") if r.startswith("ddr:")), reason)
                    print(f"| {name} | {board} | does not fit the budget ({ddr.split(' (allowed')[0]}) | | | | | | | | | | |")
                    continue
                p, e, u = chosen.parallelism, chosen.perf, chosen.usage
                ceiling = "-" if e.fraction_of_ceiling is None else f"{e.fraction_of_ceiling:.0%}"
                ports = chosen.plan.stripes if chosen.plan.offchip else "-"
                print(f"| {name} | {board} | {chosen.spec.hardware.weights} | {chosen.spec.hardware.packing} | "
                      f"{p.pe}x{p.simd} | {ports} | "
                      f"{e.decode_tokens_per_s:,.0f} | {ceiling} | {e.bound} | {e.prefill_tokens_per_s:,.0f} | "
                      f"{u['lut']:.0%} | {u['memory']:.0%} | {u['dsp']:.0%} |")


if __name__ == "__main__":
    main()
