"""Analytic performance model of the generated design (decode, batch 1).

It describes the architecture hlsgen generates today: within a token every stage runs after the
one before (the BitLinears one at a time, each a DATAFLOW of quantiser, weight streamer, MVU
and rescale), so a token's cycles are the sum of its stages.  A BitLinear whose weights come
over m_axi takes the longer of its compute and its weight transfer; the transfer runs over all
weight stripes at once (planner.memory_ports), so the MVU's lanes set how many channels stream.  Prefill feeds the same
hardware one token at a time, so it runs at the decode rate (no weight reuse across tokens yet).

Every stage between the BitLinears is as wide as the BitLinear feeding it: a rescale emits one
packet of PE outputs per cycle, and norm, MLGRU, GLU and the residuals take E = the layer PE
elements per cycle (n / E cycles for an n-vector, plus the pipeline fill).  The two ends move
512-bit m_axi words of 16 int32 slots, one per cycle: the argmax takes the lm_head's packets of
P logits and writes a word per 16 logits, max(V / P, V / 16) cycles; the embedding reads its row
16 entries per cycle, a word off chip (a cycle more when H is not a multiple of 16: the row then
straddles words) or 16 banks of the on-chip ROM.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .planner import INT32_SLOTS, WORD_BITS, BitLinearPlan, HardwarePlan, int32_words

PIPELINE_FILL = 12        # cycles to fill and drain one pipelined loop (an estimate; calibrate with cosim)
M_AXI_BYTES_PER_CYCLE = WORD_BITS // 8
M_AXI_LATENCY = 64        # cycles to the first word of a burst: what the m_axi pragmas declare (top.cpp.j2)


@dataclass(frozen=True)
class Stage:
    name: str
    compute_cycles: int
    weight_bytes: int = 0
    memory_cycles: float = 0.0

    @property
    def cycles(self) -> float:
        return max(self.compute_cycles, self.memory_cycles)

    @property
    def bound(self) -> str:
        return "memory" if self.memory_cycles > self.compute_cycles else "compute"


def scale_latency(b: BitLinearPlan) -> int:
    """The per-token scale: a bit-serial square root and a divider of num_width bits."""
    return b.root_width // 2 + b.num_width


def bitlinear_compute_cycles(b: BitLinearPlan) -> int:
    """Pass 1 of the quantiser, the scale, then MVU and rescale overlapped (rescale takes one
    packet of PE sums per cycle, rows / PE cycles, so it never holds back the MVU, whose
    rows / PE * cols / SIMD cycles are at least that; the max keeps the model honest if it did)."""
    streaming = max(b.cycles_per_matrix, b.rows // b.pe)
    return b.cols // b.simd + scale_latency(b) + streaming + 3 * PIPELINE_FILL


def weight_bytes_per_cycle(plan: HardwarePlan) -> float:
    """What the weight ports bring in per kernel cycle, all stripes together.  Each stripe gets at
    most one 512-bit word per cycle and its channels' bandwidth, shared with the other stripes on
    those channels; all of them together at most the memory's bandwidth (a Zynq's one DDR behind
    its HP ports)."""
    memory = plan.board.memory_of(plan.weights_place)
    cycle_s = 1 / (plan.clock_mhz * 1e6)
    stripes_on = Counter(c for p in plan.weight_ports for c in p.channels)
    per_stripe = [min(M_AXI_BYTES_PER_CYCLE, sum(memory.gbps_each / stripes_on[c] for c in p.channels) * 1e9 * cycle_s)
                  for p in plan.weight_ports]
    return min(sum(per_stripe), memory.bandwidth_gbps * 1e9 * cycle_s)


def bitlinear_stage(plan: HardwarePlan, b: BitLinearPlan, name: str) -> Stage:
    compute = bitlinear_compute_cycles(b)
    if not plan.offchip:
        return Stage(name, compute)
    nbytes = b.words_per_matrix * b.lane_word_bits // 8
    return Stage(name, compute, nbytes, M_AXI_LATENCY + nbytes / weight_bytes_per_cycle(plan))


def embed_cycles(plan: HardwarePlan) -> int:
    """kernels_cpp/hlsgen_mixers.h embed: 16 entries per cycle; off chip, a cycle more (and a
    word more read) when a row can start inside a word."""
    straddles = plan.offchip and plan.hidden % INT32_SLOTS != 0
    return int32_words(plan.hidden) + straddles


def argmax_cycles(plan: HardwarePlan) -> int:
    """The lm_head's packets in, one 16-logit word out per cycle: whichever is slower."""
    return max(plan.vocab // plan.head_pe, plan.logit_words)


def token_stages(plan: HardwarePlan) -> list[Stage]:
    """Every stage of one decoded token, in order."""
    H, D, I, E = plan.hidden, plan.inner, plan.intermediate, plan.layer_pe
    elementwise = lambda name, n, lanes=E: Stage(name, n // lanes + PIPELINE_FILL)   # noqa: E731
    stages = [Stage("embed", embed_cycles(plan) + PIPELINE_FILL)]
    for l in range(plan.layers):
        p = f"layer{l}."
        stages += [elementwise(p + "attn_norm", H)]
        stages += [bitlinear_stage(plan, plan.bitlinear(k), p + k) for k in ("i", "f", "g")]
        stages += [elementwise(p + "mlgru", D), bitlinear_stage(plan, plan.bitlinear("o"), p + "o"),
                   elementwise(p + "residual_attn", H), elementwise(p + "mlp_norm", H),
                   bitlinear_stage(plan, plan.bitlinear("gate"), p + "gate"), elementwise(p + "glu", 2 * I),
                   bitlinear_stage(plan, plan.bitlinear("down"), p + "down"), elementwise(p + "residual_mlp", H)]
    stages += [elementwise("final_norm", H), bitlinear_stage(plan, plan.bitlinear("lm_head"), "lm_head"),
               Stage("argmax", argmax_cycles(plan) + PIPELINE_FILL)]
    return stages


@dataclass(frozen=True)
class Performance:
    cycles_per_token: float
    clock_mhz: float
    offchip_bytes_per_token: int
    memory_bound_cycles: float
    ceiling_tokens_per_s: float | None      # board bandwidth / off-chip bytes per token

    @property
    def decode_tokens_per_s(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_token

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.decode_tokens_per_s     # one token per call: no weight reuse across tokens

    @property
    def bound(self) -> str:
        return "memory" if self.memory_bound_cycles > self.cycles_per_token / 2 else "compute"

    @property
    def fraction_of_ceiling(self) -> float | None:
        return None if self.ceiling_tokens_per_s is None else self.decode_tokens_per_s / self.ceiling_tokens_per_s


def estimate(plan: HardwarePlan) -> Performance:
    stages = token_stages(plan)
    weight_bytes = sum(s.weight_bytes for s in stages)
    offchip = weight_bytes + (embed_cycles(plan) * M_AXI_BYTES_PER_CYCLE if plan.offchip else 0)
    ceiling = None
    if plan.offchip:
        memory = plan.board.memory_of(plan.weights_place)
        ceiling = memory.bandwidth_gbps * 1e9 / offchip
    return Performance(cycles_per_token=sum(s.cycles for s in stages), clock_mhz=plan.clock_mhz,
                       offchip_bytes_per_token=offchip,
                       memory_bound_cycles=sum(s.cycles for s in stages if s.bound == "memory"),
                       ceiling_tokens_per_s=ceiling)
