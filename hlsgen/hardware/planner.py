"""Spec + board -> HardwarePlan: every hardware decision, as data.

Templates only print what the plan says.  Each decision is a small named pass over the plan.
"""

from __future__ import annotations

import math
from dataclasses import replace

from hlsgen.hardware import engines
from hlsgen.hardware import estimate
from hlsgen.model import numerics as nx
from hlsgen.hardware import open_board
from hlsgen.hardware.boards import Board, Memory
from hlsgen.hardware.plan import (COMPACT_MVU_MAX_MHZ, INT32_SLOTS, PREFETCH_LANES, TRITS_PER_WORD, WORD_BITS,  # noqa: F401 (re-exported)
                                  Argument, BitLinearPlan, HardwarePlan, MemoryPort, bits_for, even, int32_words)
from hlsgen.errors import HlsgenError
from hlsgen.model.spec import LANES_PER_WORD, MAX_LANES, Spec, stripes_agree, stripes_for
from hlsgen.model.weights import Weights

LOGIC_BUDGET = 0.8       # share of the LUTs, FFs and DSPs a design may take and still place and route
PORTS_PER_CHANNEL = 15   # kernel interfaces one global memory bank takes (UG1393, v++ link)


# ----------------------------------------------------------------------------- passes
def numerics_constants(spec: Spec) -> dict:
    n = spec.numerics
    return {
        "act_width": n.act.width, "act_frac": n.act.frac,
        "gamma_width": n.gamma.width, "gamma_frac": n.gamma.frac,
        "mix_width": n.mix.width, "mix_frac": n.mix.frac,
        "state_width": n.state.width, "state_frac": n.state.frac,
        "sigmoid_frac": n.sigmoid_frac, "sigmoid_step_bits": n.sigmoid_step_bits,
        "sigmoid_range": n.sigmoid_range,
        "sigmoid_entries": n.sigmoid_range * (1 << n.sigmoid_step_bits) + 1,
        "scale_frac": n.scale_frac, "scale_width": n.scale_width,
        "beta_frac": n.beta_frac, "rsqrt_guard": n.rsqrt_guard,
        "scale_exponent": n.scale_frac + n.act.frac + n.rsqrt_guard - n.beta_frac - n.gamma.frac,
    }


def check_folding(kind: str, rows: int, cols: int, pe: int, simd: int, qsimd: int | None = None) -> None:
    """The MVU (HLS and RTL alike) has no partial folds: PE must divide the rows, SIMD the columns,
    and the 2-bit lanes of a cycle must split a 512-bit weight word evenly (or fill whole words)."""
    lanes, most = pe * simd, MAX_LANES
    problems = []
    if rows % pe:
        problems.append(f"pe {pe} does not divide its {rows} rows")
    if cols % simd:
        problems.append(f"simd {simd} does not divide its {cols} columns")
    if lanes & (lanes - 1) or lanes > most:
        problems.append(f"pe*simd = {lanes} is not a power of two <= {most}")
    if qsimd is not None and simd % qsimd:
        problems.append(f"quantiser_simd {qsimd} does not divide simd {simd}")
    if problems:
        raise HlsgenError(f"planner: the {kind} projection [{rows} x {cols}]: {'; '.join(problems)} "
                          f"(allowed: pe a divisor of {rows}, simd a divisor of {cols}, "
                          f"pe*simd in 1, 2, 4, ..., {most}, "
                          f"quantiser_simd a divisor of simd)")


def lane_words(rows: int, cols: int, pe: int, simd: int, packing: str = "2bit") -> int:
    """Lane words of one [rows x cols] matrix: in 2bit packing a fold of up to 256 lanes shares a
    512-bit word; in 5trit each stripe's codes of all folds run on, 320 per word."""
    if packing == "5trit":
        return math.ceil(rows * cols // stripes_for(pe * simd) / TRITS_PER_WORD)
    return math.ceil(rows * cols / max(pe * simd, LANES_PER_WORD))


def scale_den_width(root_width: int, exponent: int) -> int:
    """Bits of the output scale's denominator, 127 * isqrt(.) << max(-E, 0): the root of a
    root_width-bit radicand has half its bits."""
    return 7 + root_width // 2 + max(-exponent, 0)


def size_bitlinear(spec: Spec, kind: str, rows: int, cols: int, pe: int, simd: int, matrices: int,
                   max_beta: int, quantiser_simd: int | None = None, compact: bool = False) -> BitLinearPlan:
    """Every width of one BitLinear instance, from the bounds of its values."""
    check_folding(kind, rows, cols, pe, simd, quantiser_simd)
    n = spec.numerics
    in_width = n.mix.width if kind in ("o", "down") else n.act.width
    y_width = in_width + n.gamma.width
    sumsq_width = 2 * in_width - 1 + math.ceil(math.log2(cols))
    root_width = even(2 * in_width - 1 + 2 * n.rsqrt_guard)
    beta_width = bits_for(max_beta)
    exponent = numerics_constants(spec)["scale_exponent"]
    num_bits = y_width + beta_width + max(exponent, 0)
    den_bits = scale_den_width(root_width, exponent)
    num_width = max(num_bits, den_bits) + 2
    acc_width = bits_for(127 * cols) + 1
    return BitLinearPlan(kind=kind, rows=rows, cols=cols, pe=pe, simd=simd, matrices=matrices,
                         in_width=in_width, y_width=y_width, sumsq_width=sumsq_width, root_width=root_width,
                         beta_width=beta_width, num_width=num_width, acc_width=acc_width,
                         words_per_matrix=lane_words(rows, cols, pe, simd, spec.hardware.packing),
                         offchip=spec.hardware.weights != "onchip", packing=spec.hardware.packing,
                         batch=spec.hardware.batch, quantiser_simd=quantiser_simd, compact_pipeline=compact)


def choose_bitlinears(spec: Spec, weights: Weights | None, compact: bool = False) -> tuple:
    p = spec.hardware.parallelism
    shapes = spec.model.projection_shapes()
    plans = []
    for kind, (rows, cols) in shapes.items():
        is_head = kind == "lm_head"
        if weights is None:
            max_beta = 1 << spec.numerics.beta_frac
        else:
            projs = weights.of_kind(kind)
            max_beta = max(nx.beta_fixed(pr.scale, spec.numerics) for pr in projs)
        plans.append(size_bitlinear(spec, kind, rows, cols,
                                    p.lm_head_pe if is_head else p.pe, p.lm_head_simd if is_head else p.simd,
                                    1 if is_head else spec.model.layers, max_beta,
                                    p.lm_head_quantiser_simd if is_head else p.quantiser_simd, compact))
    return with_stripe_offsets(plans)


def with_stripe_offsets(plans: list[BitLinearPlan]) -> tuple:
    """Where each kind's lane words start: off chip, in the stripe buffers every kind shares; on
    chip, in its engine's ROM."""
    placed, base = [], {}
    for b in plans:
        source = "stripes" if b.offchip else engines.folding(b)
        placed.append(replace(b, base_word=base.get(source, 0)))
        base[source] = base.get(source, 0) + b.words
    return tuple(placed)


def check_onchip_memory(plan: HardwarePlan) -> None:
    """Refuse a design whose on-chip memory cannot fit, with the numbers and a way out."""
    used = plan.onchip_bits()
    need, have = sum(used.values()), plan.board.onchip_bits
    if need > have:
        detail = ", ".join(f"{name} {bits / 8e6:.2f} MB" for name, bits in used.items())
        if plan.offchip:
            hint = "a smaller model or a larger board"
        else:
            hint = "weights: " + " | ".join(sorted(plan.board.memory_kinds))
        raise HlsgenError(
            f"hardware.weights: {plan.weights_place} needs {need / 8e6:.2f} MB on chip ({detail}) but "
            f"{plan.board.key} has {have / 8e6:.2f} MB of BRAM+URAM (allowed: {hint})")


# ----------------------------------------------------------------------------- m_axi ports and channels
def memory_ports(plan: HardwarePlan) -> list[MemoryPort]:
    """Every m_axi argument in signature order: the logits, tokens and next tokens, then (off-chip) the embedding and
    one weight port per stripe, each buffer a whole number of 512-bit words.  Stripe s holds the 512-bit slice s of every lane word of every
    kind, so a fold reads all stripes at once and the stripes stream concurrently."""
    word_bytes = WORD_BITS // 8
    # A call's tokens in and its next tokens out: one word of int32 slots each (spec.MAX_BATCH).
    ports = [MemoryPort("logits", "gmem_out", plan.batch * plan.logit_words * word_bytes, plan.logit_dtype, None),
             MemoryPort("tokens", "gmem_out", word_bytes, "<i4", None),
             MemoryPort("next_tokens", "gmem_out", word_bytes, "<i4", None)]
    if plan.offchip:
        ports.append(MemoryPort("emb_table", "gmem_emb", plan.embedding_words * word_bytes, "<i4",
                                "tb/data/emb_table.bin"))
        stripe_bytes = sum(b.words for b in plan.bitlinears) * word_bytes
        ports += [MemoryPort(f"w{s}", f"gmem_w{s}", stripe_bytes, "<u8", f"tb/data/w{s}.bin", stripe=s)
                  for s in range(plan.stripes)]
    return ports


def by_bundle(ports) -> dict:
    """m_axi bundle -> its arguments' ports, in signature order."""
    bundles = {}
    for p in ports:
        bundles.setdefault(p.bundle, []).append(p)
    return bundles


def spread(sizes: list[int], memory: Memory, where: str, concurrent: list[bool] | None = None) -> list[tuple]:
    """Channels for buffers of these sizes: a channel (or a range, when one cannot hold the buffer)
    of its own for each while there are enough; otherwise they share: the `concurrent` ones (the
    weight stripes) spread evenly, the rest by capacity. Stripes sharing a channel share its
    bandwidth (perf.py counts that); the embedding and logits ports are idle while weights stream."""
    needs = [max(1, math.ceil(n / memory.channel_bytes)) for n in sizes]
    mb = f"{sum(sizes) / 2**20:,.1f} MB"
    size_each = f"{memory.mb_total:g} MB shared" if memory.shared else f"{memory.mb_each:g} MB each"
    if sum(sizes) > memory.capacity_bytes:
        raise HlsgenError(f"{where}: the m_axi buffers need {mb} but the board's {memory.count} {memory.kind} "
                          f"channels hold {memory.capacity_bytes / 2**20:,.1f} MB ({size_each}) (allowed: a smaller "
                          f"model, or a board with more {memory.kind} memory)")
    if sum(needs) <= memory.count:
        starts = [sum(needs[:i]) for i in range(len(needs))]
        return [tuple(range(start, start + need)) for start, need in zip(starts, needs)]
    if len(sizes) > memory.count * PORTS_PER_CHANNEL:
        raise HlsgenError(f"{where}: more m_axi ports than channels: {len(sizes)} ports on {memory.count} "
                          f"{memory.kind} channels of at most {PORTS_PER_CHANNEL} ports each (allowed: fewer ports, "
                          f"e.g. weights: onchip)")
    load, streams = [0] * memory.count, [0] * memory.count
    channels = [()] * len(sizes)
    concurrent = concurrent or [False] * len(sizes)
    # Buffers that stream at the same time first, each onto the channels with the fewest of them;
    # then the rest, the largest first, onto the least-filled. A buffer larger than a channel
    # takes a range of them (its bytes spread evenly over the range).
    for i in sorted(range(len(sizes)), key=lambda i: (not concurrent[i], -sizes[i])):
        def room(c, span):
            return memory.shared or max(load[c:c + span]) + sizes[i] / span <= memory.channel_bytes

        # The fewest channels that still have room for it (a wider range when others fill them).
        span = next((n for n in range(needs[i], memory.count + 1)
                     if any(room(c, n) for c in range(memory.count - n + 1))), needs[i])

        def crowding(c, span=span, streaming=concurrent[i]):
            return (not room(c, span), sum(streams[c:c + span]) if streaming else 0, max(load[c:c + span]), c)

        c = min(range(memory.count - span + 1), key=crowding)
        for k in range(c, c + span):
            load[k] += sizes[i] / span
            streams[k] += concurrent[i]
        channels[i] = tuple(range(c, c + span))
    if not memory.shared and max(load) > memory.channel_bytes:
        raise HlsgenError(f"{where}: the m_axi buffers need {mb} but {memory.count} {memory.kind} channels of "
                          f"{memory.mb_each:g} MB cannot hold them (allowed: a smaller model, or a larger board)")
    return channels


def assign_memory(plan: HardwarePlan) -> HardwarePlan:
    """Link every m_axi port to memory channels; the on-chip design's logits go to the board's first memory."""
    kind = plan.weights_place if plan.offchip else plan.board.memory_kinds[0]
    memory = plan.board.memory_of(kind)
    ports = memory_ports(plan)
    # An m_axi bundle is one AXI master, so the arguments sharing it (logits, tokens, next_tokens)
    # share its channels: the buffers are spread per bundle.
    bundles = by_bundle(ports)
    channels = spread([sum(p.nbytes for p in members) for members in bundles.values()], memory,
                      f"hardware.weights: {plan.weights_place}", [members[0].stripe is not None for members in bundles.values()])
    of_bundle = dict(zip(bundles, channels))
    linked = tuple(replace(p, memory=kind, channels=of_bundle[p.bundle], link=plan.board.channel_name(memory, of_bundle[p.bundle]))
                   for p in ports)
    return replace(plan, memory_ports=linked)


# ----------------------------------------------------------------------------- s_axilite register map
def assign_registers(plan: HardwarePlan) -> HardwarePlan:
    """Offsets of the top's arguments in its s_axilite map (after CTRL, GIE, IER, ISR at 0x00-0x0c).
    A 32-bit scalar takes its word and a reserved one; a 64-bit pointer two words and a reserved one."""
    kinds = [("n_tokens", "scalar"), ("batch_mode", "scalar"), ("reset_state", "scalar")]
    kinds += [(p.name, "pointer") for p in plan.memory_ports]
    arguments, offset = [], 0x10
    for name, kind in kinds:
        arguments.append(Argument(name, kind, offset))
        offset += 12 if kind == "pointer" else 8
    return replace(plan, arguments=tuple(arguments))


# ----------------------------------------------------------------------------- packet widths
AP_INT_MAX_W = 4096      # the widest ap_int Vitis HLS takes (UG1399); kernels_cpp/hlsgen_common.h sets it


def check_packet_widths(plan: HardwarePlan) -> None:
    """Every packet an engine streams is one ap_uint: SIMD int8 codes, PE sums, PE outputs.
    (Weight lanes are split into 512-bit parts, so they have no such limit.)"""
    for e in plan.engines:
        c, key = e.config, "pe" if e.name == "layer" else "lm_head_pe"
        packets = {f"{c.simd} int8 codes (simd)": 8 * c.simd, f"{c.pe} sums of {c.acc_width} bits (pe)": c.pe * c.acc_width,
                   f"{c.pe} outputs of {plan.numerics['act_width']} bits (pe)": c.pe * plan.numerics["act_width"]}
        for what, bits in packets.items():
            if bits > AP_INT_MAX_W:
                raise HlsgenError(f"hardware.parallelism: the {e.name} engine ({', '.join(e.kinds)}) would stream "
                                  f"{what} = {bits} bits per packet, beyond the {AP_INT_MAX_W}-bit ap_int limit of "
                                  f"Vitis HLS (allowed: a smaller {key} or simd; pe*simd lanes can stay as wide "
                                  f"with the other one larger)")


# ----------------------------------------------------------------------------- logic fit
def logic_budget(board: Board, resource: str = "lut") -> float:
    """The share of a resource a design may take: the board's lut_budget for LUTs (70% on the
    multi-SLR Alveo cards), LOGIC_BUDGET otherwise."""
    return (board.lut_budget or LOGIC_BUDGET) if resource == "lut" else LOGIC_BUDGET


def over_budget(plan: HardwarePlan, bitlinears=None) -> dict:
    """{resource: (estimated, available)} for every resource beyond its budget (logic_budget) of the
    board's, and any engine larger than one SLR ("lut in one SLR (<engine>)": (its LUTs, the SLR's))."""
    used = estimate.design_resources(plan, bitlinears)
    have = plan.board.resources
    over = {k: (used[k], have[k]) for k in used if used[k] > logic_budget(plan.board, k) * have[k]}
    slrs = plan.board.slrs
    if slrs is not None:
        for name, part in estimate.engine_resources(plan, bitlinears):
            for k in ("lut", "ff", "dsp"):
                if part[k] > logic_budget(plan.board, k) * slrs.resources[k]:
                    over[f"{k} in one SLR ({name} engine)"] = (part[k], slrs.resources[k])
    return over


def slrs_used(plan: HardwarePlan) -> int | None:
    """SLRs the design spreads over at the LUT budget of each (from SLR0, where the HBM is); None
    on a single-die board."""
    slrs = plan.board.slrs
    if slrs is None:
        return None
    lut = estimate.design_resources(plan)["lut"]
    return max(1, math.ceil(lut / (logic_budget(plan.board) * slrs.resources["lut"])))


def fold(b: BitLinearPlan, pe: int, simd: int) -> BitLinearPlan:
    """`b` at another folding; a quantiser width set apart from simd stays, at most the new simd."""
    qsimd = None if b.quantiser_simd is None else min(b.quantiser_simd, simd)
    return replace(b, pe=pe, simd=simd, quantiser_simd=qsimd)


def smaller_parallelism(plan: HardwarePlan) -> dict | None:
    """The first folding that fits, halving the widest of simd, pe, lm_head_simd, lm_head_pe in turn
    (each is a power of two, so its half still divides the matrix sizes)."""
    head, layer = plan.bitlinear("lm_head"), plan.bitlinear("i")
    start = {"simd": layer.simd, "pe": layer.pe, "lm_head_simd": head.simd, "lm_head_pe": head.pe}
    p = dict(start)
    while max(p.values()) > 1:
        widest = max(p, key=lambda k: p[k])      # ties: the first key, simd before pe
        p[widest] //= 2
        if not stripes_agree(p["pe"] * p["simd"], p["lm_head_pe"] * p["lm_head_simd"]):
            continue        # the spec refuses it
        folded = [fold(b, p["lm_head_pe"], p["lm_head_simd"]) if b.kind == "lm_head" else fold(b, p["pe"], p["simd"])
                  for b in plan.bitlinears]
        if not over_budget(plan, folded):
            return {k: v for k, v in p.items() if v != start[k]}
    return None


def check_logic(plan: HardwarePlan) -> None:
    """Refuse parallelism beyond the board's LUTs, FFs or DSPs (first-order estimate, hlsgen/hardware/estimate.py)."""
    over = over_budget(plan)
    if not over:
        return
    numbers = ", ".join(f"{k.upper() if ' ' not in k else k} {used:,} of {have:,}" for k, (used, have) in over.items())
    smaller = smaller_parallelism(plan)
    hint = ("reduce " + " and ".join(f"{k} to {v}" for k, v in smaller.items()) if smaller
            else "a larger board")
    budget = f"{logic_budget(plan.board):.0%} of the LUTs, {LOGIC_BUDGET:.0%} of the FFs and DSPs"
    raise HlsgenError(f"hardware.parallelism: the design needs an estimated {numbers} on {plan.board.key}, more "
                      f"than {budget} (of the chip, and of one SLR for an engine) (allowed: {hint})")


def check_fit(plan: HardwarePlan) -> HardwarePlan:
    """The build-time fit checks, in order: on-chip memory, memory channels, logic. Returns the
    plan with its m_axi ports linked to channels and its register map."""
    check_packet_widths(plan)
    if plan.board.flow == "ecp5":      # the RTL design: its own fit check, in the chip's primitives
        open_board.check_plan(plan)
        return assign_registers(assign_memory(plan))
    check_onchip_memory(plan)
    plan = assign_registers(assign_memory(plan))
    check_logic(plan)
    return plan


def plan(spec: Spec, weights: Weights | None = None) -> HardwarePlan:
    board = Board.load(spec.hardware.board)
    place = spec.hardware.weights
    memory_kinds = set(board.memory_kinds)
    if place != "onchip" and place not in memory_kinds:
        raise HlsgenError(f"hardware.weights: {place!r} is not available on {board.key} "
                          f"(allowed: onchip, {', '.join(sorted(memory_kinds))})")
    m = spec.model
    clock_mhz = spec.hardware.clock_mhz or board.clock_mhz
    # The RTL core on an ECP5 at a slow clock: its MVUs need fewer pipeline registers.
    compact = board.flow == "ecp5" and clock_mhz <= COMPACT_MVU_MAX_MHZ
    result = HardwarePlan(top=spec.project.name, board=board, clock_mhz=clock_mhz,
                          weights_place=place, numerics=numerics_constants(spec),
                          bitlinears=choose_bitlinears(spec, weights, compact), vocab=m.vocab, hidden=m.hidden,
                          inner=m.inner, intermediate=m.intermediate, layers=m.layers, batch=spec.hardware.batch)
    return check_fit(result)


def with_notes(p: HardwarePlan, *notes: str) -> HardwarePlan:
    return replace(p, notes=p.notes + tuple(notes))
