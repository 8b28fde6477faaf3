"""Analytic performance model of the generated design (decode, batch 1).

The architecture hlsgen generates: the top is a DATAFLOW of two processes.  The weight streamer
reads every projection's lanes of the token, in order, into the engines' lane FIFOs
(planner.PREFETCH_LANES deep), over all weight stripes at once (planner.memory_ports), so the
MVU's lanes set how many channels stream.  The compute runs the stages of the token one after
another (a BitLinear is a DATAFLOW of quantiser, MVU and rescale on its engine), taking lanes from
the FIFO as its MVU folds need them.  The streamer runs ahead while the compute is busy between
MVUs, as far as the FIFO allows; `run_phases` follows both as a fluid model.  Prefill feeds the
same hardware one token at a time, so it runs at the decode rate (no weight reuse across tokens).

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
from dataclasses import dataclass, replace

from .planner import INT32_SLOTS, WORD_BITS, BitLinearPlan, HardwarePlan, int32_words

PIPELINE_FILL = 12        # cycles to fill and drain one pipelined loop (an estimate; calibrate with cosim)
M_AXI_BYTES_PER_CYCLE = WORD_BITS // 8
M_AXI_LATENCY = 64        # cycles to the first word of a burst: what the m_axi pragmas declare (top.cpp.j2)
ROM_LATENCY = 2           # an on-chip ROM read


@dataclass(frozen=True)
class Stage:
    """One stage of a token: `compute_cycles` when its weights are there in time; a BitLinear takes
    `weight_bytes` from its lane FIFO over its last `compute_cycles - lead` cycles (the MVU), after
    `lead` cycles of quantiser pass 1.  `memory_cycles`: the transfer at the ports' bandwidth."""
    name: str
    compute_cycles: int
    weight_bytes: int = 0
    memory_cycles: float = 0.0
    lead: int = 0
    lane_bytes: float = 0.0        # one fold's packed codes: the most the streamer takes per cycle

    @property
    def cycles(self) -> float:
        """The stage on its own (what the report plots): the longer of compute and transfer."""
        return max(self.compute_cycles, self.memory_cycles)

    @property
    def bound(self) -> str:
        return "memory" if self.memory_cycles > self.compute_cycles else "compute"


def scale_latency(engine: BitLinearPlan) -> int:
    """The per-token scale on its engine: the mean's divider (sumsq / cols, cols varies by call),
    a bit-serial square root and a divider of num_width bits."""
    return engine.sumsq_width + engine.root_width // 2 + engine.num_width


def bitlinear_compute_cycles(b: BitLinearPlan, engine: BitLinearPlan) -> int:
    """Kind `b` on its engine: pass 1 of the quantiser, then the codes, the MVU and the rescale
    overlapped.  The scale comes after the codes (cols / SIMD cycles, then scale_latency); the
    sums FIFO holds every row fold meanwhile, and rescale drains one fold per cycle, so the call
    ends at the later of the MVU's last fold and the scale plus rows / PE folds."""
    streaming = max(b.cycles_per_matrix, b.cols // b.simd + scale_latency(engine) + b.rows // b.pe)
    return b.cols // b.simd + streaming + 3 * PIPELINE_FILL


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
    compute = bitlinear_compute_cycles(b, plan.engine_of(b.kind).config)
    nbytes = b.words_per_matrix * b.lane_word_bits // 8
    memory = nbytes / weight_bytes_per_cycle(plan) if plan.offchip else 0.0
    return Stage(name, compute, nbytes, memory, lead=b.cols // b.simd + PIPELINE_FILL, lane_bytes=b.packed_lane_bytes)


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
    once = {b.kind: bitlinear_stage(plan, b, b.kind) for b in plan.bitlinears}    # the same in every layer
    projection = lambda p, kind: replace(once[kind], name=p + kind)                 # noqa: E731
    stages = [Stage("embed", embed_cycles(plan) + PIPELINE_FILL)]
    for l in range(plan.layers):
        p = f"layer{l}."
        stages += [elementwise(p + "attn_norm", H)]
        stages += [projection(p, k) for k in ("i", "f", "g")]
        stages += [elementwise(p + "mlgru", D), projection(p, "o"),
                   elementwise(p + "residual_attn", H), elementwise(p + "mlp_norm", H),
                   projection(p, "gate"), elementwise(p + "glu", 2 * I),
                   projection(p, "down"), elementwise(p + "residual_mlp", H)]
    stages += [elementwise("final_norm", H), once["lm_head"], Stage("argmax", argmax_cycles(plan) + PIPELINE_FILL)]
    return stages


# ----------------------------------------------------------------------------- the weight FIFO
def run_phases(stages: list[Stage], rate: float, depth: float, latency: float) -> tuple[float, float]:
    """(cycles, cycles the compute waited for weights) of one token, as a fluid model.

    The streamer fills the lane FIFO at `rate` bytes per cycle (at most a lane per cycle of the
    engine it streams for) from `latency` cycles after the token starts, and stops while the FIFO
    holds `depth` bytes.  The compute runs the stages in order; a BitLinear's MVU takes its bytes
    evenly over its cycles and waits when the FIFO runs dry.  `level` is the FIFO's fill in bytes
    (negative while the first word is in flight)."""
    upcoming = [s for s in stages if s.weight_bytes]
    t, waited = 0.0, 0.0
    level = -min(rate, upcoming[0].lane_bytes) * latency if upcoming else 0.0
    for stage in stages:
        feeding = min(rate, upcoming[0].lane_bytes) if upcoming else 0.0    # what the streamer writes now
        idle = stage.lead if stage.weight_bytes else stage.compute_cycles
        t += idle
        level = min(depth, level + feeding * idle)
        if not stage.weight_bytes:
            continue
        upcoming.pop(0)
        if level < 0:                                    # the first words are not there yet
            t, waited, level = t - level / feeding, waited - level / feeding, 0.0
        busy = stage.compute_cycles - stage.lead
        take = stage.weight_bytes / busy                 # the MVU's pace, bytes per cycle
        if take <= feeding:                              # never starves; the streamer stops when full
            t += busy
            level = min(depth, level + (feeding - take) * busy)
        elif level >= (take - feeding) * busy:           # the FIFO covers the shortfall
            t += busy
            level -= (take - feeding) * busy
        else:                                            # runs dry, then at the streamer's pace
            dry = level / (take - feeding)
            rest = (stage.weight_bytes - take * dry) / feeding
            t += dry + rest
            waited += dry + rest - busy
            level = 0.0
    return t, waited


@dataclass(frozen=True)
class Performance:
    cycles_per_token: float
    clock_mhz: float
    offchip_bytes_per_token: int
    compute_cycles: float                   # the token's stages with their weights always there
    memory_cycles: float                    # the token's weights at the ports' bandwidth, plus the latency
    ceiling_tokens_per_s: float | None      # board bandwidth / off-chip bytes per token

    @property
    def decode_tokens_per_s(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_token

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.decode_tokens_per_s     # one token per call: no weight reuse across tokens

    @property
    def bound(self) -> str:
        return "memory" if self.memory_cycles > self.compute_cycles else "compute"

    @property
    def fraction_of_ceiling(self) -> float | None:
        return None if self.ceiling_tokens_per_s is None else self.decode_tokens_per_s / self.ceiling_tokens_per_s


def prefetch_bytes(plan: HardwarePlan) -> float:
    """The smallest engine lane FIFO, in the bytes its lanes take in memory (the streamer fills one
    engine's at a time; a 5trit streamer decodes them into the FIFO)."""
    return min(e.config.lane_depth * e.config.packed_lane_bytes for e in plan.engines)


def estimate(plan: HardwarePlan) -> Performance:
    stages = token_stages(plan)
    weight_bytes = sum(s.weight_bytes for s in stages)
    if plan.offchip:
        rate, latency = weight_bytes_per_cycle(plan), M_AXI_LATENCY
        memory = plan.board.memory_of(plan.weights_place)
        offchip = weight_bytes + embed_cycles(plan) * M_AXI_BYTES_PER_CYCLE      # the embedding row's words
        ceiling = memory.bandwidth_gbps * 1e9 / offchip
    else:
        rate, latency, offchip, ceiling = float("inf"), ROM_LATENCY, 0, None   # a ROM keeps up with any MVU
    cycles, _ = run_phases(stages, rate, prefetch_bytes(plan), latency)
    return Performance(cycles_per_token=cycles, clock_mhz=plan.clock_mhz, offchip_bytes_per_token=offchip,
                       compute_cycles=sum(s.compute_cycles for s in stages),
                       memory_cycles=latency + weight_bytes / rate, ceiling_tokens_per_s=ceiling)
