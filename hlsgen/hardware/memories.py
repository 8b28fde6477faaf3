"""The port budget: every on-chip array and table of the generated top, how it is stored and
split, and how many accesses each pipelined loop makes to one bank per cycle.

A BRAM or LUTRAM bank has two ports (UG1399 "Arrays"; UG1448 200-885 names a loop whose accesses
exceed them), so a loop at II=1 may touch a bank at most twice per iteration. The kernels take
whole arrays and indices and never partition a parameter: the partition of every array is the one
printed here, once, where the array is declared (templates/top.cpp.j2 prints `pragmas`). The
accesses per loop follow from the kernels' unrolled lanes (kernels_cpp/): a loop touching `lanes`
consecutive elements of a cyclic partition of `factor` banks meets ceil(lanes / factor) of them in
one bank. The sigmoid reads are also counted by a csim build (tests/test_memories.py, the
kernels' HLSGEN_COUNT_READ), which must not exceed the numbers here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hlsgen.errors import HlsgenError

PORTS = 2                     # per BRAM / LUTRAM bank
CALLS_PER_SIGMOID_COPY = 2    # kernels_cpp/hlsgen_math.h SIGMOID_CALLS_PER_COPY: one even + one odd read per call
SIGMOID_CALLS = {"mlgru": 3, "glu": 1}   # sigmoids per lane per cycle
INT32_SLOTS = 16              # the embedding's elements per cycle
BRAM_MIN_BITS = 1024          # smaller banks go to LUTRAM (a judgement, not a vendor rule)


@dataclass(frozen=True)
class Memory:
    name: str                 # the C++ array
    shape: tuple              # its dims
    width: int                # bits per element (as synthesised)
    split_dim: int            # the partitioned dimension (1-based), 0: none
    factor: int               # banks along it (cyclic), 0: complete
    copies: int = 1           # whole copies (the sigmoid tables: dim 1 is the copy)
    accesses: dict = field(default_factory=dict)   # pipelined loop -> accesses per bank per iteration
    reshape: bool = False     # ARRAY_RESHAPE complete (one wide word per row) instead of a partition

    @property
    def banks(self) -> int:
        if self.reshape:
            return 1
        along = self.shape[self.split_dim - 1] if self.split_dim else 1
        return self.copies * (min(self.factor, along) if self.factor else along) if self.split_dim else self.copies

    @property
    def bits(self) -> int:
        return math.prod(self.shape) * self.width

    @property
    def storage(self) -> str:
        per_bank = self.bits / max(self.banks, 1)
        return "BRAM" if per_bank >= BRAM_MIN_BITS else "LUTRAM"

    @property
    def ports(self) -> int:
        return PORTS

    @property
    def max_accesses_per_bank(self) -> int:
        return max(self.accesses.values(), default=0)

    @property
    def pragmas(self) -> list[str]:
        """The directives of its declaration (printed once, in the function that owns it)."""
        if self.reshape:
            return [f"ARRAY_RESHAPE variable={self.name} complete dim={self.split_dim}"]
        out = []
        if self.copies > 1:
            out.append(f"ARRAY_PARTITION variable={self.name} complete dim=1")
        if self.split_dim and self.factor > 1:
            out.append(f"ARRAY_PARTITION variable={self.name} cyclic factor={self.factor} dim={self.split_dim}")
        # The storage the budget assumes, bound explicitly (UG1399 BIND_STORAGE): constant tables
        # as two-port ROMs, the others as two-port RAMs.
        kind = "rom_2p" if self.constant else "ram_2p"
        out.append(f"BIND_STORAGE variable={self.name} type={kind} impl={self.storage.lower()}")
        return out

    @property
    def constant(self) -> bool:
        """The generated constant tables are the upper-case names."""
        return self.name.isupper()

    def as_dict(self) -> dict:
        return {"name": self.name, "storage": self.storage, "banks": self.banks, "copies": self.copies,
                "max_accesses_per_bank": self.max_accesses_per_bank, "ports": self.ports,
                "accesses": dict(self.accesses), "bits": self.bits}


def per_bank(lanes: int, factor: int, per_element: int = 1) -> int:
    """Accesses to one bank when a loop touches `lanes` consecutive elements of a cyclic split."""
    return math.ceil(lanes / factor) * per_element


def sigmoid_copies(kernel: str, lanes: int) -> int:
    return math.ceil(SIGMOID_CALLS[kernel] * lanes / CALLS_PER_SIGMOID_COPY)


def plan_memories(plan) -> list[Memory]:
    """The arrays of the top, each with its split and the loops that touch it."""
    n, E, B, L = plan.numerics, plan.layer_pe, plan.batch, plan.layers
    H, D = plan.hidden, plan.inner
    act, gamma, sig = n["act_width"], n["gamma_width"], n["sigmoid_frac"] + 1
    entries = n["sigmoid_entries"]
    h_factor = math.lcm(E, INT32_SLOTS)
    memories = [
        Memory("h", (B, H), act, 2, h_factor,
               accesses={"embed": per_bank(INT32_SLOTS, h_factor), "norm_folds": per_bank(E, h_factor),
                         "residual_folds": per_bank(E, h_factor)}),
        Memory("r", (B, H), act, 2, E, accesses={"residual_folds": per_bank(E, E), "norm_folds": per_bank(E, E)}),
        Memory("state", (B, L, D), n["state_width"], 3, E,
               accesses={"mlgru_folds": per_bank(E, E, per_element=2)}),   # read, then written back
    ]
    for e in plan.engines:
        c = e.config
        factor = math.lcm(E, c.qsimd)
        memories.append(Memory(f"{e.name}_in", (len(e.inputs), B, c.cols), c.in_width, 3, factor,
                               accesses={"norm_folds / mlgru_folds / glu_up": per_bank(E, factor),
                                         "quantise_stats / quantise_codes": per_bank(c.qsimd, factor)}))
        rows = len(e.kinds) * max(plan.bitlinear(k).matrices for k in e.kinds)
        memories.append(Memory(f"GAMMA_{e.name.upper()}", (rows, c.cols), gamma, 2, c.qsimd,
                               accesses={"quantise_stats / quantise_codes": per_bank(c.qsimd, c.qsimd)}))
        if not plan.offchip:
            memories.append(Memory(e.rom, (sum(plan.bitlinear(k).words for k in e.kinds), 8 * c.stripes), 64, 2, 0,
                                   reshape=True, accesses={"read_words": 1}))
    for name, dims in (("ATTN_NORM", (L, H)), ("MLP_NORM", (L, H)), ("FINAL_NORM", (1, H)),
                       ("G_NORM", (L, D)), ("LOWER_BOUND", (L, D))):
        loop = "mlgru_folds" if name in ("G_NORM", "LOWER_BOUND") else "norm_folds"
        memories.append(Memory(name, dims, sig if name == "LOWER_BOUND" else gamma, 2, E,
                               accesses={loop: per_bank(E, E)}))
    for kernel, loop in (("mlgru", "mlgru_folds"), ("glu", "glu_gate")):
        copies = sigmoid_copies(kernel, E)
        calls_per_copy = min(CALLS_PER_SIGMOID_COPY, SIGMOID_CALLS[kernel] * E)
        memories.append(Memory(f"SIGMOID_{kernel.upper()}", (copies, entries), sig, 2, 2, copies=copies,
                               accesses={loop: calls_per_copy}))   # each call: one read per bank of its copy
    if not plan.offchip:
        memories.append(Memory("EMBEDDING", (plan.vocab, H), act, 2, INT32_SLOTS,
                               accesses={"embed_chunks": per_bank(INT32_SLOTS, INT32_SLOTS)}))
    return memories


def memory(plan, name: str) -> Memory:
    return next(m for m in plan_memories(plan) if m.name == name)


def check_budget(memories: list[Memory]) -> None:
    """Refuse a plan in which a loop needs more accesses to one bank per cycle than it has ports."""
    for m in memories:
        for loop, count in m.accesses.items():
            if count > m.ports:
                raise HlsgenError(f"port budget: array {m.name} would take {count} accesses per bank per cycle in "
                                  f"loop {loop}, beyond its {m.ports} ports (allowed: at most {m.ports}; more "
                                  f"copies or banks, see hlsgen/hardware/memories.py)")
