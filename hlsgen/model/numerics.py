"""The hardware numerics: every rounding and saturation of the fixed-point datapath, in one place.

All values are plain integers (numpy int64, or Python int for per-token scalars) with a known
number of fraction bits.  The HLS kernels (kernels_cpp/hlsgen_numerics.h) implement the very
same integer operations, so C-simulation matches this model bit for bit.  Plain integers were
chosen over a fixed-point library so that every shift and rounding is visible and is written
identically in both languages.

Conventions
- `rshift_round(x, s)`: x / 2**s rounded half up (floor(x / 2**s + 1/2)), arithmetic shift.
- `saturate(x, width)`: clamp to a signed `width`-bit range; every clamp is counted.
- Formats (see NumericsSpec below): activations `act` (F fraction bits), RMSNorm weights `gamma`
  (G), recurrent state `state` (S), sigmoid outputs unsigned with Q fraction bits (1.0 == 2**Q),
  and `mix` (Fin) for the small MLGRU output o and GLU product z, which only feed a BitLinear.
  A BitLinear's input v has Fin fraction bits (act.frac after a norm, mix.frac for o and z);
  its output always has F.

The datapath, per token
- RMSNorm in front of a BitLinear is folded into it: BitLinear is invariant to a per-token scale
  of its input, so `norm(h) -> BitLinear` becomes `v = h * gamma_norm` and the BitLinear's own
  per-token scale uses the RMS of v.  The same holds for the g_norm before o_proj.
- BitLinear(v, gamma, codes, beta):
    y    = v * gamma                                    exact (Fin + G fraction bits)
    m    = max|y|
    q    = sign(y) * floor((254 |y| + m) / (2 m))       = round_half_away(127 y / m), exactly
    acc  = sum q * code                                 exact integer, adds and subtracts only
    ms   = max(floor(sum v^2 / K), 1)                   no eps: see below
    r    = isqrt(ms * 4**guard)                         = sqrt(mean v^2) * 2**(Fin + guard)
    S    = round(m * beta * 2**(scale_frac + F + guard - beta_frac - G) / (127 r))  saturated, unsigned
    out  = saturate(rshift_round(acc * S, scale_frac), act.width)
  where beta = round(2**beta_frac / s_w) is the tensor's weight scale.  The reference adds
  rms_norm_eps to the mean square of a *normalised* vector, where it is negligible; here v is
  un-normalised (the norm was folded away), so adding eps to it would change the result.
- MLGRU, elementwise (sigma() has Q fraction bits, lb the lower bound in Q):
    f'   = lb + rshift_round((1 - lb) * sigma(f), Q)
    c    = rshift_round(rshift_round(i * sigma(i), F + Q - S) * (1 - f'), Q)       state units
    s    = saturate(rshift_round(f' * s, Q) + c, state.width)
    o    = saturate(rshift_round(rshift_round(g * g_norm, G) * rshift_round(s * sigma(s>>(S-F)), Q),
                                 F + S - Fin), mix.width)
- GLU: z = saturate(rshift_round(up * rshift_round(gate * sigma(gate), F + Q - Fin), F), mix.width)
- sigmoid(x): table of sigmoid(k 2**-step) for |x| < range, linear interpolation between
  entries, sigmoid(-x) = 1 - sigmoid(x).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FixedFormat:
    """A two's-complement integer with `frac` fraction bits, `width` bits in all."""
    width: int
    frac: int


@dataclass(frozen=True)
class NumericsSpec:
    """Every intermediate format of the hardware datapath (see this module's docstring)."""
    act: FixedFormat = FixedFormat(24, 12)      # residual stream, projection outputs, gates
    gamma: FixedFormat = FixedFormat(20, 12)    # RMSNorm weights
    mix: FixedFormat = FixedFormat(24, 18)      # MLGRU output o and GLU product z (small; feed a BitLinear only)
    state: FixedFormat = FixedFormat(32, 20)    # MLGRU recurrent state
    sigmoid_frac: int = 16                      # sigmoid output, unsigned, 1.0 == 2**frac
    sigmoid_range: int = 16                     # table covers |x| < range, saturates beyond
    sigmoid_step_bits: int = 7                  # table step 2**-step_bits, linear interpolation
    scale_frac: int = 24                        # per-token output scale of a BitLinear
    scale_width: int = 40
    beta_frac: int = 32                         # weight scale mean|W|
    rsqrt_guard: int = 8                        # extra bits of the per-token sqrt


def product_bits(n: NumericsSpec, max_width: int = 1 << 15) -> dict[str, int]:
    """Magnitude bits of every product in the datapath (the golden model computes in int64, the
    kernels in 64-bit ap_int; each must stay below 2**62 so that a rounding add cannot wrap)."""
    a, m, g, st, q = n.act.width - 1, n.mix.width - 1, n.gamma.width - 1, n.state.width - 1, n.sigmoid_frac + 1
    widest_in = max(a, m)
    silu_i = a + q - (n.act.frac + n.sigmoid_frac - n.state.frac)
    silu_gate = a + q - (n.act.frac + n.sigmoid_frac - n.mix.frac)
    return {
        "v * gamma": widest_in + g,
        "sum of v^2": 2 * widest_in + (max_width - 1).bit_length(),
        "acc * scale": 7 + (max_width - 1).bit_length() + n.scale_width,
        "forget * state": q + st,
        "silu(i) * (1 - forget)": silu_i + q,
        "state * sigmoid": st + q,
        "g_norm(g) * silu(state)": a + st,
        "up * silu(gate)": a + silu_gate,
    }


def rshift_round(x, shift: int):
    """x / 2**shift rounded half up; a left shift for negative `shift`."""
    if shift <= 0:
        return x << -shift
    return (x + (1 << (shift - 1))) >> shift


def to_fixed(values, frac: int) -> np.ndarray:
    """Constants (norm weights, lower bounds, embeddings) into fixed point, rounding half to even."""
    return np.rint(np.asarray(values, dtype=np.float64) * (1 << frac)).astype(np.int64)


def clamp_constant(x: np.ndarray, width: int) -> np.ndarray:
    """Constant tables (embeddings) clamp to `width` bits once, when the project is built."""
    return np.clip(x, -(1 << (width - 1)), (1 << (width - 1)) - 1)


def isqrt(n: int) -> int:
    """floor(sqrt(n)); the HLS side uses the bit-by-bit method, which computes the same."""
    return math.isqrt(n)


@dataclass(frozen=True)
class SigmoidTable:
    """sigmoid(k * 2**-step_bits) for k = 0 .. range * 2**step_bits, in Q0.out_frac."""
    values: np.ndarray
    in_frac: int
    out_frac: int
    step_bits: int
    range: int

    @classmethod
    def build(cls, n: NumericsSpec) -> "SigmoidTable":
        k = np.arange(n.sigmoid_range * (1 << n.sigmoid_step_bits) + 1, dtype=np.float64)
        table = np.rint((1 << n.sigmoid_frac) / (1 + np.exp(-k / (1 << n.sigmoid_step_bits))))
        return cls(table.astype(np.int64), n.act.frac, n.sigmoid_frac, n.sigmoid_step_bits, n.sigmoid_range)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        fine_bits = self.in_frac - self.step_bits             # input bits between table entries
        mag = np.minimum(np.abs(x), (self.range << self.in_frac) - 1)
        index = mag >> fine_bits
        fine = mag & ((1 << fine_bits) - 1)
        lo = self.values[index]
        hi = self.values[index + 1]
        y = lo + rshift_round((hi - lo) * fine, fine_bits)
        return np.where(x < 0, (1 << self.out_frac) - y, y)


class Saturations(Counter):
    """How many values each named saturation point clamped (a silent wrap is the classic HLS bug)."""

    def clamp(self, name: str, x: np.ndarray, width: int, signed: bool = True) -> np.ndarray:
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        clipped = np.clip(x, lo, hi)
        count = int(np.count_nonzero(clipped != x))
        if count:
            self[name] += count
        return clipped


def ternary_codes(y: np.ndarray) -> np.ndarray:
    """Per-row int8 codes round_half_away(127 y / max|y|), exactly, as integers (0 when y == 0)."""
    m = np.max(np.abs(y), axis=-1, keepdims=True)
    safe_m = np.maximum(m, 1)
    mag = (254 * np.abs(y) + safe_m) // (2 * safe_m)
    return np.where(m > 0, np.sign(y) * mag, 0)


def beta_fixed(scale: np.float32, n: NumericsSpec) -> int:
    """The weight scale 1/s_w as an integer with beta_frac fraction bits."""
    return int(round((1 << n.beta_frac) / float(scale)))


def output_scale(m: int, sumsq: int, width: int, beta: int, n: NumericsSpec) -> int:
    """S of one token (see the module docstring), before saturation.

    m = max|v * gamma| has Fin + gamma.frac fraction bits and sumsq = sum v^2 has 2 Fin; the
    result does not depend on Fin.  The output has act.frac.
    """
    r = isqrt(max(sumsq // width, 1) << (2 * n.rsqrt_guard))
    exponent = n.scale_frac + n.act.frac + n.rsqrt_guard - n.beta_frac - n.gamma.frac
    num = m * beta << max(exponent, 0)
    den = 127 * r << max(-exponent, 0)
    return (num + den // 2) // den
