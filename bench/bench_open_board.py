"""The whole accelerator on the ULX3S 85F, measured end to end with the open tools: for the shipped
tiny model (examples/tiny_lm_ulx3s.yaml) and a random model of two layers and H=64, `hlsgen build`,
`hlsgen cosim --whole` (bit-exact, cycles per token), the generated driver's self-test over the
serial link against the simulated board top and core (hlsgen/tools/serial_sim.py), `hlsgen
bitstream` (Yosys, nextpnr-ecp5, ecppack: the met clock, the resources) and `hlsgen report` (tok/s
= clock / cycles per token, the serial link's limit, the analytic model against the measured cycles).

    nice python bench/bench_open_board.py [--only tiny_lm|random] [--out DIR] [--skip-bitstream] [--skip-serial]
                                          [--clock MHZ [--allow-slow]] [--seed N]

--clock asks both designs for that clock instead of their configs' (tiny_lm: the example's; random:
30 MHz); --allow-slow lets `hlsgen bitstream` lower a missed clock to the fastest one met, and
--seed passes nextpnr's placer seed to it.

Place and route takes minutes per design: this is a bench, not a test (tests/test_open_board.py
covers the flow's pieces).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from hlsgen.cli import main as hlsgen
REPO_ROOT = Path(__file__).resolve().parents[1]      # the checkout: the examples are not installed
from hlsgen.tools import serial_sim

RANDOM = {"model": {"vocab": 256, "hidden": 64, "layers": 2, "intermediate_size": 128},
          "weights": {"random": {"seed": 0}},
          "hardware": {"board": "ulx3s_85f", "clock_mhz": 30, "weights": "onchip", "parallelism": {"pe": 4, "simd": 8, "lm_head_pe": 4, "lm_head_simd": 8}},
          "project": {"name": "random_top"}}


def configs(out: Path, clock_mhz: float | None) -> dict:
    random = dict(RANDOM, project=dict(RANDOM["project"], output=str(out / "random_top")))
    shipped = yaml.safe_load((REPO_ROOT / "examples" / "tiny_lm_ulx3s.yaml").read_text())
    shipped["model"] = str(REPO_ROOT / "examples" / shipped["model"])
    shipped["weights"]["path"] = str(REPO_ROOT / "examples" / shipped["weights"]["path"])
    shipped["project"]["output"] = str(out / "tiny_lm_top")
    if clock_mhz:
        for config in (random, shipped):
            config["hardware"] = dict(config["hardware"], clock_mhz=clock_mhz)
    made = {}
    for name, config, project in (("tiny_lm", shipped, "tiny_lm_top"), ("random", random, "random_top")):
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        made[name] = (path, out / project)
    return made


def step(*argv) -> float:
    start = time.perf_counter()
    code = hlsgen([str(a) for a in argv])
    if code != 0:
        raise SystemExit(f"`hlsgen {' '.join(map(str, argv))}` exited with {code}")
    return time.perf_counter() - start


def measure(config: Path, project: Path, bitstream: bool, serial: bool, bitstream_flags: list[str]) -> dict:
    seconds = {"build": step("build", config), "cosim_whole": step("cosim", project, "--whole")}
    self_test = None
    if serial:
        start = time.perf_counter()
        result = serial_sim.run(project, timeout_s=600, wall_limit_s=7200)
        seconds["serial_self_test"] = time.perf_counter() - start
        self_test = {"passed": result.passed, "output": result.report["output"].strip().splitlines()[-1],
                     "simulated_ms": result.report["simulated_ms"]}
    if bitstream:
        seconds["bitstream"] = step("bitstream", project, *bitstream_flags)
    step("report", project)
    report = json.loads((project / "report" / "report.json").read_text())
    return dict(report, seconds=seconds, serial_self_test=self_test)


def row(name: str, r: dict) -> str:
    m, res = r["measured"], r["resources"] or {"used": {}}
    used = " / ".join(f"{res['used'][k]:,}" if k in res["used"] else "-" for k in ("lut", "ff", "dp16kd", "mult18"))
    fmax = ", ".join(f"{v:g}" for v in (r["fmax_mhz"] or {}).values()) or "-"

    def tok(v):
        return "-" if v is None else f"{v:,.0f}"

    error = r["model"]["error"]
    model = f"{r['model']['cycles_per_token']:,} ({'-' if error is None else f'{100 * error:+.1f}%'})"
    return (f"| {name} | {r['clock_mhz'] or '-'} | {fmax} | {used} | {tok(m['prefill']['cycles_per_token'])} / "
            f"{tok(m['decode']['cycles_per_token'])} | {tok(m['prefill']['tokens_per_s'])} / "
            f"{tok(m['decode']['tokens_per_s'])} | {model} | {tok(r['link']['tokens_per_s']['generate'])} | "
            f"{r['bound'] or '-'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("tiny_lm", "random"))
    parser.add_argument("--out", type=Path, help="where the projects go (default: a temporary directory)")
    parser.add_argument("--skip-bitstream", action="store_true", help="no place and route")
    parser.add_argument("--skip-serial", action="store_true", help="no driver self-test over the simulated link")
    parser.add_argument("--clock", type=float, help="the clock (MHz) to ask both designs for")
    parser.add_argument("--allow-slow", action="store_true", help="build a missed clock at the fastest one met")
    parser.add_argument("--seed", type=int, help="nextpnr's placer seed (hlsgen bitstream --seed)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_open_board_"))
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, (config, project) in configs(out, args.clock).items():
        if args.only and name != args.only:
            continue
        flags = (["--allow-slow"] if args.allow_slow else []) + (["--seed", str(args.seed)] if args.seed is not None else [])
        results[name] = measure(config, project, not args.skip_bitstream, not args.skip_serial, flags)
    print("| design | clock MHz | Fmax MHz | LUT4 / FF / DP16KD / MULT18 | cycles/token prefill / decode "
          "| tok/s prefill / decode | model cycles (error) | link tok/s | bound |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        print(row(name, r))
    for name, r in results.items():
        print(f"{name}: serial self-test {r['serial_self_test']}; seconds {r['seconds']}")
    (out / "bench_open_board.json").write_text(json.dumps(results, indent=1))
    print(f"projects and results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
