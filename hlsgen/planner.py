"""Spec + board -> HardwarePlan: every hardware decision, as data.

Templates only print what the plan says.  Each decision is a small named pass over the plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import yaml

from . import numerics as nx
from .errors import HlsgenError
from .spec import BOARDS_DIR, Spec
from .weights import Weights

WORD_BITS = 512          # off-chip weight words, and the unit of on-chip ROM words
BRAM36_BITS = 36 * 1024
URAM_BITS = 288 * 1024


def bits_for(value: int) -> int:
    """Unsigned bits needed to hold `value`."""
    return max(int(value).bit_length(), 1)


def even(n: int) -> int:
    return n + (n % 2)


@dataclass(frozen=True)
class Board:
    name: str
    key: str
    part: str
    flow: str
    clock_mhz: float
    resources: dict
    memory: list
    platform: str | None = None
    board_part: str | None = None
    program: str | None = None

    @classmethod
    def load(cls, key: str) -> "Board":
        data = yaml.safe_load((BOARDS_DIR / f"{key}.yaml").read_text())
        return cls(key=key, **data)

    @property
    def onchip_bits(self) -> int:
        r = self.resources
        return r["bram36"] * BRAM36_BITS + r["uram"] * URAM_BITS


@dataclass(frozen=True)
class BitLinearPlan:
    """One ternary projection kind; its weights for all layers sit in one ROM or one m_axi port."""
    kind: str            # i, f, g, o, gate, down, lm_head
    rows: int
    cols: int
    pe: int
    simd: int
    matrices: int        # layers (1 for the lm_head)
    in_width: int        # activation input width (act or mix format)
    y_width: int         # signed v * gamma
    sumsq_width: int
    root_width: int
    beta_width: int
    num_width: int       # the per-token scale division
    acc_width: int       # 127 * cols, signed
    words_per_matrix: int
    offchip: bool        # weights from an m_axi port instead of an on-chip ROM

    @property
    def source(self) -> str:
        """The C++ name the top function passes as this kind's weight source."""
        return self.port if self.offchip else f"ROM_{self.kind.upper()}"

    @property
    def config_name(self) -> str:
        return f"{self.kind}_config"

    @property
    def port(self) -> str:
        return f"w_{self.kind}"

    @property
    def bundle(self) -> str:
        return f"gmem_{self.kind}"

    @property
    def words(self) -> int:
        return self.matrices * self.words_per_matrix

    @property
    def lane_bits(self) -> int:
        return 2 * self.pe * self.simd

    @property
    def code_depth(self) -> int:
        return self.cols // self.simd

    @property
    def cycles_per_matrix(self) -> int:
        return self.rows // self.pe * (self.cols // self.simd)


@dataclass(frozen=True)
class HardwarePlan:
    top: str
    board: Board
    clock_mhz: float
    weights_place: str           # onchip | ddr | hbm
    numerics: dict               # C++ constant name -> value
    bitlinears: tuple            # BitLinearPlan per kind
    vocab: int
    hidden: int
    inner: int
    intermediate: int
    layers: int
    notes: tuple = field(default=())

    @property
    def offchip(self) -> bool:
        return self.weights_place != "onchip"

    @property
    def clock_period_ns(self) -> str:
        return f"{1000.0 / self.clock_mhz:.3f}"

    def bitlinear(self, kind: str) -> BitLinearPlan:
        return next(b for b in self.bitlinears if b.kind == kind)

    @property
    def embedding_entries(self) -> int:
        return self.vocab * self.hidden

    @property
    def embedding_source(self) -> str:
        """Off-chip designs read the embedding row over m_axi too; on-chip ones from a ROM."""
        return "emb_table" if self.offchip else "EMBEDDING"

    @property
    def weight_bits(self) -> int:
        return sum(b.words * WORD_BITS for b in self.bitlinears)

    def onchip_bits(self) -> dict:
        """On-chip memory by use, in bits (tables at their C++ widths)."""
        n, L, H, D, I = self.numerics, self.layers, self.hidden, self.inner, self.intermediate
        gammas = (L * (3 * H + 4 * H + D + H + I + D + H) + 2 * H) * n["gamma_width"]
        used = {"recurrent state": L * D * n["state_width"],
                "norm weights": gammas,
                "lower bounds + sigmoid": L * D * (n["sigmoid_frac"] + 1) + n["sigmoid_entries"] * (n["sigmoid_frac"] + 1)}
        if not self.offchip:
            used["ternary weights"] = self.weight_bits
            used["embedding"] = self.embedding_entries * n["act_width"]
        return used


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


def size_bitlinear(spec: Spec, kind: str, rows: int, cols: int, pe: int, simd: int, matrices: int,
                   max_beta: int) -> BitLinearPlan:
    """Every width of one BitLinear instance, from the bounds of its values."""
    n = spec.numerics
    in_width = n.mix.width if kind in ("o", "down") else n.act.width
    y_width = in_width + n.gamma.width
    sumsq_width = 2 * in_width - 1 + math.ceil(math.log2(cols))
    root_width = even(2 * in_width - 1 + 2 * n.rsqrt_guard)
    beta_width = bits_for(max_beta)
    exponent = numerics_constants(spec)["scale_exponent"]
    num_bits = y_width + beta_width + max(exponent, 0)
    den_bits = 7 + root_width // 2 + max(-exponent, 0)
    num_width = max(num_bits, den_bits) + 2
    acc_width = bits_for(127 * cols) + 1
    return BitLinearPlan(kind=kind, rows=rows, cols=cols, pe=pe, simd=simd, matrices=matrices,
                         in_width=in_width, y_width=y_width, sumsq_width=sumsq_width, root_width=root_width,
                         beta_width=beta_width, num_width=num_width, acc_width=acc_width,
                         words_per_matrix=math.ceil(rows * cols * 2 / WORD_BITS),
                         offchip=spec.hardware.weights != "onchip")


def choose_bitlinears(spec: Spec, weights: Weights | None) -> tuple:
    p = spec.hardware.parallelism
    shapes = spec.model.projection_shapes()
    plans = []
    for kind, (rows, cols) in shapes.items():
        is_head = kind == "lm_head"
        if weights is None:
            max_beta = 1 << spec.numerics.beta_frac
        else:
            projs = [weights.lm_head] if is_head else [getattr(layer, kind) for layer in weights.layers]
            max_beta = max(nx.beta_fixed(pr.scale, spec.numerics) for pr in projs)
        plans.append(size_bitlinear(spec, kind, rows, cols,
                                    p.lm_head_pe if is_head else p.pe, p.lm_head_simd if is_head else p.simd,
                                    1 if is_head else spec.model.layers, max_beta))
    return tuple(plans)


def check_fit(plan: HardwarePlan) -> None:
    """Refuse a design whose on-chip memory cannot fit, with the numbers and a way out."""
    used = plan.onchip_bits()
    need, have = sum(used.values()), plan.board.onchip_bits
    if need > have:
        detail = ", ".join(f"{name} {bits / 8e6:.2f} MB" for name, bits in used.items())
        if plan.offchip:
            hint = "a smaller model or a larger board"
        else:
            hint = "weights: " + " | ".join(sorted({m["kind"] for m in plan.board.memory}))
        raise HlsgenError(
            f"hardware.weights: {plan.weights_place} needs {need / 8e6:.2f} MB on chip ({detail}) but "
            f"{plan.board.key} has {have / 8e6:.2f} MB of BRAM+URAM (allowed: {hint})")


def plan(spec: Spec, weights: Weights | None = None) -> HardwarePlan:
    board = Board.load(spec.hardware.board)
    place = spec.hardware.weights
    memory_kinds = {m["kind"] for m in board.memory}
    if place != "onchip" and place not in memory_kinds:
        raise HlsgenError(f"hardware.weights: {place!r} is not available on {board.key} "
                          f"(allowed: onchip, {', '.join(sorted(memory_kinds))})")
    m = spec.model
    result = HardwarePlan(top=spec.project.name, board=board, clock_mhz=spec.hardware.clock_mhz or board.clock_mhz,
                          weights_place=place, numerics=numerics_constants(spec),
                          bitlinears=choose_bitlinears(spec, weights), vocab=m.vocab, hidden=m.hidden,
                          inner=m.inner, intermediate=m.intermediate, layers=m.layers)
    check_fit(result)
    return result


def with_notes(p: HardwarePlan, *notes: str) -> HardwarePlan:
    return replace(p, notes=p.notes + tuple(notes))
