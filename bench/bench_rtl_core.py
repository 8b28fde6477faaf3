"""The whole accelerator in RTL (rtl/<top>_core.v): cycles per token, simulator speed, and the core's
Fmax and ECP5 resources after place and route.

Builds a config (default: the shipped examples/tiny_lm.yaml), runs the whole-model cosim on Verilator
(every stage, logit and next token checked against the golden model), then with --pnr synthesises
the core with its MVUs (Yosys synth_ecp5) and places and routes it out of context on the
LFE5U-85F (nextpnr-ecp5, --speed 6, a clock constraint of --freq MHz) through hlsgen/tools/ecp5.py.

    python bench/bench_rtl_core.py [--config examples/tiny_lm.yaml] [--max-tokens N] [--pnr] [--freq 50] [--out F]

P&R of the tiny model takes minutes to tens of minutes on a loaded 2-core machine: run it with nice.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hlsgen.model import spec as spec_mod
from hlsgen.project import build
from hlsgen.project.rtl_core import WHOLE_INDEX
from hlsgen.tools import cosim, ecp5

ROOT = Path(__file__).resolve().parent.parent


def pnr(project: Path, freq: float) -> dict:
    index = json.loads((project / WHOLE_INDEX).read_text())
    workdir = project / "rtl"                      # $readmemh finds the ROM images here
    start = time.perf_counter()
    netlist = ecp5.synthesize([project / s for s in index["sources"]], index["module"], workdir)
    synth_seconds = time.perf_counter() - start
    result = ecp5.place_and_route(netlist, freq, out_of_context=True)
    return {"fmax_mhz": result.fmax_mhz, "constraint_mhz": result.constraint_mhz, "met": result.met(),
            "used": result.used, "available": {k: result.available[k] for k in result.used},
            "synth_seconds": synth_seconds, "pnr_seconds": time.perf_counter() - start - synth_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "examples" / "tiny_lm.yaml"))
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--pnr", action="store_true", help="also Yosys synth_ecp5 + nextpnr-ecp5 of the core")
    parser.add_argument("--freq", type=float, default=50.0, help="the P&R clock constraint in MHz (default: 50)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "core"
        build.build(spec_mod.load(Path(args.config)), project)
        result = cosim.run_whole(project, cosim.CosimOptions(), args.max_tokens)
        r = result.report
        figures = {"config": args.config, "passed": result.passed, "tokens": r.get("tokens"),
                   "cycles_per_token": {"prefill": result.prefill_cycles, "decode": result.decode_cycles},
                   "mvu_cycles_per_token": json.loads((project / WHOLE_INDEX).read_text())["mvu_cycles"],
                   "verilator_build_seconds": result.build_seconds, "sim_seconds": r.get("wall_seconds"),
                   "sim_cycles_per_second": r["sim_cycles"] / r["wall_seconds"] if r.get("wall_seconds") else None,
                   "divergence": result.divergence}
        print(json.dumps(figures, indent=1))
        if args.pnr:
            figures["pnr"] = pnr(project, args.freq)
            print(json.dumps(figures["pnr"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
