"""BitLinear engines: the projection kinds of one folding share one engine in hardware.

The projections of a layer run one after another, so a single quantiser + MVU + rescale serves
them all, each call with its own shape (kernels_cpp/hlsgen_bitlinear.h, shape_t).  The engine is
sized for the widest of them: every bit width and the largest rows and columns.  Kinds of another
folding (usually the lm_head) get an engine of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # type names only: plan.py imports this module
    from hlsgen.hardware.plan import BitLinearPlan

# The array each projection kind reads its input from (the top's engine input slots).
INPUT_OF = {"i": "v", "f": "v", "g": "v", "gate": "v", "o": "o", "down": "z", "lm_head": "x_head"}

WIDEST = ("rows", "cols", "in_width", "y_width", "sumsq_width", "root_width", "beta_width", "num_width", "acc_width")


@dataclass(frozen=True)
class Engine:
    name: str            # layer | head
    kinds: tuple         # the projection kinds it runs, in plan order
    config: "BitLinearPlan"   # the widest of them (its kind is the engine's name)

    @property
    def rom(self) -> str:
        """The on-chip ROM of its kinds' lane words, one kind after another."""
        return f"ROM_{self.name.upper()}"

    @property
    def function(self) -> str:
        """The generated wrapper the top calls for every kind it runs (one hardware instance)."""
        return f"{self.name}_engine"

    @property
    def inputs(self) -> tuple:
        """Its input arrays, one slot each of the engine's input buffer, in kind order."""
        return tuple(dict.fromkeys(INPUT_OF[k] for k in self.kinds))

    def slot(self, kind: str) -> int:
        return self.inputs.index(INPUT_OF[kind])

    def index(self, kind: str) -> int:
        """The kind's projection index in the engine: its output streams, shape and norm rows."""
        return self.kinds.index(kind)

    def source(self, offchip: bool) -> str:
        """What its weight streamer reads: the weight ports off chip, else its ROM."""
        return "weight_ports" if offchip else self.rom


def folding(b: "BitLinearPlan") -> tuple:
    """An engine's hardware: its MVU's folding and its quantiser's width."""
    return (b.pe, b.simd, b.qsimd)


def group(bitlinears) -> tuple:
    """One engine per folding and quantiser width, in plan order; the one running the layers'
    projections is `layer`."""
    engines = []
    for key in dict.fromkeys(folding(b) for b in bitlinears):
        members = [b for b in bitlinears if folding(b) == key]
        name = "layer" if any(b.kind == "i" for b in members) else "head"
        widest = {field: max(getattr(b, field) for b in members) for field in WIDEST}
        config = replace(members[0], kind=name, matrices=1, base_word=0, **widest)
        engines.append(Engine(name, tuple(b.kind for b in members), config))
    return tuple(engines)
