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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .planner import BitLinearPlan, HardwarePlan

SELECT_BITS = 9               # a ternary term: +x, -x or 0 of an int8 code, as 9 bits
CODE_STEPS = 7                # code_magnitude: a 7-step restoring division per SIMD lane
DSP_A, DSP_B = 27, 18         # the DSP48E2 multiplier (signed 27 x 18)
KERNEL_CONTROL = {"lut": 400, "ff": 600, "dsp": 0}       # loop counters, FIFO control, per BitLinear
# The rest of the top: RMSNorm, MLGRU, GLU, residuals, argmax, the sigmoid interpolation.
FIXED = {"lut": 8000, "ff": 10000, "dsp": 24}
# One Vitis HLS m_axi adapter at 512 bits with read bursts; the s_axilite control slave.
M_AXI_PORT = {"lut": 1500, "ff": 2500, "dsp": 0}
S_AXILITE = {"lut": 300, "ff": 400, "dsp": 0}


def add(*parts: dict) -> dict:
    return {key: sum(p[key] for p in parts) for key in ("lut", "ff", "dsp")}


def multiplier_dsps(a_bits: int, b_bits: int) -> int:
    """DSP slices of one a x b multiplier split into DSP-sized partial products."""
    return math.ceil(a_bits / DSP_A) * math.ceil(b_bits / DSP_B)


def mvu_resources(b: BitLinearPlan) -> dict:
    """The ternary matrix-vector unit: per lane a select of +x / -x / 0 and its share of the PE's
    balanced adder tree (acc_width bits per adder, registered at II=1); per PE an accumulator."""
    lanes = b.pe * b.simd
    tree_adders = b.pe * (b.simd - 1)
    adder_bits = (tree_adders + b.pe) * b.acc_width
    return {"lut": lanes * SELECT_BITS + adder_bits, "ff": adder_bits, "dsp": 0}


def quantiser_resources(b: BitLinearPlan, numerics: dict) -> dict:
    """RMSNorm-folded int8 quantiser, SIMD lanes wide: y = v * gamma in both passes and v * v,
    |y|, the running max, and the code division; plus the per-token scale (sequential divider and
    square root)."""
    lane_lut = CODE_STEPS * (b.y_width + 9) + 2 * b.y_width
    lane_dsp = 2 * multiplier_dsps(b.in_width, numerics["gamma_width"]) + multiplier_dsps(b.in_width, b.in_width)
    scale_lut = 4 * (b.num_width + b.root_width)
    return {"lut": b.simd * lane_lut + scale_lut, "ff": b.simd * lane_lut // 2 + 2 * b.num_width,
            "dsp": b.simd * lane_dsp}


def bitlinear_resources(b: BitLinearPlan, numerics: dict) -> dict:
    """One BitLinear instance: quantiser, weight streamer, MVU and the rescale multiply."""
    streamer = {"lut": b.lane_word_bits, "ff": b.lane_word_bits + b.lane_bits, "dsp": 0}
    rescale = {"lut": numerics["act_width"] * 2, "ff": b.pe * b.acc_width,
               "dsp": multiplier_dsps(b.acc_width, numerics["scale_width"])}
    return add(quantiser_resources(b, numerics), streamer, mvu_resources(b), rescale, KERNEL_CONTROL)


def design_resources(plan: HardwarePlan, bitlinears=None) -> dict:
    """The whole top function; `bitlinears` overrides the plan's (to try other foldings)."""
    parts = [bitlinear_resources(b, plan.numerics) for b in (bitlinears or plan.bitlinears)]
    ports = [M_AXI_PORT] * len(plan.memory_ports)
    return add(FIXED, S_AXILITE, *parts, *ports)
