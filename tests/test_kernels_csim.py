"""Each kernel of kernels_cpp/ alone, in C-simulation, against the numpy model, bit for bit.

The end-to-end csim only reaches the shapes, foldings and values of its example models; these
tests drive every kernel on odd shapes, every PE/SIMD folding up to 256 lanes, both weight
sources, three sets of numeric formats (scale exponent zero, negative and positive; left and
right rounding shifts; a sigmoid without interpolation) and the saturation corners.  All kernel
instances live in one C++ program (one compile, cached by content hash), plus a smaller one
built under the sanitizers; sim/kernel_harness.py runs them case by case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest

from conftest import require_tool

from hlsgen.model import golden
from hlsgen.model import numerics as nx
from hlsgen.model.numerics import FixedFormat, NumericsSpec
from hlsgen.model.weights import Projection
from sim.kernel_harness import BitLinear, Case, KernelProgram, Variant, build_all

# ----------------------------------------------------------------------------- numeric formats
BASE = NumericsSpec()                       # the defaults: scale exponent 0
# Small formats: everything saturates easily; scale exponent -8.
NARROW = NumericsSpec(act=FixedFormat(16, 8), gamma=FixedFormat(16, 10), mix=FixedFormat(16, 12),
                      state=FixedFormat(16, 12), sigmoid_frac=12, sigmoid_range=8, sigmoid_step_bits=4,
                      scale_frac=16, scale_width=20, beta_frac=24, rsqrt_guard=2)
# Scale exponent +12, no rsqrt guard bits, left shifts in the MLGRU and GLU (F + Q < S, F + Q < Fin)
# and a sigmoid table with one entry per input value (no interpolation).
SHIFTED = NumericsSpec(mix=FixedFormat(24, 22), state=FixedFormat(36, 30), sigmoid_frac=8, sigmoid_range=4,
                       sigmoid_step_bits=12, beta_frac=12, rsqrt_guard=0)

WEIGHT_SCALES = (0.37, 1.0, 2.9)            # s_w of the random cases
TINY_WEIGHT_SCALE = 1e-9                    # a beta that saturates the per-token scale
OUTPUT_SATURATING_SCALE = {"base": 1e-3, "narrow": 0.3}     # s_w that saturates outputs, not the scale
SOURCES = ("rom", "axi")


@dataclass(frozen=True)
class Shape:
    variant: str
    rows: int
    cols: int
    pe: int
    simd: int
    mix_input: bool = False
    packing: str = "2bit"
    batch: int = 1
    qsimd: int | None = None       # the quantiser's lanes (None: simd)

    @property
    def id(self) -> str:
        return (f"{self.variant}-{self.rows}x{self.cols}-pe{self.pe}-simd{self.simd}" + ("-mix" if self.mix_input else "")
                + ("-5trit" if self.packing == "5trit" else "") + (f"-batch{self.batch}" if self.batch > 1 else "")
                + (f"-qsimd{self.qsimd}" if self.qsimd else ""))


SHAPES = [
    Shape("base", 24, 40, 4, 8),
    Shape("base", 96, 12, 32, 4),           # 128 lanes
    Shape("base", 40, 12, 8, 4),            # 5*8 x 3*4
    Shape("base", 3, 5, 1, 1),              # odd primes, one lane
    Shape("base", 48, 32, 16, 16),          # 256 lanes: a whole 512-bit word per cycle
    Shape("base", 2, 256, 1, 256),          # 256 lanes, all SIMD
    Shape("base", 128, 6, 128, 2),          # 256 lanes, almost all PE
    Shape("base", 20, 36, 2, 4, mix_input=True),
    Shape("narrow", 24, 48, 4, 4),          # 48 columns: enough for the 16-bit output to saturate
    Shape("narrow", 12, 8, 2, 8, mix_input=True),
    Shape("shifted", 16, 24, 8, 8),
    Shape("base", 32, 64, 16, 32),          # 512 lanes: a lane word of two 512-bit stripes
    Shape("base", 16, 256, 4, 256),         # 1024 lanes: four stripes, four folds of the columns
]
# 5 trits per byte, 320 codes per word: a fold's start runs through the word in steps of its lanes.
TRIT_SHAPES = [
    Shape("base", 20, 36, 1, 1, packing="5trit"),       # 1 lane: 720 codes, the last word part-filled
    Shape("base", 3, 5, 1, 1, packing="5trit"),         # 15 codes: one part-filled word per matrix
    Shape("base", 24, 40, 4, 2, packing="5trit"),       # 8 lanes: 960 codes, three whole words
    Shape("base", 40, 12, 8, 4, packing="5trit"),       # 32 lanes: a fold ends on the word boundary
    Shape("base", 48, 32, 8, 8, packing="5trit"),       # 64 lanes: 4.8 words
    Shape("base", 48, 32, 16, 16, packing="5trit"),     # 256 lanes: folds span two words
    Shape("base", 32, 64, 16, 32, packing="5trit"),     # 512 lanes: two stripes of 1024 codes each
]
# Engines that run several tokens per call on one pass over the weights (rotating accumulators).
BATCH_SHAPES = [
    Shape("base", 24, 40, 4, 8, batch=3),
    Shape("base", 3, 5, 1, 1, batch=2),                  # one lane: each lane serves both tokens
    Shape("base", 20, 36, 2, 4, mix_input=True, batch=16),
    Shape("base", 32, 64, 16, 32, batch=4),              # two stripes
    Shape("base", 40, 12, 8, 4, packing="5trit", batch=2),
]
# A quantiser narrower than the MVU: each codes packet assembled over simd / qsimd cycles.
QUANTISER_SHAPES = [
    Shape("base", 24, 40, 4, 8, qsimd=2),
    Shape("base", 3, 16, 1, 16, qsimd=1),                # one quantiser lane, a packet per 16 cycles
    Shape("narrow", 12, 8, 2, 8, mix_input=True, qsimd=4),
    Shape("base", 32, 64, 16, 32, qsimd=8),              # two stripes
    Shape("base", 20, 36, 2, 4, mix_input=True, batch=5, qsimd=1),
    Shape("base", 24, 40, 4, 8, packing="5trit", batch=3, qsimd=4),
]
MATRICES = 2                                # every ROM holds two matrices; the cases pick one
ELEMENTWISE_WIDTH = {"base": 40, "narrow": 12, "shifted": 8}    # K, D and I of the elementwise kernels
# Elements per cycle E (the producing BitLinear's PE) of the elementwise kernels: one lane, a few,
# and the whole vector in one cycle.
LANES = {"base": (1, 2, 8, 40), "narrow": (1, 4, 12), "shifted": (1, 8)}
# The argmax's lanes E (powers of two, as lm_head PEs are) -> its vocabulary: narrower than the
# 16-slot logit word with a partial last word, and as wide as a word and wider (a packet written
# over several cycles), up to the whole vocabulary in one packet.
ARGMAX = {"base": {1: 40, 2: 40, 8: 40, 16: 64, 32: 64, 64: 64}, "narrow": {1: 36, 4: 36},
          "shifted": {1: 48, 8: 48, 16: 48}}
# Off-chip embedding tables (V, H): whole words per row, and rows that start inside a word (at
# every slot offset for H = 5), narrower than a word, and ending inside the buffer's last word.
EMBED_TABLES = {"base": ((4, 32), (3, 40), (5, 20), (17, 5)), "narrow": ((3, 40),), "shifted": ((2, 16),)}
SANITIZED_LANES = (1, 8)
ISQRT_WIDTHS = (10, 32, 48, 64)             # 32, 48, 64: the root widths of the three formats
CODE_WIDTHS = (9, 32, 44, 48)               # 9: exhaustive; y_width of NARROW, BASE and the widest (24 x 24 bits)


# ----------------------------------------------------------------------------- the programs
def max_beta(numerics: NumericsSpec) -> int:
    return nx.beta_fixed(np.float32(TINY_WEIGHT_SCALE), numerics)


def argmax_lanes(variant: str, lanes=None) -> tuple:
    """The argmax's lane counts in this variant (those among `lanes`, if given)."""
    return tuple(e for e in ARGMAX[variant] if lanes is None or e in lanes)


def scenario_size(kernel: str, variant: str, lanes: int) -> int:
    return ARGMAX[variant][lanes] if kernel == "argmax" else ELEMENTWISE_WIDTH[variant]


def add_elementwise(program: KernelProgram, variant: Variant, width: int, lanes: tuple, all_argmax=True) -> None:
    for e in lanes:
        for driver in ("norm", "mlgru", "glu", "residual"):
            program.kernel(driver, variant, width, e)
    for e in argmax_lanes(variant.name, None if all_argmax else lanes):
        program.kernel("argmax", variant, ARGMAX[variant.name][e], e)
    for vocab, hidden in EMBED_TABLES[variant.name]:
        program.kernel("embed", variant, vocab, hidden)
    program.kernel("sigmoid", variant)


def main_program() -> tuple[KernelProgram, dict, dict, BitLinear]:
    program = KernelProgram("kernel_tests")
    variants = {name: program.variant(name, n) for name, n in (("base", BASE), ("narrow", NARROW), ("shifted", SHIFTED))}
    bitlinears = {s.id: program.bitlinear(variants[s.variant], s.rows, s.cols, s.pe, s.simd, MATRICES,
                                          max_beta(variants[s.variant].numerics), s.mix_input, packing=s.packing,
                                          batch=s.batch, qsimd=s.qsimd)
                  for s in SHAPES + TRIT_SHAPES + BATCH_SHAPES + QUANTISER_SHAPES}
    overfetching = program.bitlinear(variants["base"], 8, 8, 2, 2, max_beta=max_beta(BASE), overfetching=True)
    for name, variant in variants.items():
        add_elementwise(program, variant, ELEMENTWISE_WIDTH[name], LANES[name])
    for width in ISQRT_WIDTHS:
        program.kernel("isqrt", width)
    for width in CODE_WIDTHS:
        program.kernel("code_magnitude", width)
    return program, variants, bitlinears, overfetching


def sanitized_program() -> tuple[KernelProgram, Variant, list[BitLinear]]:
    program = KernelProgram("kernel_tests_sanitized")
    variant = program.variant("base", BASE)
    # 2-bit codes one token per call, and 5 trits per byte in calls of up to 3 tokens.
    bitlinears = [program.bitlinear(variant, 24, 40, 4, 8, MATRICES, max_beta(BASE)),
                  program.bitlinear(variant, 24, 40, 4, 2, MATRICES, max_beta(BASE), packing="5trit", batch=3)]
    add_elementwise(program, variant, ELEMENTWISE_WIDTH["base"], SANITIZED_LANES, all_argmax=False)
    return program, variant, bitlinears


PROGRAM, VARIANTS, BITLINEARS, OVERFETCHING = main_program()
SANITIZED, SANITIZED_VARIANT, SANITIZED_BITLINEARS = sanitized_program()


@pytest.fixture(scope="module")
def binaries():
    """Both programs, compiled side by side (one TU per core)."""
    require_tool("g++")
    plain, sanitized = build_all([(PROGRAM, False), (SANITIZED, True)])
    return {"plain": plain, "sanitized": sanitized}


@pytest.fixture(scope="module")
def run(binaries):
    """run(cases) -> results, on the plain program."""
    return binaries["plain"].run


# ----------------------------------------------------------------------------- value helpers
def signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def spread(rng, shape, width: int) -> np.ndarray:
    """Signed values whose magnitudes are spread over every bit length of the format."""
    bits = rng.integers(0, width, size=shape)
    magnitude = rng.integers(0, 1 << 62, size=shape) >> (62 - bits)
    values = np.where(rng.random(shape) < 0.5, -magnitude - 1, magnitude)
    lo, hi = signed_range(width)
    return np.clip(values, lo, hi)


def sigmoid_table(n: NumericsSpec) -> np.ndarray:
    return nx.SigmoidTable.build(n).values


def fixed_arith(n: NumericsSpec) -> golden.FixedArith:
    return golden.FixedArith(None, n)


def as_weights(gamma: np.ndarray, n: NumericsSpec) -> np.ndarray:
    """Integer norm weights as the floats the golden model reads (exact: at most 24 bits)."""
    return np.asarray(gamma, np.float64) / (1 << n.gamma.frac)


def assert_same(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    actual, expected = np.asarray(actual, np.int64), np.asarray(expected, np.int64).reshape(np.shape(actual))
    if np.any(actual != expected):
        k = int(np.argmax(actual.reshape(-1) != expected.reshape(-1)))
        raise AssertionError(f"{what}[{k}]: csim {actual.reshape(-1)[k]}, numpy {expected.reshape(-1)[k]} "
                             f"({np.count_nonzero(actual != expected)} of {actual.size} differ)")


# ----------------------------------------------------------------------------- BitLinear
@dataclass(frozen=True)
class BitLinearInputs:
    v: np.ndarray               # [T, cols], in_width
    codes: np.ndarray           # [rows, cols] in {-1, 0, 1}
    gamma: np.ndarray           # [cols], gamma format
    weight_scale: float         # s_w
    layer: int = 1              # which of the ROM's two matrices holds `codes`


@dataclass(frozen=True)
class BitLinearExpected:
    out: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    saturations: dict


def expected_bitlinear(n: NumericsSpec, x: BitLinearInputs) -> BitLinearExpected:
    arith, trace = fixed_arith(n), golden.Trace()
    proj = Projection(x.codes.astype(np.int8), np.float32(x.weight_scale), as_weights(x.gamma, n))
    out = arith.bitlinear(np.asarray(x.v, np.int64), proj, trace, "bitlinear")
    return BitLinearExpected(out, trace.get("bitlinear.q"), trace.get("bitlinear.scale"), dict(arith.saturations))


def bitlinear_case(bl: BitLinear, source: str, x: BitLinearInputs) -> Case:
    other = np.zeros_like(x.codes)          # the matrix the case does not select
    matrices = [x.codes, other] if x.layer == 0 else [other, x.codes]
    beta = nx.beta_fixed(np.float32(x.weight_scale), bl.variant.numerics)
    rows, cols = x.codes.shape
    return Case(bl.entry(source), dict(shape=bl.shape(rows, cols), v=x.v, gamma=x.gamma, beta=beta, layer=x.layer,
                                       words=bl.words(matrices)))


def check_bitlinear(result, expected: BitLinearExpected) -> None:
    assert_same(result.traced("bitlinear.scale").reshape(-1), expected.scale, "scale")
    assert_same(result.traced("bitlinear.q"), expected.q, "codes")
    assert_same(result.outputs["out"], expected.out, "out")
    assert_same(result.traced("bitlinear"), expected.out, "traced out")
    assert result.saturations == expected.saturations


def random_inputs(rng, bl: BitLinear, tokens: int, layer: int) -> BitLinearInputs:
    p, n = bl.plan, bl.variant.numerics
    zero_share = rng.random()
    codes = rng.choice([-1, 0, 1], size=(p.rows, p.cols), p=[(1 - zero_share) / 2, zero_share, (1 - zero_share) / 2])
    gamma = spread(rng, p.cols, n.gamma.width)
    return BitLinearInputs(spread(rng, (tokens, p.cols), p.in_width), codes, gamma,
                           float(rng.choice(WEIGHT_SCALES)), layer)


def check_random_calls(run, bl: BitLinear, tokens: int, seed: int) -> None:
    """Random inputs for both matrices of the ROM, through both weight sources, bit for bit."""
    rng = np.random.default_rng(seed)
    inputs = [random_inputs(rng, bl, tokens=tokens, layer=layer) for layer in range(MATRICES)]
    cases = [(source, x) for source in SOURCES for x in inputs]
    results = run([bitlinear_case(bl, source, x) for source, x in cases])
    for (source, x), result in zip(cases, results):
        check_bitlinear(result, expected_bitlinear(bl.variant.numerics, x))


@pytest.mark.parametrize("shape", SHAPES + TRIT_SHAPES, ids=lambda s: s.id)
def test_bitlinear_random_shapes(run, shape):
    """Random activations, codes, norm weights and scales; every folding, both weight sources and
    packings, both matrices of the ROM; three tokens per call sequence."""
    check_random_calls(run, BITLINEARS[shape.id], 3, shape.rows * 1000 + shape.cols)


@pytest.mark.parametrize("shape", BATCH_SHAPES, ids=lambda s: s.id)
def test_bitlinear_batched_calls(run, shape):
    """Seven tokens in calls of up to `batch` (whole calls and a partial one, or one call of
    fewer): each token's codes, scale and outputs bit for bit as if alone, and each call takes
    exactly one pass of weight lanes (the harness checks the lane stream drained after each)."""
    check_random_calls(run, BITLINEARS[shape.id], 7, shape.rows * 1000 + shape.cols + shape.batch)


@pytest.mark.parametrize("shape", QUANTISER_SHAPES, ids=lambda s: s.id)
def test_bitlinear_narrow_quantiser(run, shape):
    """A quantiser of qsimd < simd lanes: seven tokens in calls of up to `batch`, codes, scale and
    outputs bit for bit, the MVU fed a packet per simd / qsimd quantiser cycles."""
    bl = BITLINEARS[shape.id]
    assert bl.plan.qsimd == shape.qsimd < bl.plan.simd
    check_random_calls(run, bl, 7, shape.rows * 1000 + shape.cols + shape.qsimd)


@pytest.mark.parametrize("engine, rows, cols", [(SHAPES[0], 8, 16), (SHAPES[0], 24, 8), (SHAPES[0], 4, 40),
                                                (QUANTISER_SHAPES[0], 8, 16), (QUANTISER_SHAPES[-1], 8, 16),
                                                (SHAPES[-2], 16, 32), (SHAPES[-1], 4, 256),
                                                (TRIT_SHAPES[2], 8, 16), (TRIT_SHAPES[-1], 16, 32),
                                                (BATCH_SHAPES[0], 8, 16)],
                         ids=lambda v: v.id if isinstance(v, Shape) else str(v))
def test_one_engine_runs_every_smaller_projection(run, engine, rows, cols):
    """The projections of a layer share one engine: a shape within the engine's largest runs on
    it bit for bit (its rows, its columns in the scale's mean, its weight words)."""
    bl = BITLINEARS[engine.id]
    assert (rows, cols) != (engine.rows, engine.cols) and rows % engine.pe == 0 and cols % engine.simd == 0
    full = random_inputs(np.random.default_rng(rows * 1000 + cols), bl, tokens=3, layer=1)
    x = BitLinearInputs(full.v[:, :cols], full.codes[:rows, :cols], full.gamma[:cols], full.weight_scale, 1)
    results = run([bitlinear_case(bl, source, x) for source in SOURCES])
    for result in results:
        check_bitlinear(result, expected_bitlinear(bl.variant.numerics, x))


def _ties(cols: int) -> np.ndarray:
    """A token whose codes 127 * y / max|y| are exact .5 ties, in both signs: y = [254, 1, -3, 5, ...]."""
    odd = np.arange(1, 2 * cols - 2, 2)
    return np.concatenate([[254], np.where(np.arange(cols - 1) % 2, -odd, odd)]) << 2


def corner_inputs(rng, bl: BitLinear, corner: str) -> BitLinearInputs:
    """The inputs of one named corner: (v, codes, gamma, s_w), each broadcast to its shape."""
    p, n = bl.plan, bl.variant.numerics
    (v_lo, v_hi), (g_lo, g_hi) = signed_range(p.in_width), signed_range(n.gamma.width)
    one = 1 << n.gamma.frac
    random_codes = rng.integers(-1, 2, (p.rows, p.cols))
    random_v = spread(rng, (2, p.cols), p.in_width)
    v, codes, gamma, weight_scale = {
        "all_max_activations": (v_hi, random_codes, g_hi, 1.0),
        "all_min_activations": (v_lo, random_codes, g_hi, 1.0),
        "max_activations_min_gamma": (v_hi, 1, g_lo, 1.0),
        "all_plus_one_weights": (v_hi, 1, one, 1.0),
        "all_minus_one_weights": (v_lo, -1, one, 1.0),
        "zero_input": (0, 1, one, 1.0),
        "zero_gamma": (random_v, 1, 0, 1.0),
        "one_nonzero_input": (-3 * np.eye(p.cols, dtype=np.int64)[-1], 1, one, 1.0),
        "rounding_ties": (_ties(p.cols), random_codes, one, 1.0),
        "output_saturates": (v_hi // 2, 1, one, OUTPUT_SATURATING_SCALE[bl.variant.name]),
        "scale_saturates": (random_v, 1, one, TINY_WEIGHT_SCALE),
    }[corner]
    v = np.atleast_2d(v)
    return BitLinearInputs(np.broadcast_to(v, (len(v), p.cols)).copy(), np.broadcast_to(codes, (p.rows, p.cols)).copy(),
                           np.broadcast_to(gamma, (p.cols,)).copy(), weight_scale)


# What the numpy side must show for a corner to be the corner it claims to be.
CORNER_REACHED = {
    "max_activations_min_gamma": lambda x, e: np.all(e.q == -127),
    "all_plus_one_weights": lambda x, e: np.all(e.q == 127),
    "all_minus_one_weights": lambda x, e: np.all(e.q == -127),
    "zero_input": lambda x, e: np.all(e.q == 0) and np.all(e.out == 0),
    "zero_gamma": lambda x, e: np.all(e.q == 0),
    "one_nonzero_input": lambda x, e: e.q[0, -1] == -127 and np.all(e.q[0, :-1] == 0),
    "rounding_ties": lambda x, e: np.array_equal(e.q[0], np.sign(x.v[0]) * (((np.abs(x.v[0]) >> 2) + 1) // 2)),
    "output_saturates": lambda x, e: e.saturations.get("bitlinear", 0) > 0 and "scale" not in e.saturations,
    "scale_saturates": lambda x, e: e.saturations.get("scale", 0) == 2,
}
CORNERS = ["all_max_activations", "all_min_activations", *CORNER_REACHED]
CORNER_SHAPES = [SHAPES[0], SHAPES[8]]       # base 24x40 and narrow 24x48


@pytest.mark.parametrize("shape", CORNER_SHAPES, ids=lambda s: s.id)
@pytest.mark.parametrize("corner", CORNERS)
def test_bitlinear_corners(run, shape, corner):
    """Saturation and rounding corners: the numpy side first shows the corner is reached, then
    the kernel must agree on outputs, codes, scales and saturation counts, from both sources."""
    bl = BITLINEARS[shape.id]
    x = corner_inputs(np.random.default_rng(7), bl, corner)
    expected = expected_bitlinear(bl.variant.numerics, x)
    assert CORNER_REACHED.get(corner, lambda x, e: True)(x, expected), f"{corner}: numpy does not reach the corner"
    for result in run([bitlinear_case(bl, source, x) for source in SOURCES]):
        check_bitlinear(result, expected)


# ----------------------------------------------------------------------------- elementwise kernels
@dataclass(frozen=True)
class Scenario:
    """One run of an elementwise kernel: its driver, size and lanes, the inputs, and what numpy says."""
    driver: str
    size: int | None                # the template size argument (None: the sigmoid has none)
    inputs: dict
    expected: dict                  # output name -> numpy's array
    saturations: dict               # numpy's clamp counts
    lanes: int = 1                  # elements per cycle (the template's E)

    def case(self, program: KernelProgram, variant: Variant) -> Case:
        sizes = () if self.size is None else (self.size, self.lanes)
        return Case(program.kernel(self.driver, variant, *sizes), self.inputs)

    def check(self, result) -> None:
        for name, expected in self.expected.items():
            assert_same(result.outputs[name], expected, name)
        assert result.saturations == self.saturations


def norm_scenario(rng, n: NumericsSpec, K: int) -> Scenario:
    h, gamma = spread(rng, (4, K), n.act.width), spread(rng, K, n.gamma.width)
    h[0, :2], gamma[:2] = signed_range(n.act.width), signed_range(n.gamma.width)[1]    # over, both ways
    arith = fixed_arith(n)
    v = arith.norm(h, as_weights(gamma, n))
    assert arith.saturations["norm"] >= 2
    return Scenario("norm", K, dict(h=h, gamma=gamma), dict(v=v), dict(arith.saturations))


def mlgru_inputs(rng, n: NumericsSpec, D: int, tokens: int) -> dict:
    one = 1 << n.sigmoid_frac
    lower_bound = rng.integers(0, one, D)
    lower_bound[:2] = (0, one - 1)                  # no lower bound, and the largest one
    return dict(i=spread(rng, (tokens, D), n.act.width), f=spread(rng, (tokens, D), n.act.width),
                g=spread(rng, (tokens, D), n.act.width), lower_bound=lower_bound,
                g_norm=spread(rng, D, n.gamma.width), state=spread(rng, D, n.state.width),
                sigmoid_table=sigmoid_table(n))


def mlgru_scenario_of(n: NumericsSpec, D: int, x: dict) -> Scenario:
    arith = fixed_arith(n)
    lower_bound = np.asarray(x["lower_bound"], np.float64) / (1 << n.sigmoid_frac)
    o, _, states = arith.mlgru(x["i"], x["f"], x["g"], lower_bound, as_weights(x["g_norm"], n), x["state"])
    return Scenario("mlgru", D, x, dict(state=states, o=o), dict(arith.saturations))


def mlgru_scenario(rng, n: NumericsSpec, D: int) -> Scenario:
    """Five tokens from a random initial state, the state carried over."""
    return mlgru_scenario_of(n, D, mlgru_inputs(rng, n, D, tokens=5))


def mlgru_extremes_scenario(rng, n: NumericsSpec, D: int) -> Scenario:
    """Every gate at its format's limits, from the largest state and norm weight."""
    lo, hi = signed_range(n.act.width)
    x = mlgru_inputs(rng, n, D, tokens=4)
    for name, rows in (("i", [hi, hi, lo, hi]), ("f", [hi, lo, hi, hi]), ("g", [hi, lo, lo, hi])):
        x[name] = np.repeat(np.array(rows)[:, None], D, axis=1)
    x["state"] = np.full(D, signed_range(n.state.width)[1])
    x["g_norm"] = np.full(D, signed_range(n.gamma.width)[1])
    return mlgru_scenario_of(n, D, x)


def glu_scenario(rng, n: NumericsSpec, I: int) -> Scenario:
    gate, up = spread(rng, (3, I), n.act.width), spread(rng, (3, I), n.act.width)
    lo, hi = signed_range(n.act.width)
    gate[0, :4], up[0, :4] = (hi, lo, hi, lo), (hi, hi, lo, lo)
    arith = fixed_arith(n)
    z = arith.glu(gate, up)
    assert arith.saturations["glu"] > 0
    return Scenario("glu", I, dict(gate=gate, up=up, sigmoid_table=sigmoid_table(n)), dict(z=z),
                    dict(arith.saturations))


def residual_scenario(rng, n: NumericsSpec, K: int) -> Scenario:
    h, delta = spread(rng, (3, K), n.act.width), spread(rng, (3, K), n.act.width)
    lo, hi = signed_range(n.act.width)
    h[0, :3], delta[0, :3] = (hi, lo, hi), (hi, lo, lo)     # over the top, under the bottom, exact
    arith = fixed_arith(n)
    out = arith.residual(h, delta, "residual")
    assert arith.saturations["residual"] >= 2
    return Scenario("residual", K, dict(h=h, delta=delta), dict(out=out), dict(arith.saturations))


def argmax_scenario(rng, n: NumericsSpec, V: int) -> Scenario:
    """Greedy decoding's argmax: on ties the first index wins (np.argmax, Model.generate), also
    when the tied maxima sit in different lanes of a wide argmax or in different 16-slot words of
    the output: with 8 lanes, 17 (lane 1) and 5 (lane 5), 9 (lane 1) and 2 (lane 2), 16 (lane 0)
    and 5 (lane 5) and 35 (lane 3); with 16, 5 (word 0) and 17, 30 (word 1), and V - 17 and
    V - 1 (one lane, consecutive words). The logits go out sign-extended to int32 slots, the
    last word's slots past V zero."""
    lo, hi = signed_range(n.act.width)
    k = np.arange(V)
    ties = []
    for indices in ([5, 17, 30], [9, 2], [16, 5, 35], [V - 1, 1, V - 2], [V - 1, V - 17]):
        tie = spread(rng, V, 8)
        tie[indices] = 1000
        ties.append(tie)
    logits = np.stack([spread(rng, V, n.act.width) for _ in range(3)] + ties + [
        np.full(V, lo), np.full(V, 7),                  # all equal
        k - 2 * V,                                      # all negative, the largest last
        np.where(k == 0, hi, lo), np.where(k == V - 1, hi, hi - 1)])
    padding = np.zeros((len(logits), -V % 16))
    return Scenario("argmax", V, dict(logits=logits), dict(index=np.argmax(logits, axis=1), logits=logits,
                                                           padding=padding), {})


def sigmoid_inputs(n: NumericsSpec) -> np.ndarray:
    """Dense over the table's range and past it, every table point in both signs, a sweep over the
    whole act range (clamped beyond the table) and its limits."""
    edge = n.sigmoid_range << n.act.frac
    fine = 1 << (n.act.frac - n.sigmoid_step_bits)
    dense = np.arange(-edge - 3 * fine, edge + 3 * fine + 1, max(1, edge // 40000))
    points = np.arange(n.sigmoid_range * (1 << n.sigmoid_step_bits) + 1) * fine
    lo, hi = signed_range(n.act.width)
    extremes = np.array([lo, lo + 1, hi, hi - 1, edge - 1, edge, edge + 1, -edge + 1, -edge, -edge - 1, 0, 1, -1])
    sweep = np.linspace(lo, hi, 4001).astype(np.int64)
    return np.concatenate([dense, points, -points, points - 1, -points + 1, sweep, extremes])


def sigmoid_scenario(rng, n: NumericsSpec, _width: int) -> Scenario:
    x = sigmoid_inputs(n)
    return Scenario("sigmoid", None, dict(x=x, sigmoid_table=sigmoid_table(n)), dict(y=nx.SigmoidTable.build(n)(x)), {})


SCENARIOS = {"norm": norm_scenario, "mlgru": mlgru_scenario, "mlgru_extremes": mlgru_extremes_scenario,
             "glu": glu_scenario, "residual": residual_scenario, "argmax": argmax_scenario,
             "sigmoid": sigmoid_scenario}


def make_scenario(kernel: str, variant: str, lanes: int, rng=None) -> Scenario:
    """The kernel's scenario at its size in this variant, run `lanes` elements per cycle."""
    rng = np.random.default_rng(len(kernel)) if rng is None else rng
    scenario = SCENARIOS[kernel](rng, VARIANTS[variant].numerics, scenario_size(kernel, variant, lanes))
    return scenario if kernel == "sigmoid" else replace(scenario, lanes=lanes)


ELEMENTWISE_CASES = [(kernel, variant, lanes) for variant in LANES for kernel in SCENARIOS
                     for lanes in ((1,) if kernel == "sigmoid" else
                                   argmax_lanes(variant) if kernel == "argmax" else LANES[variant])]


@pytest.mark.parametrize("kernel, variant, lanes", ELEMENTWISE_CASES,
                         ids=[f"{k}-{v}-e{e}" for k, v, e in ELEMENTWISE_CASES])
def test_elementwise_kernel(run, kernel, variant, lanes):
    """norm, MLGRU, GLU, residual, argmax and sigmoid, per numerics variant, at every lane count:
    the same numbers whatever the number of elements per cycle."""
    scenario = make_scenario(kernel, variant, lanes)
    [result] = run([scenario.case(PROGRAM, VARIANTS[variant])])
    scenario.check(result)


def embed_scenario(rng, n: NumericsSpec, V: int, H: int) -> Scenario:
    """The off-chip embedding (template arguments <V, H>): every row in a random order, then the
    last one (it ends in the buffer's last word) and the first again."""
    table = spread(rng, (V, H), n.act.width)
    token = np.concatenate([rng.permutation(V), [V - 1, 0]])
    return Scenario("embed", V, dict(table=table, token=token), dict(h=table[token]), {}, lanes=H)


EMBED_CASES = [(variant, V, H) for variant, tables in EMBED_TABLES.items() for V, H in tables]


@pytest.mark.parametrize("variant, vocab, hidden", EMBED_CASES, ids=[f"{v}-{V}x{H}" for v, V, H in EMBED_CASES])
def test_embed_from_512_bit_words(run, variant, vocab, hidden):
    """The embedding row from the off-chip table, 16 int32 entries per m_axi word: rows of whole
    words, rows starting at any slot of a word, and the last row ending in the padded last word."""
    scenario = embed_scenario(np.random.default_rng(vocab * hidden), VARIANTS[variant].numerics, vocab, hidden)
    [result] = run([scenario.case(PROGRAM, VARIANTS[variant])])
    scenario.check(result)


def test_mlgru_extremes_reach_every_clamp():
    """numpy only: in the narrow formats the extremes scenario clamps the state, g_norm and o."""
    scenario = mlgru_extremes_scenario(np.random.default_rng(0), NARROW, ELEMENTWISE_WIDTH["narrow"])
    assert {"state", "g_norm", "mlgru_out"} <= set(scenario.saturations)


# ----------------------------------------------------------------------------- math layer
def isqrt_inputs(rng, width: int) -> list[int]:
    top = (1 << width) - 1
    roots = [int(r) for r in rng.integers(0, 1 << (width // 2), 200, dtype=np.uint64)] + [(1 << (width // 2)) - 1]
    values = [0, 1, 2, 3, 4, top, top - 1]
    values += [(1 << k) - 1 for k in range(1, width + 1)] + [1 << k for k in range(width)]
    values += [r * r + d for r in roots for d in (-1, 0, 1)]
    values += [int(v) >> int(s) for v, s in zip(rng.integers(0, 1 << 63, 300, dtype=np.uint64),
                                                  rng.integers(0, 64, 300))]
    return [v for v in values if 0 <= v <= top]


@pytest.mark.parametrize("width", ISQRT_WIDTHS)
def test_isqrt(run, width):
    values = isqrt_inputs(np.random.default_rng(width), width)
    [result] = run([Case(PROGRAM.kernel("isqrt", width), dict(n=np.array(values, dtype=np.uint64)))])
    assert_same(result.outputs["root"], [math.isqrt(v) for v in values], f"isqrt<{width}>")


def code_inputs(rng, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair |y| <= m < 2**9; constructed .5 ties, |y| == m, |y| == m - 1 and random pairs up to
    the largest m of the type (every step of the long division adds and subtracts)."""
    small = 1 << min(width, 9)
    small_m, small_y = (a.ravel() for a in np.meshgrid(np.arange(1, small), np.arange(small)))
    keep = small_y <= small_m
    top = (1 << width) - 1
    t = rng.integers(1, top // 254 + 1, 2000)
    k = rng.integers(0, 127, 2000)
    tie_m, tie_y = 254 * t, (2 * k + 1) * t                  # 127 * y / m = k + 0.5 exactly
    big_m = rng.integers(1, top + 1, 2000)
    big_y = (big_m * rng.random(2000)).astype(np.int64)
    edge_m = np.concatenate([big_m[:100], [top, top, top, top, 1 << (width - 1), (1 << (width - 1)) + 1]])
    edge_y = np.concatenate([big_m[:100], [top, top - 1, 0, 1, 1 << (width - 1), 1 << (width - 1)]])
    return (np.concatenate([small_y[keep], tie_y, big_y, edge_y, big_m[:100] - 1]),
            np.concatenate([small_m[keep], tie_m, big_m, edge_m, big_m[:100]]))


@pytest.mark.parametrize("width", CODE_WIDTHS)
def test_code_magnitude_and_ternary_ties(run, width):
    abs_y, m = code_inputs(np.random.default_rng(width), width)
    [result] = run([Case(PROGRAM.kernel("code_magnitude", width), dict(abs_y=abs_y, m=m))])
    for sign in (1, -1):                # numerics.ternary_codes rounds half away from zero in both signs
        rows = np.stack([sign * abs_y, m], axis=1)
        assert_same(sign * result.outputs["q"], nx.ternary_codes(rows)[:, 0], f"code (sign {sign})")


# ----------------------------------------------------------------------------- stream safety
# kernel -> (its size, inputs with one value missing, the stream the error must name); a wide
# kernel is starved of its last packet.
STARVED = {
    "residual": (ELEMENTWISE_WIDTH["base"], lambda K: dict(h=np.zeros((1, K)), delta=np.zeros(K - 1)), "residual.delta"),
    "glu": (ELEMENTWISE_WIDTH["base"], lambda K: dict(gate=np.zeros((1, K)), up=np.zeros(K - 1),
                                                      sigmoid_table=sigmoid_table(BASE)), "glu.up"),
    "mlgru": (ELEMENTWISE_WIDTH["base"], lambda K: {**mlgru_inputs(np.random.default_rng(0), BASE, K, 1),
                                                    "f": np.zeros(K - 1)}, "mlgru.f"),
    "argmax": (ARGMAX["base"][8], lambda V: dict(logits=np.zeros(2 * V - 1)), "argmax.logits"),   # the 2nd token
}


@pytest.mark.parametrize("lanes", [1, 8])
@pytest.mark.parametrize("kernel", STARVED)
def test_reading_an_empty_stream_is_an_error(binaries, kernel, lanes):
    size, make_inputs, stream = STARVED[kernel]
    done = binaries["plain"].run_raw([Case(PROGRAM.kernel(kernel, VARIANTS["base"], size, lanes), make_inputs(size))])
    assert done.returncode == 3, done.stderr
    assert f"read from empty stream '{stream}'" in done.stderr


def test_bitlinear_fails_on_data_left_in_a_stream(binaries):
    """A weight streamer that writes one lane too many (injected for this one config)."""
    p = OVERFETCHING.plan
    x = BitLinearInputs(np.ones((1, p.cols), np.int64), np.ones((p.rows, p.cols), np.int8), np.full(p.cols, 4096), 1.0, 0)
    done = binaries["plain"].run_raw([bitlinear_case(OVERFETCHING, "rom", x)])
    assert done.returncode == 3, done.stderr
    assert "stream 'bitlinear.weights' holds 1 unread values at the end of a call" in done.stderr


# ----------------------------------------------------------------------------- sanitizers
def test_kernels_under_sanitizers(binaries):
    """ASan + UBSan (halt_on_error): BitLinears (2-bit, and 5-trit in batched calls) from both
    sources, random and at their corners, and every elementwise scenario; no sanitizer report,
    and still bit-exact."""
    binary = binaries["sanitized"]
    assert binary.sanitize
    rng = np.random.default_rng(8)
    bitlinear_cases = [(bl, source, x) for bl in SANITIZED_BITLINEARS
                       for x in [random_inputs(rng, bl, 4, 1)] + [corner_inputs(rng, bl, c) for c in
                                                                  ("all_min_activations", "zero_input", "scale_saturates")]
                       for source in SOURCES]
    scenarios = [replace(make(rng, BASE, scenario_size(kernel, "base", lanes)), lanes=lanes)
                 for kernel, make in SCENARIOS.items() for lanes in SANITIZED_LANES]
    scenarios += [embed_scenario(rng, BASE, vocab, hidden) for vocab, hidden in EMBED_TABLES["base"]]
    results = binary.run([bitlinear_case(bl, source, x) for bl, source, x in bitlinear_cases] +
                         [scenario.case(SANITIZED, SANITIZED_VARIANT) for scenario in scenarios])
    for (_, _, x), result in zip(bitlinear_cases, results):
        check_bitlinear(result, expected_bitlinear(BASE, x))
    for scenario, result in zip(scenarios, results[len(bitlinear_cases):]):
        scenario.check(result)
