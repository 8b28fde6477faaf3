"""The analytic performance model (hlsgen/hardware/perf.py) against closed-form values."""

from dataclasses import replace

import pytest
import yaml

from hlsgen.hardware import engines
from hlsgen.hardware import estimate
from hlsgen.hardware import perf
from hlsgen.hardware import planner
from hlsgen.model import spec


def make_plan(tmp_path, *, pe=4, simd=8, place="onchip", board="u280", hidden=64, layers=2, inter=128, vocab=256,
              packing="2bit", qsimd=None):
    quantisers = {} if qsimd is None else {"quantiser_simd": qsimd, "lm_head_quantiser_simd": qsimd}
    config = {"model": {"vocab": vocab, "hidden": hidden, "layers": layers, "intermediate_size": inter},
              "weights": {"random": {"seed": 0}},
              "hardware": {"board": board, "weights": place, "packing": packing,
                           "parallelism": {"pe": pe, "simd": simd, "lm_head_pe": pe, "lm_head_simd": simd,
                                           **quantisers}},
              "project": {"name": "perf_top", "output": "out"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return planner.plan(spec.load(path))


def test_bitlinear_cycles_closed_form(tmp_path):
    """MVU-bound: the folds outlast the codes, the scale and the rescale of the row folds."""
    p = make_plan(tmp_path)
    b, engine = p.bitlinear("gate"), p.engine_of("gate").config   # 256 x 64 at 4 x 8
    folds = (256 // 4) * (64 // 8)
    scale = engine.sumsq_width + engine.root_width // 2 + engine.num_width
    assert folds > 64 // 8 + scale + 256 // 4
    assert perf.bitlinear_compute_cycles(b, engine) == 64 // 8 + folds + 3 * perf.PIPELINE_FILL


def test_scale_bound_bitlinear_closed_form(tmp_path):
    """All columns in one cycle: the rescale waits for the scale, then drains rows / PE folds."""
    p = make_plan(tmp_path, pe=4, simd=64)
    b, engine = p.bitlinear("gate"), p.engine_of("gate").config   # 256 x 64 at 4 x 64
    assert b.cycles_per_matrix == 256 // 4
    scale = engine.sumsq_width + engine.root_width // 2 + engine.num_width
    expected = 1 + (1 + scale + 256 // 4) + 3 * perf.PIPELINE_FILL
    assert perf.bitlinear_compute_cycles(b, engine) == expected


@pytest.mark.parametrize("qsimd", [1, 2, 4])
def test_narrow_quantiser_one_token_closed_form(tmp_path, qsimd):
    """One token: pass 1 (64 / QSIMD cycles), then the first row fold at the quantiser's pace
    (64 / QSIMD), the other 63 row folds at II=1 (8 cycles each)."""
    p = make_plan(tmp_path, qsimd=qsimd)
    b, engine = p.bitlinear("gate"), p.engine_of("gate").config   # 256 x 64 at 4 x 8
    assert (b.qsimd, engine.qsimd) == (qsimd, qsimd)
    scale = engine.sumsq_width + engine.root_width // 2 + engine.num_width
    assert 2 * 64 // qsimd + scale + 256 // 4 < 64 // qsimd + 64 // qsimd + 63 * 8
    expected = 64 // qsimd + 64 // qsimd + 63 * 8 + 3 * perf.PIPELINE_FILL
    assert perf.bitlinear_compute_cycles(b, engine) == expected
    assert perf.bitlinear_stage(p, b, "gate").lead == 64 // qsimd + perf.PIPELINE_FILL


@pytest.mark.parametrize("qsimd, tokens", [(2, 3), (1, 2), (8, 4)])
def test_narrow_quantiser_batched_closed_form(tmp_path, qsimd, tokens):
    """n tokens: the MVU starts after the n tokens' two passes of 64 / QSIMD cycles, then every
    fold over the n tokens."""
    p = make_plan(tmp_path, qsimd=qsimd)
    b, engine = p.bitlinear("gate"), p.engine_of("gate").config
    expected = 2 * tokens * (64 // qsimd) + tokens * (256 // 4) * (64 // 8) + 3 * perf.PIPELINE_FILL
    assert perf.bitlinear_compute_cycles(b, engine, tokens) == expected
    assert perf.mvu_start(b, tokens) == 2 * tokens * (64 // qsimd)


def test_narrow_quantiser_scale_bound_closed_form(tmp_path):
    """All 64 columns in one MVU cycle, the quantiser 8 lanes wide: the scale waits for both
    passes (2 x 8 cycles), then the rescale drains rows / PE folds."""
    p = make_plan(tmp_path, pe=4, simd=64, qsimd=8)
    b, engine = p.bitlinear("gate"), p.engine_of("gate").config
    scale = engine.sumsq_width + engine.root_width // 2 + engine.num_width
    assert perf.bitlinear_compute_cycles(b, engine) == 2 * 8 + scale + 256 // 4 + 3 * perf.PIPELINE_FILL


def test_narrow_quantiser_costs_fewer_luts_and_a_packet_register(tmp_path):
    """The quantiser's lanes scale with QSIMD; a narrower one adds the SIMD-byte packet register."""
    full, narrow = (make_plan(tmp_path, pe=4, simd=32, qsimd=q).engine_of("gate").config for q in (32, 4))
    n = make_plan(tmp_path).numerics
    wide_q, narrow_q = estimate.quantiser_resources(full, n), estimate.quantiser_resources(narrow, n)
    lane_lut = estimate.code_lane_luts(full.y_width) + 2 * full.y_width
    assert wide_q["lut"] - narrow_q["lut"] == 28 * lane_lut - estimate.packet_resources(narrow)["lut"]
    assert estimate.packet_resources(full) == {"lut": 0, "ff": 0, "dsp": 0}
    assert estimate.packet_resources(narrow)["ff"] >= 8 * 32
    assert narrow_q["dsp"] * 8 == wide_q["dsp"]


def test_kinds_of_one_folding_share_one_engine_sized_for_the_widest(tmp_path):
    p = make_plan(tmp_path, pe=4, simd=8)
    assert [e.kinds for e in p.engines] == [("i", "f", "g", "o", "gate", "down", "lm_head")]
    engine = p.engines[0].config
    for field in ("rows", "cols", "acc_width", "num_width", "in_width"):
        assert getattr(engine, field) == max(getattr(b, field) for b in p.bitlinears)


def test_one_folding_with_two_quantiser_widths_is_two_engines(tmp_path):
    """The quantiser is part of an engine's hardware: the lm_head at the layers' PE x SIMD but with
    a narrower quantiser gets an engine of its own."""
    p = make_plan(tmp_path, qsimd=2)          # layers and lm_head at 4 x 8, quantisers 2 wide
    assert [(e.kinds, e.config.qsimd) for e in p.engines] == [(("i", "f", "g", "o", "gate", "down", "lm_head"), 2)]
    split = [replace(b, quantiser_simd=1) if b.kind == "lm_head" else b for b in p.bitlinears]
    assert [(e.name, e.kinds[-1], e.config.qsimd) for e in engines.group(split)] == [("layer", "down", 2),
                                                                                  ("head", "lm_head", 1)]


@pytest.mark.parametrize("pe", [1, 8, 64])
def test_elementwise_stages_take_one_packet_per_cycle(tmp_path, pe):
    """n / E cycles plus the fill, E = the PE of the BitLinear feeding the stage (the embedding
    and the argmax: test_m_axi_ends_move_a_word_per_cycle)."""
    p = make_plan(tmp_path, pe=pe, simd=1)
    fill, E = perf.PIPELINE_FILL, pe
    cycles = {s.name: s.compute_cycles for s in perf.call_stages(p)}
    for l in range(p.layers):
        assert cycles[f"layer{l}.attn_norm"] == cycles[f"layer{l}.mlp_norm"] == p.hidden // E + fill
        assert cycles[f"layer{l}.mlgru"] == p.inner // E + fill
        assert cycles[f"layer{l}.residual_attn"] == cycles[f"layer{l}.residual_mlp"] == p.hidden // E + fill
        assert cycles[f"layer{l}.glu"] == 2 * p.intermediate // E + fill
    assert cycles["final_norm"] == p.hidden // E + fill


@pytest.mark.parametrize("place", ["onchip", "hbm"])
@pytest.mark.parametrize("pe, hidden, vocab", [(1, 64, 256), (8, 64, 256), (16, 64, 256), (64, 64, 256),
                                               (8, 40, 200), (4, 40, 200)])
def test_m_axi_ends_move_a_word_per_cycle(tmp_path, place, pe, hidden, vocab):
    """The argmax writes a 512-bit word of 16 logits per iteration, at II = 16 / P for lm_head
    packets of P < 16 logits (the packets of a word, one per cycle), II = 1 for wider ones: ceil(V /
    16) words (the last one's II too: V / P rounded up to whole words); the off-chip embedding reads
    its row's words (a word more when rows straddle words, H = 40) in one burst, then unpacks them
    (a second pipelined loop); the on-chip ROM 16 entries per cycle, from 16 banks."""
    p = make_plan(tmp_path, pe=pe, simd=8, place=place, hidden=hidden, vocab=vocab)
    cycles = {s.name: s.compute_cycles - perf.PIPELINE_FILL for s in perf.call_stages(p)}
    words = -(-vocab // 16)
    assert cycles["argmax"] == words * {1: 16, 4: 4, 8: 2, 16: 1, 64: 1}[pe]
    row_words = {64: 4, 40: 3 + (place == "hbm")}[hidden]
    embed = {"onchip": row_words, "hbm": 2 * row_words + perf.PIPELINE_FILL}[place]
    assert cycles["embed"] == embed
    if place == "hbm":
        assert perf.estimate(p).offchip_bytes_per_token == sum(s.weight_bytes for s in perf.call_stages(p)) + 64 * row_words


def test_token_cycles_are_the_sum_of_the_stages(tmp_path):
    p = make_plan(tmp_path)
    stages = perf.call_stages(p)
    assert len(stages) == 1 + p.layers * 12 + 3     # embed; 12 per layer; norm, lm_head, argmax
    assert perf.estimate(p).cycles_per_token == sum(s.compute_cycles for s in stages)
    assert perf.estimate(p).ceiling_tokens_per_s is None           # on chip: no bandwidth ceiling


def test_offchip_bytes_per_token_count_every_weight_word_once(tmp_path):
    p = make_plan(tmp_path, place="hbm")
    e = perf.estimate(p)
    assert e.offchip_bytes_per_token == sum(b.words * b.lane_word_bits // 8 for b in p.bitlinears) + p.hidden // 16 * 64
    hbm = p.board.memory_of("hbm")
    # The ceiling at the achievable 425 GB/s (Shuhai), the nominal 460 GB/s beside it.
    assert e.ceiling_tokens_per_s == pytest.approx(425e9 / e.offchip_bytes_per_token)
    assert e.nominal_ceiling_tokens_per_s == pytest.approx(hbm.bandwidth_gbps * 1e9 / e.offchip_bytes_per_token)
    assert 0 < e.fraction_of_ceiling <= 1


@pytest.mark.parametrize("place", ["onchip", "hbm"])
def test_more_lanes_never_mean_fewer_tokens_per_second(tmp_path, place):
    rates = [perf.estimate(make_plan(tmp_path, pe=pe, simd=simd, place=place)).decode_tokens_per_s
             for pe, simd in [(1, 1), (1, 2), (2, 2), (2, 4), (4, 4), (4, 8), (8, 8), (8, 32), (16, 32), (32, 32),
                              (32, 64)]]
    assert rates == sorted(rates)


@pytest.mark.parametrize("pe, simd, stripes", [(8, 8, 1), (16, 32, 2), (32, 64, 8)])
def test_weight_transfer_uses_every_stripe_closed_form(tmp_path, pe, simd, stripes):
    """A BitLinear's transfer: its lane words at the stripes' bandwidth (each stripe on an HBM
    pseudo-channel of its own: at most one 512-bit word per cycle), plus the fill and drain of the
    streamer's loops for this matrix."""
    p = make_plan(tmp_path, pe=pe, simd=simd, place="hbm")
    assert p.stripes == stripes
    hbm = p.board.memory_of("hbm")
    # Bytes per cycle: a pseudo-channel's nominal 14.375 GB/s at the measured efficiency, 425 / 460.
    per_stripe = min(64, hbm.gbps_each * 425 / 460 * 1e9 / (p.clock_mhz * 1e6))
    b = p.bitlinear("gate")
    nbytes = b.rows * b.cols * 2 // 8
    stage = perf.bitlinear_stage(p, b, "gate")
    assert stage.weight_bytes == nbytes
    overhead = perf.PIPELINE_FILL
    assert stage.memory_cycles == pytest.approx(nbytes / (stripes * per_stripe) + overhead)


@pytest.mark.parametrize("pe, simd, stripes", [(1, 1, 1), (8, 8, 1), (16, 32, 2)])
def test_5trit_packing_reads_the_packed_bytes_closed_form(tmp_path, pe, simd, stripes):
    """5 trits per byte: each stripe's codes of a matrix in ceil(codes / 320) words; the streamer
    takes a fold's codes at 1.6 bits each per cycle; the ceiling is the bandwidth over those bytes."""
    p = make_plan(tmp_path, pe=pe, simd=simd, place="hbm", packing="5trit")
    assert p.stripes == stripes
    b = p.bitlinear("gate")
    words = -(-b.rows * b.cols // stripes // 320)
    stage = perf.bitlinear_stage(p, b, "gate")
    assert stage.weight_bytes == words * stripes * 64
    assert stage.lane_bytes == pe * simd * 1.6 / 8
    e, two_bit = perf.estimate(p), perf.estimate(make_plan(tmp_path, pe=pe, simd=simd, place="hbm"))
    packed = sum(-(-c.rows * c.cols // stripes // 320) * stripes * 64 * c.matrices for c in p.bitlinears)
    assert e.offchip_bytes_per_token == packed + p.hidden // 16 * 64
    assert e.ceiling_tokens_per_s == pytest.approx(p.board.memory_of("hbm").achievable_gbps * 1e9 / e.offchip_bytes_per_token)
    assert e.ceiling_tokens_per_s > two_bit.ceiling_tokens_per_s


# ----------------------------------------------------------------------------- the weight FIFO
def gap(cycles):
    return perf.Stage("gap", cycles)


def mvu(cycles, nbytes, lead=0, lane_bytes=1e9):
    return perf.Stage("mvu", cycles, nbytes, lead=lead, lane_bytes=lane_bytes)


@pytest.mark.parametrize("g, c, nbytes, rate", [(100, 50, 1000, 4.0), (100, 500, 1000, 4.0), (0, 10, 640, 64.0)])
def test_a_streamer_running_ahead_overlaps_the_gap(g, c, nbytes, rate):
    """Deep FIFO, no latency: the streamer works from cycle 0, so the token takes the longer of
    compute (gap + MVU) and the whole transfer."""
    cycles, waited = perf.run_phases([gap(g), mvu(c, nbytes)], rate, depth=1e12, latency=0)
    assert cycles == pytest.approx(max(g + c, nbytes / rate))
    assert waited == pytest.approx(max(0.0, nbytes / rate - g - c))


def test_a_shallow_fifo_limits_how_far_the_streamer_runs_ahead():
    cycles, _ = perf.run_phases([gap(100), mvu(50, 1000)], rate=4.0, depth=40, latency=0)
    assert cycles == pytest.approx(100 + (1000 - 40) / 4.0)


def test_the_first_words_arrive_after_the_latency():
    cycles, waited = perf.run_phases([mvu(10, 640)], rate=64.0, depth=1e12, latency=64)
    assert (cycles, waited) == (pytest.approx(64 + 10), pytest.approx(64))
    # Work before the first MVU hides it.
    assert perf.run_phases([gap(80), mvu(10, 640)], 64.0, 1e12, 64)[0] == pytest.approx(80 + 10)


def test_the_streamer_writes_at_most_a_lane_per_cycle():
    """A narrow engine: lanes of 8 bytes, so the streamer brings 8 bytes per cycle however fast the memory."""
    cycles, _ = perf.run_phases([mvu(100, 1600, lane_bytes=8)], rate=64.0, depth=1e12, latency=0)
    assert cycles == pytest.approx(1600 / 8)


def test_offchip_memory_bound_designs_overlap_everything_but_the_latency(tmp_path):
    """ZCU104, 1024 lanes on its four HP ports: the token takes its transfer plus at most the
    compute that the FIFO cannot hide; the model's own figure, within 3% of the ceiling here."""
    p = make_plan(tmp_path, pe=16, simd=64, place="ddr", board="zcu104", hidden=1024, layers=2, inter=2048, vocab=1024)
    e = perf.estimate(p)
    assert e.bound == "memory" and p.stripes == 4
    assert e.memory_cycles <= e.cycles_per_token < e.memory_cycles + e.compute_cycles
    assert e.fraction_of_ceiling >= 0.97


# ----------------------------------------------------------------------------- calls of n tokens (hardware.batch)
def test_batched_bitlinear_call_closed_form(tmp_path):
    """n > 1 tokens: the quantiser runs 2 passes of cols / SIMD per token, then the MVU runs every
    weight fold over the n tokens, so rows / PE x cols / SIMD x n cycles, reading the weights once."""
    p = make_plan(tmp_path)
    b = p.bitlinear("gate")                                       # 256 x 64 at 4 x 8
    one = perf.bitlinear_stage(p, b, "gate", tokens=1)
    for n in (2, 5, 16):
        stage = perf.bitlinear_stage(p, b, "gate", tokens=n)
        assert stage.lead == n * 2 * 8 + perf.PIPELINE_FILL
        assert stage.compute_cycles == n * 2 * 8 + n * 64 * 8 + 3 * perf.PIPELINE_FILL
        assert stage.weight_bytes == one.weight_bytes == 256 * 64 * 2 // 8
        assert stage.memory_cycles == one.memory_cycles


def test_batched_bitlinear_call_waits_for_the_last_tokens_scale(tmp_path):
    """All columns in one fold: the MVU would be done before the last token's scale; the rescale
    takes the packets in order (token innermost), so it ends the scale's latency after the codes
    plus every packet from the last token's first: n x rows / PE - (n - 1)."""
    p = make_plan(tmp_path, pe=4, simd=64)
    b, engine = p.bitlinear("gate"), p.engine_of("gate").config   # 256 x 64 at 4 x 64
    scale = engine.sumsq_width + engine.root_width // 2 + engine.num_width
    n = 2
    assert n * 2 * 1 + n * 64 < n * 2 * 1 + scale                # the MVU's folds end before the scale
    expected = n * 2 * 1 + scale + (n * 64 - (n - 1)) + 3 * perf.PIPELINE_FILL
    assert perf.bitlinear_compute_cycles(b, engine, n) == expected


@pytest.mark.parametrize("place", ["onchip", "hbm"])
def test_a_call_of_n_tokens_closed_form(tmp_path, place):
    """Outside the BitLinears every stage takes n times a token's cycles; the call reads the
    weights once and n embedding rows; the block rate is clock / cycles per call, and decode (n
    sequences together) and prefill (a block of n) both deliver n tokens per call."""
    p = make_plan(tmp_path, place=place)
    single = {s.name: s for s in perf.call_stages(p, 1)}
    for n in (2, 7, 16):
        stages = perf.call_stages(p, n)
        assert [s.name for s in stages] == list(single)
        for s in stages:
            if not s.weight_bytes:
                assert s.compute_cycles == n * single[s.name].compute_cycles
        e = perf.estimate(p, n)
        assert e.batch == n
        weights = sum(b.words * b.lane_word_bits // 8 for b in p.bitlinears)
        if place == "onchip":
            assert e.cycles_per_call == sum(s.compute_cycles for s in stages)
            assert e.offchip_bytes_per_call == 0 and e.ceiling_tokens_per_s is None
        else:
            assert e.offchip_bytes_per_call == weights + n * (p.hidden // 16) * 64
            bandwidth = p.board.memory_of("hbm").achievable_gbps * 1e9
            assert e.ceiling_tokens_per_s == pytest.approx(bandwidth / ((weights + n * p.hidden // 16 * 64) / n))
        clock = p.clock_mhz * 1e6
        assert e.per_sequence_tokens_per_s == pytest.approx(clock / e.cycles_per_call)
        assert e.decode_tokens_per_s == e.prefill_tokens_per_s == pytest.approx(n * clock / e.cycles_per_call)


def test_batch_1_is_the_single_token_model(tmp_path):
    """A batch-1 plan's default call is one token, and one token per call on any design is
    today's decode: the weights streamed per token, no codes buffered."""
    p = make_plan(tmp_path, place="hbm")
    assert p.batch == 1 and perf.estimate(p) == perf.estimate(p, 1)
    e = perf.estimate(p)
    assert e.cycles_per_token == e.cycles_per_call and e.offchip_bytes_per_token == e.offchip_bytes_per_call
    b, engine = p.bitlinear("gate"), p.engine_of("gate").config
    assert perf.bitlinear_stage(p, b, "gate").lead == 64 // 8 + perf.PIPELINE_FILL
    batched = replace(p, batch=8)
    assert perf.estimate(batched, 1) == e and perf.estimate(batched).batch == 8


SHAPE_2_7B = {"hidden": 2560, "layers": 32, "inter": 6912, "vocab": 32000}


# At the achievable bandwidth (boards/*.yaml); 128 x 128 on the u280 is an engine larger than one
# SLR since issue 13, so 64 x 128 with 16-lane quantisers.
@pytest.mark.parametrize("board, place, pe, simd, packing, qsimd, memory_bound_up_to",
                         [("u250", "ddr", 64, 128, "2bit", None, 8), ("u280", "hbm", 64, 128, "2bit", 16, 1)])
def test_batching_a_memory_bound_design_never_costs_tokens_per_second(tmp_path, board, place, pe, simd, packing,
                                                                      qsimd, memory_bound_up_to):
    """While the weights bound the call, n tokens per pass bring n times the tokens of one (the
    ceiling at batch n is nearly n times batch 1's); past that, the design turns compute-bound
    (each token still needs all its MVU folds) and more batch gains little, but never loses."""
    p = make_plan(tmp_path, pe=pe, simd=simd, place=place, board=board, packing=packing, qsimd=qsimd, **SHAPE_2_7B)
    runs = [perf.estimate(p, n) for n in range(1, 17)]
    assert [e.bound for e in runs] == ["memory"] * memory_bound_up_to + ["compute"] * (16 - memory_bound_up_to)
    rates = [e.decode_tokens_per_s for e in runs]
    assert rates == sorted(rates)
    for n, e in enumerate(runs[:memory_bound_up_to], start=1):
        assert e.fraction_of_ceiling >= 0.95
        assert e.decode_tokens_per_s >= 0.95 * n * runs[0].decode_tokens_per_s


def test_batch_adds_accumulators_and_scales(tmp_path):
    """Per engine: batch x PE accumulators of acc_width bits in a rotating chain (a 2:1 multiplexer
    per bit), batch scales in the rescale; batch 1 adds nothing."""
    p = make_plan(tmp_path)                              # one engine for every kind
    acc = max(b.acc_width for b in p.bitlinears)
    base = estimate.design_resources(p)
    for batch in (2, 16):
        used = estimate.design_resources(replace(p, batch=batch))
        assert used["lut"] - base["lut"] == batch * 4 * acc
        assert used["ff"] - base["ff"] == (batch - 1) * 4 * acc + batch * p.numerics["scale_width"]
        assert used["dsp"] == base["dsp"]
