"""`hlsgen report DIR`: the plan's performance and resource model of a generated project, with the
measured results found in it, as DIR/report/report.md, report.json and PNG plots.

The plan is re-derived from the config the manifest names, without weights (weights change only
the widths of the per-kind scales).  Plots use matplotlib, from the `report` extra: axes, labels
and a legend are what makes a plot readable, and hand-drawing text into pixels would not be.
"""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path

from hlsgen.tools import csim as csim_mod
from hlsgen.hardware import estimate, explore, memories, perf, planner
from hlsgen.tools import csynth, open_board_report
from hlsgen.model import spec as spec_mod
from hlsgen.errors import HlsgenError
from hlsgen.project import integrity
from hlsgen.project.render import CONFIG_COPY, project_spec

REPORT_DIR = "report"
RESOURCE_KEYS = ("lut", "ff", "dsp")


def load_plan(project: Path) -> tuple[spec_mod.Spec, planner.HardwarePlan, list[str]]:
    manifest = integrity.check(project)
    spec = project_spec(project)
    notes = [f"plan re-derived from the project's {CONFIG_COPY} without weights"]
    if spec.digest() != manifest["spec_digest"]:
        notes.append(f"{CONFIG_COPY} changed since this project was built: the figures describe it as it is now")
    return spec, planner.plan(spec), notes


# ----------------------------------------------------------------------------- the numbers
def kernel_resources(plan: planner.HardwarePlan) -> dict:
    """LUT/FF/DSP per kernel instance: one per BitLinear engine, the rest of the top, the interfaces."""
    rows = {f"bitlinear engine {e.name} ({', '.join(e.kinds)})":
            estimate.bitlinear_resources(e.config, plan.numerics, plan.batch) for e in plan.engines}
    rows["norms, MLGRU, GLU, residuals, argmax"] = estimate.elementwise_resources(plan)
    rows["rest of the top"] = dict(estimate.FIXED)
    rows["m_axi + s_axilite"] = estimate.add(estimate.S_AXILITE, *[estimate.M_AXI_PORT] * len(plan.memory_ports))
    return rows


def cycles_per_layer(plan: planner.HardwarePlan) -> dict:
    """{stage kind: [cycles in layer 0, 1, ...]} of a call of the plan's batch, plus the stages
    outside the layers under 'other'."""
    kinds: dict = {}
    other = 0.0
    for s in perf.call_stages(plan):
        if s.name.startswith("layer"):
            layer, kind = s.name.split(".", 1)
            kinds.setdefault(kind, [0.0] * plan.layers)[int(layer[5:])] += s.cycles
        else:
            other += s.cycles
    return {"per_layer": kinds, "outside_layers": other}


def roofline_points(spec: spec_mod.Spec, plan: planner.HardwarePlan) -> list[dict]:
    """The fastest design at each lane count of the layer BitLinears (this placement, packing,
    lm_head folding and batch): decode tok/s at the batch and of one sequence alone."""
    head = plan.bitlinear("lm_head")
    best: dict = {}
    for layer in explore.layer_foldings(spec.model):
        c = explore.candidate(spec, plan.weights_place, layer, (head.pe, head.simd))
        lanes = layer[0] * layer[1]
        if c is not None and c.tokens_per_s > best.get(lanes, {"tokens_per_s": 0})["tokens_per_s"]:
            best[lanes] = {"lanes": lanes, "tokens_per_s": c.tokens_per_s,
                           "single_sequence_tokens_per_s": perf.estimate(c.plan, 1).decode_tokens_per_s}
    return [best[k] for k in sorted(best)]


def relative_error(model: float, measured: float | None) -> float | None:
    return None if not measured else (model - measured) / measured


def calibration(project: Path, plan: planner.HardwarePlan) -> dict:
    """The model against what was measured: cosim MVU cycles and Yosys LUT/FF, per kind."""
    result = {}
    cosim_path = project / REPORT_DIR / "cosim.json"
    if cosim_path.is_file():
        kinds = _record(cosim_path, "cosim")["kinds"]
        # A call of measured_tokens tokens (older reports: one) against the MVU's model.
        model = {kind: perf.mvu_alone_cycles(plan.bitlinear(kind), k.get("measured_tokens") or 1) for kind, k in kinds.items()}
        result["cosim_cycles"] = {
            kind: {"measured": k["measured_cycles"], "model": model[kind],
                   "error": relative_error(model[kind], k["measured_cycles"]),
                   "passed": k["passed"]} for kind, k in kinds.items()}
    synth_path = project / REPORT_DIR / "synth.json"
    if synth_path.is_file():
        kinds = _record(synth_path, "synth --open")["kinds"]
        result["yosys"] = {
            kind: {key: {"measured": k["yosys"][key], "model": k["fit_estimate"][key],
                         "error": relative_error(k["fit_estimate"][key], k["yosys"][key])} for key in ("lut", "ff")}
            for kind, k in kinds.items()}
    return result


def _record(path: Path, command: str) -> dict:
    """A record another command wrote into report/, with the fields the report reads."""
    fix = f"delete it and rerun `hlsgen {command} {path.parent.parent}`"
    record = integrity.read_json(path, fix)
    fields = {"csim": ("passed", "tokens", "manifest_sha256", "error", "first_divergence")}.get(command, ("kinds",))
    missing = [f for f in fields if f not in record]
    if missing or ("kinds" in record and not isinstance(record["kinds"], dict)):
        raise HlsgenError(f"{path}: corrupt, no {', '.join(missing) or 'kinds mapping'} ({fix})")
    return record


def csim_record(project: Path) -> dict | None:
    """report/csim.json as `hlsgen csim` wrote it, marked stale when the project was rebuilt since."""
    path = project / csim_mod.REPORT
    if not path.is_file():
        return None
    record = _record(path, "csim")
    record["stale"] = record.get("manifest_sha256") != csim_mod.manifest_digest(project)
    return record


def csim_line(record: dict | None) -> str:
    if record is None:
        return "no report/csim.json (run `hlsgen csim DIR`)"
    if record["tokens"] is None:
        why = (record["error"] or record["first_divergence"] or "no output").strip().splitlines()[0]
        outcome = f"FAIL, the testbench did not finish: {why}"
    else:
        outcome = (f"{'PASS' if record['passed'] else 'FAIL'}: {record['values_compared']:,} values "
                   f"({record['tokens']} tokens x ({record['vocab']} logits + the next token)), "
                   f"{record['mismatches']} mismatches, max logit difference {record['max_logit_difference']}")
        if record["first_divergence"]:
            outcome += f"; first divergence: {record['first_divergence']}"
    saturations = ", ".join(f"{k} {v}" for k, v in record["saturations"].items()) or "none"
    compiler = record["compiler"]["version"] if record["compiler"] else "no compiler"
    stale = " (the project was rebuilt since: this result is of the earlier build)" if record["stale"] else ""
    return (f"{outcome}; saturations: {saturations}; {compiler}, ap_types from {record['ap_types']}; "
            f"{record['seconds']['wall']:.1f} s on {record['date']}{stale}")


def gather(project: Path) -> dict:
    spec, plan, notes = load_plan(project)
    if plan.board.flow == "ecp5":
        return open_board_report.gather(project, plan, notes)
    e, single = perf.estimate(plan), perf.estimate(plan, 1)
    used = estimate.design_resources(plan)
    return {
        "project": str(project), "board": plan.board.key, "clock_mhz": plan.clock_mhz, "weights": plan.weights_place,
        "folding": {b.kind: {"pe": b.pe, "simd": b.simd} for b in plan.bitlinears},
        "performance": {"batch": e.batch, "decode_tokens_per_s": e.decode_tokens_per_s,
                        "per_sequence_tokens_per_s": e.per_sequence_tokens_per_s,
                        "prefill_tokens_per_s": e.prefill_tokens_per_s, "cycles_per_call": e.cycles_per_call,
                        "cycles_per_token": e.cycles_per_token, "bound": e.bound,
                        "offchip_bytes_per_token": e.offchip_bytes_per_token,
                        "ceiling_tokens_per_s": e.ceiling_tokens_per_s, "fraction_of_ceiling": e.fraction_of_ceiling,
                        "nominal_ceiling_tokens_per_s": e.nominal_ceiling_tokens_per_s,
                        "single_sequence": {"decode_tokens_per_s": single.decode_tokens_per_s, "bound": single.bound,
                                            "ceiling_tokens_per_s": single.ceiling_tokens_per_s,
                                            "fraction_of_ceiling": single.fraction_of_ceiling,
                                            "nominal_ceiling_tokens_per_s": single.nominal_ceiling_tokens_per_s},
                        "conservative_clock_mhz": plan.board.conservative_clock_mhz,
                        "single_sequence_at_conservative_clock": perf.estimate(
                            replace(plan, clock_mhz=plan.board.conservative_clock_mhz), 1).decode_tokens_per_s},
        "resources": {"kernels": kernel_resources(plan), "total": used, "board": plan.board.resources,
                      "onchip_bits": sum(plan.onchip_bits().values()), "board_onchip_bits": plan.board.onchip_bits},
        "cycles": cycles_per_layer(plan),
        "roofline": roofline_points(spec, plan),
        "csim": csim_record(project),
        "memories": [m.as_dict() for m in memories.plan_memories(plan)],
        "csynth": csynth.read_record(project),
        "calibration": calibration(project, plan),
        "notes": notes,
    }


# ----------------------------------------------------------------------------- plots
def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise HlsgenError("report: the plots need matplotlib (allowed: pip install 'hlsgen[report]')") from None
    matplotlib.use("Agg")      # files only, no display
    import matplotlib.pyplot as plt
    return plt


def plot_resources(plt, data: dict, path: Path) -> None:
    """Each kernel's share of the board, stacked per resource."""
    board = data["resources"]["board"]
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = [0.0] * len(RESOURCE_KEYS)
    for name, r in data["resources"]["kernels"].items():
        shares = [100 * r[k] / board[k] for k in RESOURCE_KEYS]
        ax.bar([k.upper() for k in RESOURCE_KEYS], shares, bottom=bottom, label=name)
        bottom = [b + s for b, s in zip(bottom, shares)]
    ax.axhline(100 * planner.LOGIC_BUDGET, color="red", linestyle="--", label="fit limit")
    ax.set_ylabel(f"% of {data['board']}")
    ax.set_title("Estimated resources per kernel")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roofline(plt, data: dict, path: Path) -> None:
    """Decode tok/s against layer lanes, under the weight-bandwidth ceiling, at the design's batch
    (and of one sequence alone, when the batch is larger); this design marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    points, p = data["roofline"], data["performance"]
    lanes = [q["lanes"] for q in points]
    curves = [(p, "tokens_per_s", f"batch {p['batch']}", "C0")]
    if p["batch"] > 1:
        curves.append((p["single_sequence"], "single_sequence_tokens_per_s", "one sequence", "C1"))
    for figures, key, label, color in curves:
        ax.plot(lanes, [q[key] for q in points], "o-", color=color, label=f"best folding per lane count, {label}")
        if figures["ceiling_tokens_per_s"] is not None:
            ax.axhline(figures["ceiling_tokens_per_s"], color=color, linestyle="--",
                       label=f"{data['weights']} bandwidth ceiling, {label}")
    here = data["folding"]["i"]
    ax.plot([here["pe"] * here["simd"]], [p["decode_tokens_per_s"]], "k*", markersize=14,
            label=f"this design (batch {p['batch']})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("PE x SIMD of the layer BitLinears")
    ax.set_ylabel("decode tokens/s (all sequences)")
    ax.set_title(f"Roofline on {data['board']} ({data['weights']} weights)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_cycles(plt, data: dict, path: Path) -> None:
    """Where a token's cycles go, per layer, stacked by stage kind."""
    per_layer = data["cycles"]["per_layer"]
    fig, ax = plt.subplots(figsize=(8, 4))
    layers = range(len(next(iter(per_layer.values()))))
    bottom = [0.0] * len(layers)
    for kind, cycles in per_layer.items():
        ax.bar(list(layers), cycles, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, cycles)]
    ax.set_xlabel("layer")
    ax.set_ylabel(f"cycles per call of {data['performance']['batch']} tokens")
    ax.set_title(f"Cycles per layer (outside the layers: {data['cycles']['outside_layers']:,.0f})")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


PLOTS = {"resources.png": plot_resources, "roofline.png": plot_roofline, "cycles.png": plot_cycles}


# ----------------------------------------------------------------------------- markdown
def percent(value) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def ceiling(figures: dict) -> str:
    return ("none (weights on chip)" if figures["ceiling_tokens_per_s"] is None else
            f"{figures['ceiling_tokens_per_s']:,.1f} tok/s at the achievable bandwidth (this design at "
            f"{figures['fraction_of_ceiling']:.0%}), {figures['nominal_ceiling_tokens_per_s']:,.1f} at the nominal one")


def markdown(data: dict) -> str:
    p, r, one = data["performance"], data["resources"], data["performance"]["single_sequence"]
    B = p["batch"]
    lines = [f"# hlsgen report: {data['project']}", "",
             f"Board {data['board']} at {data['clock_mhz']:g} MHz, weights {data['weights']}, batch {B} "
             f"(tokens per pass over the weights).", "",
             "## Performance (analytic model)", "",
             f"- decode, {B} sequences: {p['decode_tokens_per_s']:,.1f} tok/s together, "
             f"{p['per_sequence_tokens_per_s']:,.1f} tok/s each ({p['cycles_per_call']:,.0f} cycles per call of "
             f"{B} tokens, {p['bound']}-bound)",
             f"- prefill: {p['prefill_tokens_per_s']:,.1f} tok/s (a prompt in blocks of {B} tokens)",
             f"- decode, one sequence alone: {one['decode_tokens_per_s']:,.1f} tok/s ({one['bound']}-bound); "
             f"{p['single_sequence_at_conservative_clock']:,.1f} tok/s at the board's conservative "
             f"{p['conservative_clock_mhz']:g} MHz",
             f"- off-chip bytes per token at batch {B}: {p['offchip_bytes_per_token']:,.0f}",
             f"- bandwidth ceiling at batch {B}: {ceiling(p)}"]
    if B > 1:
        lines.append(f"- bandwidth ceiling of one sequence alone: {ceiling(one)}")
    lines += ["", "![roofline](roofline.png)", "",
             "## Resources (estimate.py, first order)", "", "| kernel | LUT | FF | DSP |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {v['lut']:,} | {v['ff']:,} | {v['dsp']:,} |" for name, v in r["kernels"].items()]
    lines += [f"| **total** | {r['total']['lut']:,} | {r['total']['ff']:,} | {r['total']['dsp']:,} |",
              f"| board | {r['board']['lut']:,} | {r['board']['ff']:,} | {r['board']['dsp']:,} |", "",
              f"On-chip memory: {r['onchip_bits'] / 8e6:.2f} MB of {r['board_onchip_bits'] / 8e6:.2f} MB BRAM+URAM.", "",
              "![resources](resources.png)", "", "## Cycles per layer", "", "![cycles](cycles.png)", "",
              "## Measured", "", f"- csim: {csim_line(data['csim'])}", ""]
    lines += calibration_lines(data["calibration"])
    lines += ["", "## Port budget (hardware/memories.py)", ""] + memory_table(data["memories"])
    lines += ["", "## C synthesis", ""] + csynth.markdown(data["csynth"])
    lines += ["", "## Notes", ""] + [f"- {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"


CALIBRATION_TARGET = 0.10   # issue 7: the model within 10% of what was measured


def memory_table(entries: list[dict]) -> list[str]:
    """Every on-chip array: storage, banks, copies, the most accesses a bank takes per cycle in any
    pipelined loop, and its ports."""
    lines = ["| array | storage | banks | copies | max accesses / bank / cycle | ports |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {m['name']} | {m['storage']} | {m['banks']} | {m['copies']} | {m['max_accesses_per_bank']} | "
              f"{m['ports']} |" for m in entries]
    return lines


def calibration_lines(cal: dict) -> list[str]:
    lines = [f"Errors are (model - measured) / measured; the target is within {CALIBRATION_TARGET:.0%}.", ""]
    if "cosim_cycles" not in cal:
        lines.append("- cosim: no report/cosim.json (run `hlsgen cosim DIR`)")
    else:
        lines += ["- cosim, MVU cycles per matrix (model: rows/PE x cols/SIMD):", "",
                  "| kind | passed | measured | model | error |", "|---|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['passed']} | {v['measured']} | {v['model']} | {percent(v['error'])} |"
                  for k, v in cal["cosim_cycles"].items()]
        lines.append("")
    if "yosys" not in cal:
        lines.append("- synth: no report/synth.json (run `hlsgen synth --open DIR`)")
    else:
        lines += ["- Yosys (synth_xilinx) against estimate.mvu_resources, per MVU:", "",
                  "| kind | LUT | model | error | FF | model | error |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['lut']['measured']} | {v['lut']['model']} | {percent(v['lut']['error'])} | "
                  f"{v['ff']['measured']} | {v['ff']['model']} | {percent(v['ff']['error'])} |" for k, v in cal["yosys"].items()]
    return lines


# ----------------------------------------------------------------------------- the command
def write(project: Path) -> Path:
    project = Path(project)
    data = gather(project)
    out = project / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    if data.get("flow") == "ecp5":      # measured: place and route and the whole-model cosim
        (out / "report.json").write_text(json.dumps(data, indent=1) + "\n")
        (out / "report.md").write_text(open_board_report.markdown(data))
        return out
    plt = pyplot()
    for name, plot in PLOTS.items():
        plot(plt, data, out / name)
    (out / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "report.md").write_text(markdown(data))
    return out


def csynth_arguments(parser):
    parser.add_argument("project", type=Path, help="a generated project directory")


def csynth_run(args) -> int:
    """`hlsgen csynth DIR`: Vitis HLS C synthesis, its report next to the plan (tools/csynth.py)."""
    _, plan, _ = load_plan(Path(args.project))
    record = csynth.run(args.project, estimate.design_resources(plan))
    print("\n".join(csynth.markdown(record)))
    return 0


def arguments(parser):
    parser.add_argument("project", type=Path, help="a generated project directory")


def run(args) -> int:
    out = write(args.project)
    if (out / "report.json").is_file() and json.loads((out / "report.json").read_text()).get("flow") == "ecp5":
        print((out / "report.md").read_text())
        print(f"wrote {out}/report.md, report.json")
        return 0
    print("\n".join(memory_table(json.loads((out / "report.json").read_text())["memories"])))
    print(f"wrote {out}/report.md, report.json, " + ", ".join(PLOTS))
    return 0
