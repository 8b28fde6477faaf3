"""`hlsgen explore`: search foldings, quantiser widths, weight placements, trit packings and batches
for the fastest design within a budget.

Candidates are specs built in memory (dataclasses.replace on the loaded one), planned without
weights by the planner itself (so its fit checks decide feasibility) and scored by perf.estimate.
The objective is decode tok/s of all the batch's sequences together (perf.Performance).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hlsgen.hardware import estimate
from hlsgen.hardware import perf
from hlsgen.hardware import planner
from hlsgen.hardware.boards import Board
from hlsgen.errors import HlsgenError
from hlsgen.model.spec import MAX_BATCH, MAX_LANES, PACKINGS, Parallelism, Spec, stripes_for


def batches(pin: int | None = None, maximum: int | None = None) -> tuple:
    """The batches searched: `pin` alone, or 1, 2, 4, ... up to `maximum` (default MAX_BATCH) and
    `maximum` itself."""
    if pin is not None and maximum is not None:
        raise HlsgenError("--batch and --max-batch: give one of them (allowed: --batch B pins the batch, "
                          "--max-batch M searches 1, 2, 4, ... M)")
    for option, value in (("--batch", pin), ("--max-batch", maximum)):
        if value is not None and not 1 <= value <= MAX_BATCH:
            raise HlsgenError(f"{option}: {value} is out of range (allowed: 1 to {MAX_BATCH})")
    if pin is not None:
        return (pin,)
    top = MAX_BATCH if maximum is None else maximum
    return tuple(sorted({1 << k for k in range(top.bit_length())} | {top}))


BATCHES = batches()


@dataclass(frozen=True)
class Candidate:
    spec: Spec
    plan: planner.HardwarePlan
    perf: perf.Performance
    usage: dict            # share of the board: lut, ff, dsp, and memory (BRAM+URAM bits pooled)

    @property
    def tokens_per_s(self) -> float:
        return self.perf.decode_tokens_per_s

    @property
    def parallelism(self) -> Parallelism:
        return self.spec.hardware.parallelism

    @property
    def batch(self) -> int:
        return self.spec.hardware.batch

    @property
    def conservative(self) -> perf.Performance:
        """The same design at the board's conservative clock (boards/*.yaml conservative_clock_mhz)."""
        return at_clock(self.plan, self.plan.board.conservative_clock_mhz)


def at_clock(plan: planner.HardwarePlan, clock_mhz: float, tokens: int | None = None) -> perf.Performance:
    """The design's performance at another kernel clock (on a Zynq the HP ports follow the PL clock)."""
    return perf.estimate(replace(plan, clock_mhz=clock_mhz), tokens)


def lut_budget(board: Board, budget: float | None) -> float:
    """--budget, or the board's default (planner.logic_budget: 70% on the multi-SLR Alveo cards)."""
    return planner.logic_budget(board) if budget is None else budget


def powers_of_two_dividing(*widths: int) -> list[int]:
    """1, 2, 4, ... up to the widest fold that divide every width."""
    return [v for v in (1 << k for k in range(MAX_LANES.bit_length())) if all(w % v == 0 for w in widths)]


def foldings(pe_widths, simd_widths) -> list[tuple[int, int]]:
    """(pe, simd) pairs the spec rules allow: powers of two dividing the shapes, pe*simd <= MAX_LANES."""
    return [(pe, simd) for pe in powers_of_two_dividing(*pe_widths) for simd in powers_of_two_dividing(*simd_widths)
            if pe * simd <= MAX_LANES]


QUANTISER_STEPS = 4    # quantiser widths searched: SIMD, SIMD / 2, SIMD / 4, SIMD / 8


def quantiser_widths(simd: int) -> list[int]:
    """The quantiser widths searched on an engine of `simd` columns, widest first, not below 1."""
    return sorted({max(simd >> k, 1) for k in range(QUANTISER_STEPS)}, reverse=True)


def layer_foldings(m) -> list[tuple[int, int]]:
    """pe divides every layer projection's rows (D, H, 2I) and the GLU's width I (the GLU runs pe
    lanes over each half of the fused gate/up output), simd every one's columns (H, D, I)."""
    return foldings((m.inner, m.hidden, m.intermediate, 2 * m.intermediate), (m.hidden, m.inner, m.intermediate))


def head_foldings(m) -> list[tuple[int, int]]:
    return foldings((m.vocab,), (m.hidden,))


def resources(plan: planner.HardwarePlan) -> dict:
    """LUT, FF, DSP and on-chip memory bits (BRAM and URAM pooled: the planner does not decide
    which holds what)."""
    return {**estimate.design_resources(plan), "memory": sum(plan.onchip_bits().values())}


def usage(plan: planner.HardwarePlan) -> dict:
    """Share of the board each budgeted resource takes."""
    have = {**plan.board.resources, "memory": plan.board.onchip_bits}
    return {k: v / have[k] for k, v in resources(plan).items()}


def within(shares: dict, budget: float) -> bool:
    return shares["lut"] <= budget and shares["memory"] <= budget


def with_design(spec: Spec, place: str, layer: tuple, head: tuple, packing: str | None = None,
                batch: int | None = None) -> Spec:
    """The spec with this design: `layer` and `head` are (pe, simd) or (pe, simd, quantiser simd);
    `packing` and `batch` None keep the spec's."""
    quantiser = lambda folding: folding[2] if len(folding) > 2 else None   # noqa: E731
    p = Parallelism(pe=layer[0], simd=layer[1], lm_head_pe=head[0], lm_head_simd=head[1],
                    quantiser_simd=quantiser(layer), lm_head_quantiser_simd=quantiser(head))
    return replace(spec, hardware=replace(spec.hardware, weights=place, parallelism=p,
                                          packing=packing or spec.hardware.packing,
                                          batch=batch or spec.hardware.batch))


def candidate(spec: Spec, place: str, layer: tuple, head: tuple, packing: str | None = None,
              batch: int | None = None) -> Candidate | None:
    """The planned and estimated design, or None when the planner refuses it."""
    s = with_design(spec, place, layer, head, packing, batch)
    try:
        plan = planner.plan(s)
    except HlsgenError:
        return None
    return Candidate(s, plan, perf.estimate(plan), usage(plan))


def narrowest(folding: tuple) -> tuple:
    """The folding with the narrowest quantiser searched: the likeliest to fit the logic."""
    return (*folding[:2], quantiser_widths(folding[1])[-1])


def planned(spec: Spec, place: str, layer: tuple, head: tuple, packing: str, batch: int,
            side: str) -> Candidate | None:
    """The design with full-width quantisers, or (when the planner refuses that, e.g. for its logic)
    with the narrowest on `side` (layer, head or both), the one being varied; quantiser_variants
    sketches the other widths."""
    narrowed = (narrowest(layer) if side != "head" else layer, narrowest(head) if side != "layer" else head)
    return candidate(spec, place, layer, head, packing, batch) or candidate(spec, place, *narrowed, packing, batch)


def places(board: Board) -> list[str]:
    return ["onchip", *sorted(board.memory_kinds)]


@dataclass(frozen=True)
class Sketch:
    """A design scored by superposition (see combine), before it is planned for real."""
    place: str
    layer: tuple
    head: tuple
    packing: str
    batch: int
    cycles: float          # per call of `batch` tokens
    resources: dict        # resources(): lut, ff, dsp, memory bits

    @property
    def speed(self) -> float:
        """Tokens per cycle: the pruning's stand-in for tok/s (one clock per board and placement)."""
        return self.batch / self.cycles


def engine_folding(c: Candidate, kind: str) -> tuple:
    """(pe, simd, quantiser simd) of the engine that runs `kind` in the planned design `c`."""
    e = c.plan.engine_of(kind).config
    return (e.pe, e.simd, e.qsimd)


def sketch(c: Candidate, batch: int) -> tuple[Sketch, perf.Performance]:
    """The planned design `c` at another batch, without planning it again: the batch changes only
    the calls' cycles, the per-token registers and the per-token on-chip buffers, all of which
    the plan's own estimates follow (the planner's verdict at that batch comes with the real plan)."""
    hw, e = c.spec.hardware, perf.estimate(c.plan, batch)
    return (Sketch(hw.weights, engine_folding(c, "i"), engine_folding(c, "lm_head"), hw.packing, batch,
                   e.cycles_per_call, resources(replace(c.plan, batch=batch))), e)


def narrowings(c: Candidate, side: str) -> list[tuple]:
    """(width, its engine, its BitLinears, its quantiser's resources) of one side (`layer`, `head`,
    or `both` on one shared engine) of the planned design `c` at each searched quantiser width,
    shared by every batch."""
    kinds = [b for b in c.plan.bitlinears if side == "both" or (b.kind == "lm_head") == (side == "head")]
    engine = c.plan.engine_of(kinds[0].kind).config
    out = []
    for q in quantiser_widths(engine.simd):
        narrowed = replace(engine, quantiser_simd=q)
        out.append((q, narrowed, [replace(b, quantiser_simd=q) for b in kinds],
                    estimate.quantiser_resources(narrowed, c.plan.numerics)))
    return out


def quantiser_variants(s: Sketch, e: perf.Performance, side: str, widths: list[tuple]) -> list[Sketch]:
    """`s`, a planned design at `e.batch`, at each quantiser width on one side (narrowings),
    without planning again: the width changes that engine's quantiser and its BitLinears' compute
    cycles.  Cycles are a first guess: what the compute adds fills first the time the call waited
    for weights, and what it saves takes the call at most down to the transfer.  Only the variants
    no narrower one matches in speed are kept."""
    compute = {q: sum(b.matrices * perf.bitlinear_compute_cycles(b, engine, e.batch) for b in kinds)
               for q, engine, kinds, _ in widths}
    planned_q = (s.head if side == "head" else s.layer)[2]
    base_quantiser = next(r for q, _, _, r in widths if q == planned_q)
    waited = e.cycles_per_call > e.compute_cycles
    variants = []
    for q, engine, _, quantiser in widths:
        delta = compute[q] - compute[planned_q]
        cycles = (max(e.compute_cycles + delta, e.cycles_per_call + min(delta, 0), e.memory_cycles) if waited
                  else e.compute_cycles + delta)
        folding = (engine.pe, engine.simd, q)
        variants.append(replace(s, layer=s.layer if side == "head" else folding,
                                head=s.head if side == "layer" else folding, cycles=cycles,
                                resources={k: v + quantiser.get(k, 0) - base_quantiser.get(k, 0)
                                           for k, v in s.resources.items()}))
    return pareto(variants, key=lambda v: (v.resources["lut"], -v.speed), speed=lambda v: v.speed)


def combine(base: Sketch, layer: Sketch, head: Sketch) -> Sketch:
    """Resources are sums over the engines and stages (estimate.design_resources,
    HardwarePlan.onchip_bits), and the layer folding touches only the layers' terms, the head
    folding only the lm_head's: so (L, H) = (L, h0) + (l0, H) - (l0, h0) for a reference (l0, h0),
    all at one batch.  Cycles are combined the same way, which is only a first guess
    (perf.run_phases overlaps transfer and compute across the call): it prunes, and every design
    on the resulting front is planned and estimated for real."""
    merge = lambda key: layer.resources[key] + head.resources[key] - base.resources[key]  # noqa: E731
    return Sketch(base.place, layer.layer, head.head, base.packing, base.batch,
                  layer.cycles + head.cycles - base.cycles, {k: merge(k) for k in base.resources})


RESOURCES = ("lut", "ff", "dsp", "memory")


def limits(board: Board, budget: float) -> np.ndarray:
    """The most of each of RESOURCES a design may take: the --budget on LUTs and on-chip memory,
    and the planner's own logic limit on LUT/FF/DSP."""
    have, logic = board.resources, planner.LOGIC_BUDGET
    return np.array([min(budget, planner.logic_budget(board)) * have["lut"], logic * have["ff"], logic * have["dsp"],
                     budget * board.onchip_bits])


def promising(base: Sketch, layers: list[Sketch], heads: list[Sketch], most: np.ndarray) -> list[Sketch]:
    """combine() of every layer x head pair of two foldings (one folding would share an engine:
    sketches plans those), on arrays: only the pairs within `most` that are on this group's rough
    Pareto front or among its RECHECKED fastest become Sketches (the union over the groups holds
    the whole rough front and the fastest: all that search uses)."""
    if not layers or not heads:
        return []
    table = lambda group: np.array([[g.resources[k] for k in RESOURCES] + [g.cycles] for g in group])  # noqa: E731
    reference = np.array([base.resources[k] for k in RESOURCES] + [base.cycles])
    total = (table(layers)[:, None, :] + table(heads)[None, :, :] - reference).reshape(-1, len(RESOURCES) + 1)
    apart = np.array([[lo.layer[:2] != ho.head[:2] for ho in heads] for lo in layers]).reshape(-1)
    fit = np.flatnonzero(np.all(total[:, :len(RESOURCES)] <= most, axis=1) & apart)
    lut, speed = total[fit, 0], base.batch / total[fit, -1]
    order = np.lexsort((-speed, lut))                      # as pareto(): cheapest, then fastest
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], speed[order][:-1]]))
    chosen = set(order[speed[order] > best_before]) | set(np.argsort(-speed, kind="stable")[:RECHECKED])
    pairs = (divmod(int(fit[i]), len(heads)) for i in sorted(chosen))
    return [combine(base, layers[lo], heads[ho]) for lo, ho in pairs]


def without_engines(s: Sketch, c: Candidate, side: str) -> Sketch:
    """`s` (of the planned design `c`) less the engines that run only `side`'s kinds (layer, head
    or both) there."""
    runs = lambda kind: side == "both" or (kind == "lm_head") == (side == "head")   # noqa: E731
    gone = [estimate.bitlinear_resources(e.config, c.plan.numerics, s.batch)
            for e in c.plan.engines if all(runs(k) for k in e.kinds)]
    return replace(s, resources={k: v - sum(g.get(k, 0) for g in gone) for k, v in s.resources.items()})


def sketched(group: list[Candidate], side: str, batch: int, widths: dict, less: str | None = None) -> list[Sketch]:
    """The planned designs `group` at `batch` and every quantiser width on `side` (widths: their
    narrowings by id); `less`: the side whose own engines come off (without_engines)."""
    return [without_engines(v, c, less) if less else v
            for c in group for v in quantiser_variants(*sketch(c, batch), side, widths[id(c)])]


def sketches(spec: Spec, place: str, layer_options, head_options, packing: str, searched: tuple,
             most: np.ndarray) -> list[Sketch]:
    """The promising designs within `most` (limits) at this placement, over every folding and
    quantiser width and every searched batch, from one plan per layer folding and one per head
    folding (a 2.7B model has tens of thousands of combinations; planning each would take
    minutes), each planned at the smallest batch and scored at the others (sketch).  Layer and
    head must stream the same number of weight stripes, so the superposition runs per stripe
    count, around a reference pair of that count, each side's sketch less the other side's engine
    and the reference less both (a folding shares one engine when it runs both sides, so the sum
    counts every engine once).  Designs whose layers and lm_head share a folding, and so an engine,
    get a plan of their own."""
    found, least = [], min(searched)
    stripes = lambda folding: stripes_for(folding[0] * folding[1])         # noqa: E731
    # The reference pair: the first the planner accepts, the most balanced foldings first
    # (lopsided ones are the likeliest to exceed a packet width).
    balanced = lambda folding: max(folding)                                # noqa: E731
    for count in sorted({stripes(o) for o in layer_options}):
        layers = [o for o in layer_options if stripes(o) == count]
        heads = [o for o in head_options if stripes(o) == count]
        if not heads:
            continue
        shared = [c for o in layers if o in heads and (c := planned(spec, place, o, o, packing, least, "both"))]
        pairs = ((lo, ho) for lo in sorted(layers, key=balanced) for ho in sorted(heads, key=balanced))
        reference, base = next(((pair, c) for pair in pairs if (c := candidate(spec, place, *pair, packing, least))),
                               (None, None))
        planned_layers, planned_heads = [], []
        if base:
            layer_ref, head_ref = reference
            planned_layers = [c for o in layers if (c := planned(spec, place, o, head_ref, packing, least, "layer"))]
            planned_heads = [c for o in heads if (c := planned(spec, place, layer_ref, o, packing, least, "head"))]
        widths = {id(c): narrowings(c, side) for side, group in (("layer", planned_layers), ("head", planned_heads),
                                                                  ("both", shared)) for c in group}
        for batch in searched:      # each sketched once: combine only adds them up
            if base:
                found += promising(without_engines(sketch(base, batch)[0], base, "both"),
                                   sketched(planned_layers, "layer", batch, widths, less="head"),
                                   sketched(planned_heads, "head", batch, widths, less="layer"), most)
            found += [v for v in sketched(shared, "both", batch, widths)
                      if all(v.resources[k] <= m for k, m in zip(RESOURCES, most))]
    return found


RECHECKED = 8   # sketches beyond the rough Pareto front planned for real at each placement


def search(spec: Spec, budget: float | None, searched: tuple = BATCHES, tick=None) -> list[Candidate]:
    """The Pareto set of feasible designs within the budget, each planned and estimated for real.
    tick(i, n): called as each of the n (placement, packing) pairs is done (progress)."""
    layer_options, head_options = layer_foldings(spec.model), head_foldings(spec.model)
    board = Board.load(spec.hardware.board)
    if board.flow == "ecp5":
        raise HlsgenError(f"explore: {board.key} is an ECP5 board, whose RTL core the HLS resource model does not "
                          f"describe (allowed: an AMD board; on {board.key} set hardware.parallelism and measure "
                          f"with `hlsgen bitstream` and `hlsgen report`)")
    budget = lut_budget(board, budget)
    found = []
    # Every packing at every placement: on chip, 5trit only shrinks the ROMs (and adds decoders).
    pairs = list(itertools.product(places(board), PACKINGS))
    for done, (place, packing) in enumerate(pairs, 1):
        rough = sketches(spec, place, layer_options, head_options, packing, searched, limits(board, budget))
        front = pareto(rough, key=lambda s: (s.resources["lut"], -s.speed), speed=lambda s: s.speed)
        # The superposed cycles are a first guess: the fastest few off the front are planned too.
        fastest = sorted(rough, key=lambda s: -s.speed)[:RECHECKED]
        designs = dict.fromkeys((s.place, s.layer, s.head, s.packing, s.batch) for s in front + fastest)
        real = (candidate(spec, *design) for design in designs)
        found += [c for c in real if c is not None and within(c.usage, budget)]
        if tick:
            tick(done, len(pairs))
    return pareto(found, key=lambda c: (c.usage["lut"], -c.tokens_per_s), speed=lambda c: c.tokens_per_s)


def pareto(items: list, key, speed) -> list:
    """Items no other beats on both speed and LUTs, cheapest first (key sorts by LUTs, then fastest)."""
    front, best = [], None
    for item in sorted(items, key=key):
        if best is None or speed(item) > best:
            front.append(item)
            best = speed(item)
    return front


NEAR_BEST = 0.99   # designs within 1% of the fastest count as equally fast; the cheapest of them wins


def choose(front: list[Candidate]) -> Candidate:
    fastest = front[-1].tokens_per_s
    return next(c for c in front if c.tokens_per_s >= NEAR_BEST * fastest)


SHOWN_STEP = 1.1  # the printed table skips designs less than 10% faster than the row above


def thinned(front: list[Candidate], chosen: Candidate) -> list[Candidate]:
    """The Pareto set in steps of at least 10% tok/s (and the chosen design), to fit a screen."""
    shown = []
    for c in front:
        if c is chosen or not shown or c.tokens_per_s >= SHOWN_STEP * shown[-1].tokens_per_s:
            shown.append(c)
    return shown


def smallest_refusals(spec: Spec, batch: int) -> str:
    """Why the planner refuses (or the budget excludes) the 1x1 folding at each placement."""
    reasons = []
    for place in places(Board.load(spec.hardware.board)):
        try:
            plan = planner.plan(with_design(spec, place, (1, 1), (1, 1), batch=batch))
            reasons.append(f"{place}: LUT {usage(plan)['lut']:.0%}, BRAM+URAM {usage(plan)['memory']:.0%}")
        except HlsgenError as exc:
            reasons.append(f"{place}: {exc}")
    return "; ".join(reasons)


def explore(spec: Spec, budget: float | None = None, searched: tuple = BATCHES, tick=None) -> tuple[Candidate, list[Candidate]]:
    """The chosen design (the cheapest within 1% of the fastest) and the Pareto set, over the
    `searched` batches (batches()); budget None: the board's LUT budget."""
    budget = lut_budget(Board.load(spec.hardware.board), budget)
    if not 0 < budget <= 1:
        raise HlsgenError(f"--budget: {budget} is out of range (allowed: 0 < budget <= 1)")
    front = search(spec, budget, searched, tick)
    if not front:
        raise HlsgenError(f"explore: no design of this model fits {budget * 100:g}% of the LUTs and on-chip memory of "
                          f"{spec.hardware.board}; the smallest at each placement: "
                          f"{smallest_refusals(spec, min(searched))} "
                          f"(allowed: a larger --budget, a larger board or a smaller model)")
    return choose(front), front


def hardware_section(c: Candidate) -> dict:
    """The chosen design as the config's `hardware:` mapping."""
    hw, p = c.spec.hardware, c.parallelism
    section = {"board": hw.board, "weights": hw.weights, "packing": hw.packing, "batch": hw.batch,
               "parallelism": {"pe": p.pe, "simd": p.simd, "lm_head_pe": p.lm_head_pe, "lm_head_simd": p.lm_head_simd,
                               "quantiser_simd": c.plan.bitlinear("i").qsimd,
                               "lm_head_quantiser_simd": c.plan.bitlinear("lm_head").qsimd}}
    if hw.clock_mhz is not None:
        section["clock_mhz"] = hw.clock_mhz
    return section


def row(c: Candidate) -> list[str]:
    p, e = c.parallelism, c.perf
    ceiling = "-" if e.fraction_of_ceiling is None else f"{e.fraction_of_ceiling:.0%}"
    quantisers = f"{c.plan.bitlinear('i').qsimd}/{c.plan.bitlinear('lm_head').qsimd}"
    return [c.spec.hardware.weights, c.spec.hardware.packing, f"{p.pe}x{p.simd}", f"{p.lm_head_pe}x{p.lm_head_simd}",
            quantisers, str(c.plan.stripes) if c.plan.offchip else "-", str(c.batch),
            f"{c.tokens_per_s:,.1f}", f"{c.conservative.decode_tokens_per_s:,.1f}", ceiling, e.bound,
            f"{c.usage['lut']:.1%}", f"{c.usage['memory']:.1%}",
            f"{c.usage['dsp']:.1%}"]


HEADER = ["weights", "packing", "layer pe x simd", "lm_head pe x simd", "quantiser simd", "weight ports", "batch",
          "decode tok/s", "@conservative", "of achievable ceiling", "bound", "LUT", "BRAM+URAM", "DSP"]


def header(board: Board, clock_mhz: float) -> list[str]:
    """HEADER with the clocks named: decode tok/s at the design's clock and at the conservative one."""
    named = {"decode tok/s": f"decode tok/s @{clock_mhz:g}MHz", "@conservative": f"@{board.conservative_clock_mhz:g}MHz"}
    return [named.get(h, h) for h in HEADER]


def summary(c: Candidate) -> str:
    """The chosen design's rates at its clock (named): batched decode, prefill, one sequence decoding
    alone, and one sequence at the board's conservative clock; the bandwidth ceilings, achievable and
    nominal."""
    e, board = c.perf, c.plan.board
    memory = board.memory_of(c.plan.weights_place) if c.plan.offchip else None
    ceiling = "" if e.ceiling_tokens_per_s is None else (
        f", ceiling {e.ceiling_tokens_per_s:,.0f} tok/s at batch {e.batch} at the achievable "
        f"{memory.achievable_total_gbps(c.plan.clock_mhz):g} GB/s ({memory.source}), "
        f"{e.nominal_ceiling_tokens_per_s:,.0f} tok/s at the nominal {memory.bandwidth_gbps:g} GB/s")
    batched = (f"{e.decode_tokens_per_s:,.1f} tok/s decode over {e.batch} sequences "
               f"({e.per_sequence_tokens_per_s:,.1f} each), " if e.batch > 1 else "")
    single = perf.estimate(c.plan, 1).decode_tokens_per_s
    slow = at_clock(c.plan, board.conservative_clock_mhz, 1).decode_tokens_per_s
    return (f"batch {e.batch} at {c.plan.clock_mhz:g} MHz: {batched}{e.prefill_tokens_per_s:,.1f} tok/s prefill, "
            f"{single:,.1f} tok/s decoding one sequence ({slow:,.1f} at the conservative "
            f"{board.conservative_clock_mhz:g} MHz), {e.bound}-bound{ceiling}")


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the command
# Its run is cli._explore_run, over hlsgen.api.explore (whose ExploreTable prints the table).
def arguments(parser):
    parser.add_argument("config", help="YAML config file or Hugging Face MMfreeLM model directory")
    parser.add_argument("--board", help="search on this board instead of hardware.board")
    parser.add_argument("--budget", type=float, default=None,
                        help="largest share of the LUTs and of BRAM+URAM a design may take (default: the board's "
                             "lut_budget, 0.7 on the multi-SLR Alveo cards, else 0.8)")
    parser.add_argument("--batch", type=int, metavar="B",
                        help=f"keep hardware.batch at B (1 to {MAX_BATCH}) instead of searching it")
    parser.add_argument("--max-batch", type=int, metavar="M",
                        help=f"search batches 1, 2, 4, ... up to M (default: {MAX_BATCH})")
    parser.add_argument("--write", metavar="FILE.yaml", type=Path, help="write the chosen hardware section here")
