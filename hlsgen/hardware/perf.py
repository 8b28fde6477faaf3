"""Analytic performance model of the generated design: one call of the top, of n tokens.

The architecture hlsgen generates: the top is a DATAFLOW of two processes.  The weight streamer
reads every projection's lanes of the call, in order, into the engines' lane FIFOs
(planner.PREFETCH_LANES deep), over all weight stripes at once (planner.memory_ports), so the
MVU's lanes set how many channels stream.  The compute runs the stages of the call one after
another (a BitLinear is a DATAFLOW of quantiser, MVU and rescale on its engine), taking lanes from
the FIFO as its MVU folds need them.  The streamer runs ahead while the compute is busy between
MVUs, as far as the FIFO allows; `run_phases` follows both as a fluid model.

A call takes n <= hardware.batch tokens that share one pass over the weights: a block of one
sequence's prompt (prefill) or the next token of each of n sequences (batched decode); the timing
is the same.  The stages between the BitLinears run the tokens one after another (n times a
token's cycles).  A BitLinear quantises the tokens one after another (two passes of cols / QSIMD
cycles each, QSIMD <= SIMD the quantiser's lanes); with one token the MVU's first row fold takes
the codes at the quantiser's pace; with n > 1 its MVU first takes every token's codes, then runs
each weight fold over the n tokens (token innermost), so it reads the weights once per call at
1/n of the single-token pace.  The weight bytes per call are those of a single token, and n embedding rows.  Performance
gives the rates of calls of the design's batch; `estimate(plan, 1)` is one sequence decoding alone.

Every stage between the BitLinears is as wide as the BitLinear feeding it: a rescale emits one
packet of PE outputs per cycle, and norm, MLGRU, GLU and the residuals take E = the layer PE
elements per cycle (k / E cycles for a k-vector, plus the pipeline fill).  The two ends move
512-bit m_axi words of 16 int32 slots, one per cycle: the argmax takes the lm_head's packets of
P logits and writes a word per 16 logits, max(V / P, V / 16) cycles; the embedding reads its row
16 entries per cycle, a word off chip (a cycle more when H is not a multiple of 16: the row then
straddles words) or 16 banks of the on-chip ROM.

Every pipelined loop runs at the II the code is written for (hardware/memories.py keeps every
bank within its two ports: the sigmoid table has a copy per two calls, so MLGRU and GLU are at
II = 1 like the rest; the argmax at 16 / P when the lm_head's P logits per packet are fewer than a
word).  The weights come in bursts (an unconditional reader loop per matrix and port, the 5-trit
decode after a FIFO); the reader and the decoder run over the whole call, and each matrix's loops
fill and drain once (stream_call_overhead).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from hlsgen.hardware.plan import MVU_OUTPUT_CYCLES, mvu_pipeline_stages
from hlsgen.hardware.planner import INT32_SLOTS, WORD_BITS, BitLinearPlan, HardwarePlan, int32_words

PIPELINE_FILL = 12        # cycles to fill and drain one pipelined loop (an estimate; calibrate with cosim)
M_AXI_BYTES_PER_CYCLE = WORD_BITS // 8
M_AXI_LATENCY = 64        # cycles to the first word of a burst: what the m_axi pragmas declare (top.cpp.j2)
ROM_LATENCY = 2           # an on-chip ROM read


@dataclass(frozen=True)
class Stage:
    """One stage of a call: `compute_cycles` when its weights are there in time; a BitLinear takes
    `weight_bytes` from its lane FIFO over its last `compute_cycles - lead` cycles (the MVU), after
    `lead` cycles of quantiser passes.  `memory_cycles`: the transfer at the ports' bandwidth."""
    name: str
    compute_cycles: int
    weight_bytes: int = 0
    memory_cycles: float = 0.0
    lead: int = 0
    lane_bytes: float = 0.0        # one fold's packed codes: the most the streamer takes per cycle
    stream_overhead: float = 0.0   # streamer cycles of its stream_weights call that move no data

    def feeding(self, rate: float) -> float:
        """The streamer's average pace over this matrix's stream_weights call: a lane per cycle at
        most, the ports' `rate`, and the call's dead cycles (its bursts' first-word latency and the
        reader's and decoder's pipeline fill and drain: a dataflow region called once per matrix
        starts only when the previous call has drained)."""
        peak = min(rate, self.lane_bytes)
        if not self.weight_bytes or not self.stream_overhead:
            return peak
        return self.weight_bytes / (self.weight_bytes / peak + self.stream_overhead)

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


def quantiser_pass(b: BitLinearPlan) -> int:
    """One pass of the quantiser over a token: cols / QSIMD cycles."""
    return b.cols // b.qsimd


def mvu_start(b: BitLinearPlan, tokens: int) -> int:
    """Cycles of quantiser before the MVU's first fold: one token's codes go straight into its
    first row fold, after pass 1; several tokens' codes are all buffered first (2 passes each)."""
    return quantiser_pass(b) if tokens == 1 else 2 * tokens * quantiser_pass(b)


def mvu_cycles(b: BitLinearPlan, tokens: int) -> int:
    """The MVU from its first fold: rows / PE x cols / SIMD folds, each over the tokens.  One
    token's first row fold takes the codes as pass 2 makes them, a packet per SIMD / QSIMD cycles;
    the other row folds read the input buffer at II=1."""
    if tokens == 1:
        return quantiser_pass(b) + (b.rows // b.pe - 1) * (b.cols // b.simd)
    return tokens * b.cycles_per_matrix


def mvu_alone_cycles(b: BitLinearPlan, tokens: int) -> int:
    """The MVU on its own, its codes always there (what the RTL twin's cosim measures): several
    tokens' codes are loaded first (cols / SIMD beats each), then rows / PE x cols / SIMD folds,
    each over the tokens; one token's codes go straight into its first row fold; then the
    pipeline's latency (mvu_pipeline_stages and the output).  In the engine the load overlaps the
    quantiser (mvu_start) and mvu_cycles follows it."""
    load = tokens * (b.cols // b.simd) if tokens > 1 else 0
    return load + tokens * b.cycles_per_matrix + mvu_pipeline_stages(b) + MVU_OUTPUT_CYCLES


def bitlinear_compute_cycles(b: BitLinearPlan, engine: BitLinearPlan, tokens: int = 1) -> int:
    """Kind `b` on its engine for a call of `tokens` tokens: the quantiser (two passes of cols /
    QSIMD cycles per token), the MVU from mvu_start (mvu_cycles) and the rescale, overlapped.  A
    token's scale comes after its codes (scale_latency); the sums FIFO holds the row folds
    meanwhile, and the rescale takes one packet per cycle in order, so the last token's scale
    gates its first packet and every packet after it (the last rows / PE with one token,
    (rows / PE - 1) x tokens + 1 with the tokens interleaved).  The call ends at the later of the
    MVU's last fold and that."""
    last_scale = 2 * tokens * quantiser_pass(b) + scale_latency(engine)
    rescale_end = last_scale + (b.rows // b.pe - 1) * tokens + 1
    mvu_end = mvu_start(b, tokens) + mvu_cycles(b, tokens)
    return max(mvu_end, rescale_end) + 3 * PIPELINE_FILL


def weight_bytes_per_cycle(plan: HardwarePlan) -> float:
    """What the weight ports bring in per kernel cycle, all stripes together.  Each stripe gets at
    most one 512-bit word per cycle and its channels' bandwidth, shared with the other stripes on
    those channels; all of them together at most the memory's bandwidth (a Zynq's one DDR behind
    its HP ports).  Bandwidths are the achievable ones (boards/*.yaml `achievable_gbps`)."""
    memory = plan.board.memory_of(plan.weights_place)
    cycle_s = 1 / (plan.clock_mhz * 1e6)
    stripes_on = Counter(c for p in plan.weight_ports for c in p.channels)
    channel = memory.channel_gbps(plan.clock_mhz)      # measured efficiency, or an HP port at the PL clock
    per_stripe = [min(M_AXI_BYTES_PER_CYCLE, sum(channel / stripes_on[c] for c in p.channels) * 1e9 * cycle_s)
                  for p in plan.weight_ports]
    return min(sum(per_stripe), memory.achievable_total_gbps(plan.clock_mhz) * 1e9 * cycle_s)


def bitlinear_stage(plan: HardwarePlan, b: BitLinearPlan, name: str, tokens: int = 1,
                    rate: float | None = None) -> Stage:
    """One call's matrix: its weights are read once, whatever the tokens.  `rate`: the
    weight_bytes_per_cycle of the plan, when the caller has it."""
    compute = bitlinear_compute_cycles(b, plan.engine_of(b.kind).config, tokens)
    nbytes = b.words_per_matrix * b.lane_word_bits // 8
    overhead = stream_call_overhead(plan)
    memory = nbytes / (rate or weight_bytes_per_cycle(plan)) + overhead if plan.offchip else 0.0
    return Stage(name, compute, nbytes, memory, lead=mvu_start(b, tokens) + PIPELINE_FILL,
                 lane_bytes=b.packed_lane_bytes, stream_overhead=overhead)


def stream_call_overhead(plan: HardwarePlan) -> int:
    """Dead cycles per matrix of the weight streamer (templates/top.cpp.j2: read_call_weights and
    unpack_call_weights, processes that run over the whole call): each matrix's burst loop and
    decode loop fill and drain once.  The reader issues the next matrix's burst while the decoder
    drains the last one, so the memory's first-word latency is paid once per call (run_phases),
    not per matrix."""
    del plan
    return PIPELINE_FILL


def embed_words(plan: HardwarePlan) -> int:
    """The words of an embedding row: a word more when a row can start inside a word (off chip)."""
    return int32_words(plan.hidden) + (plan.offchip and plan.hidden % INT32_SLOTS != 0)


def embed_cycles(plan: HardwarePlan) -> int:
    """kernels_cpp/hlsgen_mixers.h embed: 16 entries per cycle; off chip, the row is first read in
    one burst into a buffer (a word per cycle, its own pipeline), then unpacked."""
    return embed_words(plan) + (embed_words(plan) + PIPELINE_FILL if plan.offchip else 0)


def argmax_cycles(plan: HardwarePlan) -> int:
    """One 16-logit word written per iteration, at II = 16 / min(P, 16) (the packets it takes per
    word, one per cycle): the lm_head's packets in or the words out, whichever is slower."""
    per_word = INT32_SLOTS // min(plan.head_pe, INT32_SLOTS)
    return max(plan.logit_words * per_word, plan.logit_words)


def call_parts(plan: HardwarePlan, tokens: int) -> tuple[list[Stage], list[Stage], list[Stage]]:
    """The stages of one call of `tokens` tokens, in order: before the layers, one layer (the same
    in every layer), after the layers."""
    H, D, I, E = plan.hidden, plan.inner, plan.intermediate, plan.layer_pe
    # Outside the BitLinears the tokens run one after another: n times a token's cycles.
    serial = lambda name, cycles: Stage(name, tokens * (cycles + PIPELINE_FILL))   # noqa: E731
    elementwise = lambda name, width: serial(name, width // E)                      # noqa: E731
    rate = weight_bytes_per_cycle(plan) if plan.offchip else None
    bitlinear = {b.kind: bitlinear_stage(plan, b, b.kind, tokens, rate) for b in plan.bitlinears}
    layer = [elementwise("attn_norm", H), bitlinear["i"], bitlinear["f"], bitlinear["g"], elementwise("mlgru", D),
             bitlinear["o"], elementwise("residual_attn", H), elementwise("mlp_norm", H), bitlinear["gate"],
             elementwise("glu", 2 * I), bitlinear["down"], elementwise("residual_mlp", H)]
    return ([serial("embed", embed_cycles(plan))], layer,
            [elementwise("final_norm", H), bitlinear["lm_head"], serial("argmax", argmax_cycles(plan))])


def call_stages(plan: HardwarePlan, tokens: int | None = None) -> list[Stage]:
    """Every stage of one call of `tokens` tokens (None: the plan's batch), in order; a layer's
    stages named layer<l>.<stage>."""
    before, layer, after = call_parts(plan, plan.batch if tokens is None else tokens)
    return before + [replace(s, name=f"layer{l}.{s.name}") for l in range(plan.layers) for s in layer] + after


# ----------------------------------------------------------------------------- the weight FIFO
def run_phases(stages: list[Stage], rate: float, depth: float, latency: float) -> tuple[float, float]:
    """(cycles, cycles the compute waited for weights) of one call, as a fluid model.

    The streamer fills the lane FIFO at `rate` bytes per cycle (at most a lane per cycle of the
    engine it streams for) from `latency` cycles after the call starts, and stops while the FIFO
    holds `depth` bytes.  The compute runs the stages in order; a BitLinear's MVU takes its bytes
    evenly over its cycles and waits when the FIFO runs dry.  `level` is the FIFO's fill in bytes
    (negative while the first word is in flight)."""
    upcoming = [s for s in stages if s.weight_bytes]
    t, waited = 0.0, 0.0
    level = -upcoming[0].feeding(rate) * latency if upcoming else 0.0
    for stage in stages:
        feeding = upcoming[0].feeding(rate) if upcoming else 0.0    # what the streamer writes now
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
    """Calls of `batch` tokens, one after another.  The same call serves batched decode (one token
    of each of `batch` sequences) and prefill (a block of `batch` tokens of one prompt)."""
    batch: int                              # tokens per call
    cycles_per_call: float
    clock_mhz: float
    offchip_bytes_per_call: int             # the weights once, an embedding row per token
    compute_cycles: float                   # the call's stages with their weights always there
    memory_cycles: float                    # the call's weights at the ports' bandwidth, plus the latency and
                                            # every stream_weights call's dead cycles
    ceiling_tokens_per_s: float | None      # achievable bandwidth / off-chip bytes per token at this batch
    nominal_ceiling_tokens_per_s: float | None = None   # the same at the data-sheet bandwidth

    @property
    def calls_per_s(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_call

    @property
    def per_sequence_tokens_per_s(self) -> float:
        """Batched decode: each sequence gets one token per call."""
        return self.calls_per_s

    @property
    def decode_tokens_per_s(self) -> float:
        """Batched decode, all `batch` sequences together (batch 1: one sequence)."""
        return self.batch * self.calls_per_s

    @property
    def prefill_tokens_per_s(self) -> float:
        """One prompt in blocks of `batch` tokens: the same calls as batched decode."""
        return self.decode_tokens_per_s

    @property
    def cycles_per_token(self) -> float:
        return self.cycles_per_call / self.batch

    @property
    def offchip_bytes_per_token(self) -> float:
        return self.offchip_bytes_per_call / self.batch

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


def estimate(plan: HardwarePlan, tokens: int | None = None) -> Performance:
    """Calls of `tokens` tokens (None: the plan's batch; 1: one sequence decoding alone)."""
    n = plan.batch if tokens is None else tokens
    before, layer, after = call_parts(plan, n)
    stages = before + layer * plan.layers + after    # one layer's stages shared: explore estimates thousands
    weight_bytes = sum(s.weight_bytes for s in stages)
    if plan.offchip:
        rate, latency = weight_bytes_per_cycle(plan), M_AXI_LATENCY
        memory = plan.board.memory_of(plan.weights_place)
        offchip = weight_bytes + n * embed_words(plan) * M_AXI_BYTES_PER_CYCLE   # and each token's embedding row
        ceiling = memory.achievable_total_gbps(plan.clock_mhz) * 1e9 * n / offchip
        nominal = memory.bandwidth_gbps * 1e9 * n / offchip
    else:
        rate, latency, offchip, ceiling, nominal = float("inf"), ROM_LATENCY, 0, None, None   # a ROM keeps up with any MVU
    cycles, _ = run_phases(stages, rate, prefetch_bytes(plan), latency)
    return Performance(batch=n, cycles_per_call=cycles, clock_mhz=plan.clock_mhz, offchip_bytes_per_call=offchip,
                       compute_cycles=sum(s.compute_cycles for s in stages),
                       memory_cycles=latency + weight_bytes / rate + sum(s.stream_overhead for s in stages),
                       ceiling_tokens_per_s=ceiling, nominal_ceiling_tokens_per_s=nominal)


# ----------------------------------------------------------------------------- the RTL core (ECP5)
# The whole accelerator as one RTL core (hlsgen/project/rtl_core.py, on an ECP5 board) runs a token
# as a program of stages, one after another:
#   - the embedding, a pass of one element per cycle through a fixed pipeline;
#   - a quantiser: one pass of its codes (up to four a cycle, RTL_QUANTISER_LANES) and, beside it,
#     its output scale: a square root, multiply and division two bits a cycle, a fixed number of
#     cycles set by the widths; i, f and g's three at once;
#   - an MVU folds rows/PE x cols/SIMD; each beat of PE sums is rescaled a lane per cycle (the next
#     beat taken on the last lane), so a beat takes the longer of cols/SIMD and PE, and the last
#     beat's PE lanes drain after the MVU. i, f and g's run together.
# What follows fuses into the stage that makes its input, as the values come: the RMSNorms (after
# the embedding and the residuals of o and down), the MLGRU (after the i/f/g MVUs), the GLU (after
# the gate MVU's up rows); each adds its pipeline's drain. The stage that writes a BitLinear's input
# x gathers its quantiser's statistics (max |y|, sum of squares) on the way, through a tap on the
# write bus, which drains after it.
# The overheads were measured per stage (serial_sim.stage_cycles, the sequencer's pc cycle by cycle)
# on the shipped tiny model and random ones; tests/test_open_board.py requires every stage to equal
# the model (H = 64, 48, 32), bench/bench_open_board.py compares the totals with `hlsgen cosim --whole`.
RTL_PASS_OVERHEAD = 3        # an element pass beyond its elements and its pipeline: fetch, init, the end
# The pipeline stage each kind of pass writes from (templates/rtl/core.v.j2's LAST_*): it drains to there.
RTL_LAST_STAGE = {"embed": 3, "quantise": 12}
RTL_TAP_DRAIN = 5            # a pass that writes x beyond its pipeline: its last write, then the statistics tap
RTL_CODES_EXTRA = 1          # the codes pass beyond an element pass: the scale handed over
RTL_SCALE_OVERHEAD = 11      # the output scale beyond its steps: start, the states' hand-overs, 3 den, the write
RTL_NORM_FUSED = 8           # an MVU with a fused RMSNorm beyond one without: its product, then the tap
RTL_MLGRU_FUSED = 25         # the i/f/g MVUs with the MLGRU fused beyond one MVU: its pipeline, the tap
RTL_GLU_FUSED = 14           # the gate's MVU with the GLU fused beyond one without: the GLU's pipeline, the tap
RTL_MVU_OVERHEAD = 6         # an MVU beyond its folds, its pipeline and its last beat: fetch, init, start, drain
RTL_ARGMAX = 1               # the lm_head beyond an MVU: the argmax's last compare
RTL_QUANTISER_LANES = 4      # codes a cycle in a quantiser's pass, where every size allows


def rtl_quantiser_lanes(plan: HardwarePlan) -> int:
    """Codes per cycle of the RTL core's quantiser pass: the most, up to RTL_QUANTISER_LANES (a power
    of two), that every vector it reads and every MVU's SIMD word hold whole groups of."""
    sizes = [plan.hidden, plan.inner, plan.intermediate] + [b.simd for b in plan.bitlinears]
    lanes = RTL_QUANTISER_LANES
    while any(n % lanes for n in sizes):
        lanes //= 2
    return lanes


def rtl_core_width(plan: HardwarePlan, field: str) -> int:
    """A width of the RTL core's shared units (one scale unit, one rescale): the widest BitLinear's."""
    return max(getattr(b, field) for b in plan.bitlinears)


def rtl_divider_width(plan: HardwarePlan) -> int:
    """The core's one divider: the sum of squares by K, and the scale's numerator by its denominator."""
    return max(rtl_core_width(plan, field) for field in ("num_width", "sumsq_width", "root_width"))


def rtl_scale_cycles(plan: HardwarePlan, cols: int) -> int:
    """A quantiser's output scale in the RTL core, two bits a cycle: the mean sum v^2 / K (a shift
    when K is a power of two, else the divider), the square root (two bit pairs a cycle) with
    m * beta beside it, then the divider for the scale's own bits (the rest is its saturation)."""
    def halves(bits):
        return -(-bits // 2)
    div_w = rtl_divider_width(plan)
    mean = 0 if cols & (cols - 1) == 0 else halves(div_w) + 1      # + the cycle that forms 3 K
    root_and_product = max(halves(rtl_core_width(plan, "root_width") // 2),
                           halves(rtl_core_width(plan, "beta_width")) - 1)
    return RTL_SCALE_OVERHEAD + mean + root_and_product + halves(plan.numerics["scale_width"])


def rtl_core_stages(plan: HardwarePlan) -> list[tuple[str, int]]:
    """(stage, cycles) of one token through the RTL core, in program order."""
    H, D, I = plan.hidden, plan.inner, plan.intermediate

    def element(n, op):
        return n + RTL_PASS_OVERHEAD + RTL_LAST_STAGE[op] + (RTL_TAP_DRAIN if op != "quantise" else 0)

    def quantise(layer, kind, cols):
        codes = element(cols // rtl_quantiser_lanes(plan), "quantise") + RTL_CODES_EXTRA
        return (f"{layer}{kind}.quantise", max(codes, rtl_scale_cycles(plan, cols)))

    def mvu(name, kind, norm=False, glu=False, mlgru=False):
        b = plan.bitlinear(kind)
        beats, per_beat = b.rows // b.pe, max(b.cols // b.simd, b.pe)
        cycles = beats * per_beat + b.pe + mvu_pipeline_stages(b) + MVU_OUTPUT_CYCLES + RTL_MVU_OVERHEAD
        return (name, cycles + (RTL_ARGMAX if kind == "lm_head" else 0) + (RTL_NORM_FUSED if norm else 0)
                + (RTL_GLU_FUSED if glu else 0) + (RTL_MLGRU_FUSED if mlgru else 0))

    def bitlinear(layer, kind, cols, norm=False, glu=False):
        return [quantise(layer, kind, cols), mvu(f"{layer}{kind}", kind, norm, glu)]

    # every RMSNorm is fused into the stage that writes its input: the embedding, o and down; the
    # GLU into the gate's MVU; the MLGRU into the i/f/g MVUs
    stages = [("embedding", element(H, "embed"))]
    for l in range(plan.layers):
        at = f"layer{l}."
        # i, f and g read one x and have one shape: one quantise stage, then their MVUs together
        # with the MLGRU
        stages += [quantise(at, "i/f/g", H), mvu(at + "i/f/g+mlgru", "i", mlgru=True)]
        stages += bitlinear(at, "o", D, norm=True)
        stages += bitlinear(at, "gate", H, glu=True)
        stages += bitlinear(at, "down", I, norm=True)
    stages += bitlinear("", "lm_head", H)
    return stages


def rtl_core_cycles_per_token(plan: HardwarePlan) -> int:
    """The RTL core runs one token at a time: prefill and decode take the same cycles per token
    (the whole-model cosim's count, from the cycle after `start` to `done`: the stages' sum)."""
    return sum(cycles for _, cycles in rtl_core_stages(plan))


def rtl_core_split(plan: HardwarePlan) -> dict:
    """A token's cycles by kind of stage: the embedding, the quantisers, the MVUs (with what is fused
    into them: the MLGRU, the GLU, the norms)."""
    split = {"embedding": 0, "quantisers": 0, "mvu": 0}
    for name, cycles in rtl_core_stages(plan):
        split["embedding" if name == "embedding" else "quantisers" if name.endswith(".quantise") else "mvu"] += cycles
    return split
