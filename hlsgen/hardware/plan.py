"""The hardware plan as data: every decision the planner takes, in frozen dataclasses.

The planner (planner.py) fills these in; templates, the estimate and the model only read them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hlsgen.hardware import engines, memories
from hlsgen.hardware.boards import Board
from hlsgen.model.spec import LANES_PER_WORD, stripes_for

WORD_BITS = 512          # one m_axi weight word; a lane word is `stripes` of them side by side
TRITS_PER_WORD = 5 * WORD_BITS // 8   # 5trit packing: five codes per byte, 320 per word
INT32_SLOTS = WORD_BITS // 32   # the embedding and logits ports: int32 slots per 512-bit word
PREFETCH_LANES = 512     # how far the weight streamer may run ahead of an engine, in lanes


def bits_for(value: int) -> int:
    """Unsigned bits needed to hold `value`."""
    return max(int(value).bit_length(), 1)


def even(n: int) -> int:
    return n + (n % 2)


def int32_words(entries: int) -> int:
    """512-bit words that hold `entries` int32 values (the last one padded with zeros)."""
    return -(-entries // INT32_SLOTS)


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
    words_per_matrix: int  # lane words (stripes x 512 bits) per matrix
    offchip: bool        # weights from m_axi ports instead of an on-chip ROM
    base_word: int = 0   # where this kind's lane words start: in the stripe buffers off chip, its engine's ROM on chip
    packing: str = "2bit"  # 2bit: lane j of a fold at a fixed bit slice; 5trit: each stripe's codes 5 per byte
    batch: int = 1       # the most tokens one call runs (spec hardware.batch): buffers and accumulators per token
    quantiser_simd: int | None = None   # the quantiser's lanes per cycle, a divisor of simd (None: simd)
    compact_pipeline: bool = False      # the RTL MVU at a slow clock: fewer registers (mvu_registered_levels)

    @property
    def qsimd(self) -> int:
        return self.quantiser_simd or self.simd

    @property
    def part_lanes(self) -> int:
        """Lanes of a fold each stripe carries (lanes_t's parts)."""
        return min(self.pe * self.simd, LANES_PER_WORD)

    @property
    def stripes(self) -> int:
        """512-bit words per lane word: a fold wider than 256 lanes reads several ports at once."""
        return stripes_for(self.pe * self.simd)

    @property
    def lane_word_bits(self) -> int:
        return WORD_BITS * self.stripes

    @property
    def shape_name(self) -> str:
        """The C++ constant of this kind's shape (hlsgen::shape_t) that its engine runs."""
        return f"{self.kind.upper()}_SHAPE"

    @property
    def config_name(self) -> str:
        return f"{self.kind}_config"

    @property
    def words(self) -> int:
        return self.matrices * self.words_per_matrix

    @property
    def lane_bits(self) -> int:
        return 2 * self.pe * self.simd

    @property
    def packed_lane_bytes(self) -> float:
        """One fold's codes as they sit in memory: 2 bits each, or 8/5 bits in 5trit packing."""
        return self.pe * self.simd * (8 / 5 if self.packing == "5trit" else 2) / 8

    @property
    def lane_depth(self) -> int:
        """The weight FIFO between the token's streamer and the engine (perf.py's prefetch)."""
        return PREFETCH_LANES

    @property
    def code_depth(self) -> int:
        return self.cols // self.simd

    @property
    def cycles_per_matrix(self) -> int:
        return self.rows // self.pe * (self.cols // self.simd)


# The m_axi adapters' read buffers: Vitis HLS gives each bundle room for num_read_outstanding
# bursts of max_read_burst_length words (UG1399, m_axi interface), as top.cpp.j2 sets them: the
# weight stripes and the embedding at bursts of 64 and 16 outstanding (64 KiB per port at 512 bits),
# gmem_out (the tokens it reads) at the defaults, 16 x 16.
M_AXI_OUTSTANDING = 16
M_AXI_BURST = 64
M_AXI_DEFAULT_BURST = 16


def m_axi_read_buffer_bits(plan: "HardwarePlan") -> int:
    """On-chip bits of every m_axi bundle's read buffer (outstanding x burst x 512-bit words)."""
    long_bursts = len(plan.weight_ports) + (1 if plan.offchip else 0)       # weight stripes, the embedding
    return (long_bursts * M_AXI_BURST + M_AXI_DEFAULT_BURST) * M_AXI_OUTSTANDING * WORD_BITS


# The RTL MVU's pipeline (templates/rtl/mvu.v.j2): registers between a step's issue and its
# accumulator, none of which stalls.  Three operand stages (the ROM's read and output registers, or
# the streamed lane's, beside the codes' select and negation; then the registered broadcast of
# +x, -x and the lane codes to each PE row), the registered selects, one register per adder-tree
# level.  After them: the accumulator, the finished sums, the output FIFO's head and ap_done.
# A compact pipeline (BitLinearPlan.compact_pipeline, for a slow clock) has no broadcast stage and
# registers the tree's root and every second level below it, not the selects.
MVU_OPERAND_STAGES = 3
MVU_OUTPUT_CYCLES = 4
# The clocks a compact MVU is planned for (an ECP5 core at most this fast). Out of context on the
# LFE5U-85F a 16 x 16 compact unit reached 107.3 MHz against the full one's 162.2
# (`bench/bench_ecp5_timing.py [--compact]`, README "Timing of the RTL MVU"): the limit leaves
# room for a whole core's routing.
COMPACT_MVU_MAX_MHZ = 60


def mvu_registered_levels(b: "BitLinearPlan") -> list[int]:
    """The adder-tree levels that are registers (level 0: the selects, log2(SIMD): the root)."""
    top = b.simd.bit_length() - 1
    if not b.compact_pipeline:
        return list(range(top + 1))
    return [level for level in range(top + 1) if (top - level) % 2 == 0 and (level > 0 or top == 0)]


def mvu_pipeline_stages(b: "BitLinearPlan") -> int:
    """Registers from the MVU's issue stage to its accumulator: operands (and the broadcast), then
    the registered tree levels."""
    operands = MVU_OPERAND_STAGES - (1 if b.compact_pipeline else 0)
    return operands + len(mvu_registered_levels(b))


@dataclass(frozen=True)
class MemoryPort:
    """One m_axi argument of the top function: its buffer and the memory channels it is linked to."""
    name: str            # C argument
    bundle: str          # m_axi bundle; the IP interface is m_axi_<bundle>
    nbytes: int
    dtype: str           # numpy dtype of the host buffer
    data: str | None     # the packed contents the host uploads (None: an output)
    memory: str = ""     # hbm | ddr
    channels: tuple = ()
    link: str = ""       # the vendor flow's name of the channels: HBM[3], DDR[0:1], S_AXI_HP0_FPD
    stripe: int | None = None   # weight stripe number (every projection kind's 512-bit slice `stripe`)

    @property
    def words(self) -> int:
        return self.nbytes // (WORD_BITS // 8)


@dataclass(frozen=True)
class Argument:
    """One argument of the top function and its s_axilite register."""
    name: str
    kind: str            # scalar (host writes) | output (kernel writes, ap_vld) | pointer (64-bit address)
    offset: int


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
    batch: int = 1               # tokens per pass over the weights (spec.MAX_BATCH)
    notes: tuple = field(default=())
    memory_ports: tuple = ()     # MemoryPort per m_axi argument, linked to channels (assign_memory)
    arguments: tuple = ()        # Argument per top-function argument, in signature order

    def memory_port(self, name: str) -> MemoryPort:
        return next(p for p in self.memory_ports if p.name == name)

    @property
    def stripes(self) -> int:
        """Weight ports: every kind streams the same number of 512-bit stripes (spec checks this)."""
        return max(b.stripes for b in self.bitlinears)

    @property
    def weight_ports(self) -> list[MemoryPort]:
        return [p for p in self.memory_ports if p.stripe is not None]

    @property
    def logit_dtype(self) -> str:
        """Host view of one logit: act_t (at most 24 bits, spec) sign-extended into an int32 slot
        of the logits port's 512-bit words; the one layout every reader of the logits assumes."""
        return "<i4"

    @property
    def offchip(self) -> bool:
        return self.weights_place != "onchip"

    @property
    def flow_target(self) -> str:
        """Vitis HLS flow: an Alveo kernel (.xo for v++ link) or a Vivado IP for a Zynq design."""
        return "vitis" if self.board.flow == "alveo" else "vivado"

    @property
    def export_format(self) -> str:
        return "xo" if self.board.flow == "alveo" else "ip_catalog"

    @property
    def export_file(self) -> str:
        return f"{self.top}.xo" if self.board.flow == "alveo" else f"{self.top}_ip.zip"

    @property
    def clock_period_ns(self) -> str:
        return f"{1000.0 / self.clock_mhz:.3f}"

    def bitlinear(self, kind: str) -> BitLinearPlan:
        return next(b for b in self.bitlinears if b.kind == kind)

    @functools.cached_property
    def engines(self) -> tuple:
        """The BitLinear engines: one per folding, shared by its kinds (hlsgen/hardware/engines.py)."""
        return engines.group(self.bitlinears)

    def engine_of(self, kind: str) -> "engines.Engine":
        return next(e for e in self.engines if kind in e.kinds)

    @property
    def layer_pe(self) -> int:
        """The PE the layers' projections share: the elements per cycle of norm, MLGRU, GLU and the
        residuals (each consumes one packet of its producer's rescale per cycle)."""
        return self.bitlinear("i").pe

    @property
    def head_pe(self) -> int:
        """The lm_head's PE: the logits per cycle of the argmax."""
        return self.bitlinear("lm_head").pe

    @property
    def embedding_entries(self) -> int:
        return self.vocab * self.hidden

    @property
    def embedding_words(self) -> int:
        """The off-chip table's 512-bit words: the int32 entries row-major, the last word padded."""
        return int32_words(self.embedding_entries)

    @property
    def logit_words(self) -> int:
        """One token's logits; token t of a call starts at word t * logit_words."""
        return int32_words(self.vocab)

    @property
    def embedding_source(self) -> str:
        """Off-chip designs read the embedding row over m_axi too; on-chip ones from a ROM."""
        return "emb_table" if self.offchip else "EMBEDDING"

    @property
    def weight_bits(self) -> int:
        return sum(b.words * b.lane_word_bits for b in self.bitlinears)

    def onchip_bits(self) -> dict:
        """On-chip memory by use, in bits (tables at their C++ widths)."""
        n, L, H, D, I = self.numerics, self.layers, self.hidden, self.inner, self.intermediate
        # Per layer: attn_norm, i/f/g norms, mlp_norm, gate norm [H]; o norm, g_norm [D]; down norm [I].
        # Then the final norm and the lm_head's norm [H].
        gammas = (L * (6 * H + 2 * D + I) + 2 * H) * n["gamma_width"]
        used = {"recurrent state": self.batch * L * D * n["state_width"],   # a slot per batched sequence
                "norm weights": gammas,
                # the sigmoid table once per copy the stages' read ports need (hardware/memories.py)
                "lower bounds + sigmoid": L * D * (n["sigmoid_frac"] + 1) + n["sigmoid_entries"] * (n["sigmoid_frac"] + 1)
                * sum(memories.sigmoid_copies(kernel, self.layer_pe) for kernel in memories.SIGMOID_CALLS)}
        # Per engine: the weight lanes the streamer runs ahead, the sums of a token's row folds,
        # and the MVU's int8 input buffer of a call's tokens.
        used["engine FIFOs"] = sum(e.config.lane_depth * e.config.lane_bits + e.config.rows * e.config.acc_width
                                   + self.batch * e.config.cols * 8 for e in self.engines)
        # Per token of a call (top.cpp.j2's run_call): h and r, the engines' input vectors, and the
        # streams between the BitLinears and the next stage (each holds a whole vector).
        engine_inputs = sum(self.engine_of(k).config.cols * self.engine_of(k).config.in_width
                            for k in ("i", "o", "down", "lm_head"))
        streamed = (3 * D + 2 * H + 2 * I + self.vocab) * n["act_width"]
        used["activations"] = self.batch * (2 * H * n["act_width"] + engine_inputs + streamed)
        used["m_axi read buffers"] = m_axi_read_buffer_bits(self)
        if not self.offchip:
            used["ternary weights"] = self.weight_bits
            used["embedding"] = self.embedding_entries * n["act_width"]
        return used
