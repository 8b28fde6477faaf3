"""The port budget: every on-chip array and table of the generated top, how it is stored and
split, and how many reads and writes each pipelined loop makes to one bank per cycle.

A BRAM or LUTRAM bank has two ports (UG1399 "Arrays"; UG1448 200-885 names a loop whose accesses
exceed them), so a loop at II=1 may touch a bank at most twice per iteration. The kernels take
whole arrays and indices and never partition a parameter: the partition of every array is the one
printed here, once, where the array is declared (templates/top.cpp.j2 prints `pragmas`). The
accesses per loop follow from the kernels' unrolled lanes (kernels_cpp/): a loop touching `lanes`
consecutive elements of a cyclic partition of `factor` banks meets ceil(lanes / factor) of them in
one bank. A csim build with HLSGEN_COUNT_ACCESSES counts what the kernels really touch, bank by
bank, with the layouts printed from here (`layout`); tests/test_memories.py holds every count to
the plan's.

Not listed: the kernels' arrays partitioned completely into registers (the MVU's accumulators and
weight parts, the rescale's scales, the argmax's best values, the decoders' words); a register is
read and written by any number of lanes at once, so it has no port to budget.
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
class Access:
    """What one iteration of a pipelined loop does to one bank: distinct elements read, distinct
    elements written, and both together (the ports it takes). A loop run at two call sites on one
    array (residual: reads h at one, writes it at the other) has the larger of each, and a total
    that is the larger of the sites' totals, not their sum."""
    reads: int
    writes: int
    total: int = -1

    def __post_init__(self):
        if self.total < 0:
            object.__setattr__(self, "total", self.reads + self.writes)

    def as_dict(self) -> dict:
        return {"reads": self.reads, "writes": self.writes, "total": self.total}


@dataclass(frozen=True)
class Memory:
    name: str                 # the C++ array
    shape: tuple              # its dims
    width: int                # bits per element (as synthesised)
    split_dim: int            # the partitioned dimension (1-based), 0: none
    factor: int               # banks along it (cyclic), 0: complete
    copies: int = 1           # whole copies (the sigmoid tables: dim 1 is the copy)
    accesses: dict = field(default_factory=dict)   # pipelined loop -> Access per bank per iteration
    reshape: bool = False     # ARRAY_RESHAPE complete (one wide word per row) instead of a partition
    local: bool = False       # declared (and partitioned) inside its kernel, not in the top

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
        return max((a.total for a in self.accesses.values()), default=0)

    @property
    def layout(self) -> str:
        """Its split for the csim access counter (HLSGEN_LAYOUT): copy dim, split dim, factor,
        reshaped dim."""
        split = 0 if self.reshape else self.split_dim
        return f"{int(self.copies > 1)}, {split}, {self.factor if split else 0}, {self.split_dim if self.reshape else 0}"

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
                "accesses": {loop: a.as_dict() for loop, a in self.accesses.items()}, "bits": self.bits}


def per_bank(lanes: int, factor: int) -> int:
    """Accesses to one bank when a loop touches `lanes` consecutive elements of a cyclic split."""
    return math.ceil(lanes / factor)


def sigmoid_copies(kernel: str, lanes: int) -> int:
    return math.ceil(SIGMOID_CALLS[kernel] * lanes / CALLS_PER_SIGMOID_COPY)


# The pipelined loop that writes each engine input (engines.INPUT_OF): the norms, mlgru, glu.
WRITER_OF_INPUT = {"v": "norm_folds", "o": "mlgru_folds", "z": "glu_up", "x_head": "norm_folds"}


def plan_memories(plan) -> list[Memory]:
    """The arrays of the top, each with its split and the loops that touch it."""
    n, E, B, L = plan.numerics, plan.layer_pe, plan.batch, plan.layers
    H, D = plan.hidden, plan.inner
    act, gamma, sig = n["act_width"], n["gamma_width"], n["sigmoid_frac"] + 1
    entries = n["sigmoid_entries"]
    h_factor = math.lcm(E, INT32_SLOTS)
    lanes_in_h = per_bank(E, h_factor)
    embed_loop = "embed_words" if plan.offchip else "embed_chunks"
    memories = [
        # h: written by the embedding and the MLP's residual, read by the norms and the attention's residual.
        Memory("h", (B, H), act, 2, h_factor,
               accesses={embed_loop: Access(0, per_bank(INT32_SLOTS, h_factor)), "norm_folds": Access(lanes_in_h, 0),
                         "residual_folds": Access(lanes_in_h, lanes_in_h, lanes_in_h)}),
        # r: written by the attention's residual, read by the MLP's norm and residual.
        Memory("r", (B, H), act, 2, E, accesses={"residual_folds": Access(1, 1, 1), "norm_folds": Access(1, 0)}),
        Memory("state", (B, L, D), n["state_width"], 3, E,
               accesses={"mlgru_folds": Access(1, 1), "reset_folds": Access(0, 1)}),   # read, then written back
    ]
    for e in plan.engines:
        c = e.config
        factor = math.lcm(E, c.qsimd)
        written = {WRITER_OF_INPUT[i]: Access(0, per_bank(E, factor)) for i in e.inputs}
        read = Access(per_bank(c.qsimd, factor), 0)
        memories.append(Memory(f"{e.name}_in", (len(e.inputs), B, c.cols), c.in_width, 3, factor,
                               accesses={**written, "quantise_stats": read, "quantise_codes": read}))
        # The MVU's buffer of a call's codes (kernels_cpp/hlsgen_bitlinear.h mvu): one bank, a word
        # a cycle, written while loading (or in a lone token's first row fold), read after.
        memories.append(Memory(f"{e.name}_mvu_input", (B * (c.cols // c.simd),), 8 * c.simd, 0, 0,
                               accesses={"mvu_load": Access(0, 1), "mvu_fold": Access(1, 1, 1)} if B > 1
                               else {"mvu_fold": Access(1, 1, 1)}, local=True))
        rows = len(e.kinds) * max(plan.bitlinear(k).matrices for k in e.kinds)
        gamma_read = Access(per_bank(c.qsimd, c.qsimd), 0)
        memories.append(Memory(f"GAMMA_{e.name.upper()}", (rows, c.cols), gamma, 2, c.qsimd,
                               accesses={"quantise_stats": gamma_read, "quantise_codes": gamma_read}))
        if not plan.offchip:
            # One row (every stripe's chunks of a lane word) per cycle: one word of the reshaped ROM.
            memories.append(Memory(e.rom, (sum(plan.bitlinear(k).words for k in e.kinds), 8 * c.stripes), 64, 2, 0,
                                   reshape=True, accesses={"read_words": Access(1, 0)}))
    for name, dims in (("ATTN_NORM", (L, H)), ("MLP_NORM", (L, H)), ("FINAL_NORM", (1, H)),
                       ("G_NORM", (L, D)), ("LOWER_BOUND", (L, D))):
        loop = "mlgru_folds" if name in ("G_NORM", "LOWER_BOUND") else "norm_folds"
        memories.append(Memory(name, dims, sig if name == "LOWER_BOUND" else gamma, 2, E,
                               accesses={loop: Access(per_bank(E, E), 0)}))
    for kernel, loop in (("mlgru", "mlgru_folds"), ("glu", "glu_gate")):
        copies = sigmoid_copies(kernel, E)
        calls_per_copy = min(CALLS_PER_SIGMOID_COPY, SIGMOID_CALLS[kernel] * E)
        memories.append(Memory(f"SIGMOID_{kernel.upper()}", (copies, entries), sig, 2, 2, copies=copies,
                               accesses={loop: Access(calls_per_copy, 0)}))   # each call: one read per bank of its copy
    # The GLU's SiLU(gate) row (kernels_cpp/hlsgen_mixers.h glu), split like the lanes that write and read it.
    memories.append(Memory("silu_gate", (plan.intermediate,), n["mix_width"] + act, 1, E,
                           accesses={"glu_gate": Access(0, 1), "glu_up": Access(1, 0)}, local=True))
    if plan.offchip:
        # The embedding row's words from m_axi (kernels_cpp/hlsgen_mixers.h embed): one bank, a
        # word written per cycle by the burst, then a word read per cycle.
        words = math.ceil(H / INT32_SLOTS) + int(H % INT32_SLOTS != 0)
        memories.append(Memory("embed_row", (words,), 32 * INT32_SLOTS, 0, 0,
                               accesses={"embed_read": Access(0, 1), "embed_words": Access(1, 0)}, local=True))
    else:
        memories.append(Memory("EMBEDDING", (plan.vocab, H), act, 2, INT32_SLOTS,
                               accesses={"embed_chunks": Access(per_bank(INT32_SLOTS, INT32_SLOTS), 0)}))
    return memories


def memory(plan, name: str) -> Memory:
    return next(m for m in plan_memories(plan) if m.name == name)


def check_budget(memories: list[Memory]) -> None:
    """Refuse a plan in which a loop needs more accesses to one bank per cycle than it has ports."""
    for m in memories:
        for loop, access in m.accesses.items():
            count = access.total
            if count > m.ports:
                raise HlsgenError(f"port budget: array {m.name} would take {count} accesses per bank per cycle in "
                                  f"loop {loop}, beyond its {m.ports} ports (allowed: at most {m.ports}; more "
                                  f"copies or banks, see hlsgen/hardware/memories.py)")
