"""What carries each headline figure: the model's batch-1 tok/s of three rows (2.7B on the U280,
370M on the U280, 1.3B on the KV260) as bandwidth efficiency, clock and LUT budget move.

- bandwidth efficiency: the achievable bandwidth set to 80, 85, 90, 95 and 100% of the nominal one
  (the design explored at the board's figure, re-estimated);
- clock: 150, 200, 250 and 300 MHz (the same design; on a Zynq the HP ports follow the PL clock);
- LUT budget: 50, 60, 70 and 80% of the LUTs (explore run again at each).

Model estimates (hlsgen/hardware/perf.py), not measurements.

    nice python bench/bench_model_sensitivity.py
"""

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hlsgen.errors import HlsgenError  # noqa: E402
from hlsgen.hardware import explore, perf  # noqa: E402
from hlsgen.model import spec  # noqa: E402

ROWS = {"2.7B u280": ((2560, 32, 6912), "u280"), "370M u280": ((1024, 24, 2816), "u280"),
        "1.3B kv260": ((2048, 24, 5632), "kv260")}
EFFICIENCIES = (0.80, 0.85, 0.90, 0.95, 1.00)
CLOCKS = (150, 200, 250, 300)
BUDGETS = (0.5, 0.6, 0.7, 0.8)


def model_spec(directory: Path, board: str, shape) -> spec.Spec:
    hidden, layers, intermediate = shape
    config = {"model": {"vocab": 32000, "hidden": hidden, "layers": layers, "intermediate_size": intermediate},
              "weights": {"random": {"seed": 0}}, "hardware": {"board": board},
              "project": {"name": "sensitivity_top", "output": "out"}}
    path = directory / f"{board}_{hidden}.yaml"
    path.write_text(yaml.safe_dump(config))
    return spec.load(path)


def at_efficiency(plan, efficiency: float) -> float:
    """Batch-1 tok/s with the weights' memory at `efficiency` of its nominal bandwidth."""
    if not plan.offchip:
        return perf.estimate(plan, 1).decode_tokens_per_s
    memory = plan.board.memory_of(plan.weights_place)
    changed = replace(memory, achievable_gbps=efficiency * memory.bandwidth_gbps)
    board = replace(plan.board, memory=tuple(changed if m is memory else m for m in plan.board.memory))
    return perf.estimate(replace(plan, board=board), 1).decode_tokens_per_s


def main() -> None:
    header = (["row", "design"] + [f"bw {e:.0%}" for e in EFFICIENCIES] + [f"{c} MHz" for c in CLOCKS]
              + [f"LUT {b:.0%}" for b in BUDGETS])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (shape, board) in ROWS.items():
            s = model_spec(Path(tmp), board, shape)
            chosen, _ = explore.explore(s, None, searched=(1,))
            p = chosen.parallelism
            design = f"{chosen.spec.hardware.weights} {chosen.spec.hardware.packing} {p.pe}x{p.simd} @{chosen.plan.clock_mhz:g}MHz"
            cells = [f"{at_efficiency(chosen.plan, e):,.0f}" for e in EFFICIENCIES]
            cells += [f"{explore.at_clock(chosen.plan, c, 1).decode_tokens_per_s:,.0f}" for c in CLOCKS]
            for budget in BUDGETS:
                try:
                    cells.append(f"{explore.explore(s, budget, searched=(1,))[0].tokens_per_s:,.0f}")
                except HlsgenError:
                    cells.append("no fit")
            print("| " + " | ".join([name, design, *cells]) + " |")


if __name__ == "__main__":
    main()
