"""RTL of the ternary matrix-vector units, and the golden vectors their co-simulation checks.

One Verilog module per projection kind (templates/rtl/mvu.v.j2), printed from the same
BitLinearPlan as the HLS kernel.  Weights come from a ROM ($readmemh of a .mem file, one lane word
per line) when the design keeps them on chip, else from an AXI-Stream of lane words (what
hlsgen::stream_weights feeds hlsgen::mvu).  The module outputs the PE accumulators per row fold,
the stream hlsgen::rescale consumes; the rescale (a multiply by the per-token scale) stays in HLS.
A plan of batch B > 1 prints a unit that runs calls of n <= B tokens (an n_tokens port) on one
pass over the weights, as hlsgen::mvu does; batch 1 prints the single-token unit.

The golden vectors are the int8 codes every BitLinear quantised in the golden fixed model over the
testbench sequence (the `.q` traces), and their exact products with the ternary matrices; the
cosim groups them into the testbench's calls (mvu_calls).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import jinja2
import numpy as np

from hlsgen.model import golden
from hlsgen.model.checkpoint import pack_2bit, unpack_5trit
from hlsgen.errors import HlsgenError
from hlsgen.hardware.plan import MVU_OUTPUT_CYCLES, mvu_pipeline_stages, mvu_registered_levels
from hlsgen.hardware.planner import BitLinearPlan, HardwarePlan, bits_for
from hlsgen.model.spec import Spec
from hlsgen import resources
from hlsgen.model.weights import Weights
from hlsgen.project.calls import run_calls
from hlsgen.project.words import kind_words
from hlsgen.version import BANNER

COSIM_INDEX = "cosim/mvu.json"
# The golden model's trace name of each kind, per layer ("layer0." + ...) or alone (lm_head).
TRACE_NAMES = {"i": "attn.i", "f": "attn.f", "g": "attn.g", "o": "attn.o",
               "gate": "mlp.gate", "down": "mlp.down", "lm_head": "lm_head"}


TERM_WIDTH = 9          # a +-int8 term


@dataclass(frozen=True)
class TreeLevel:
    """One level of a PE's adder tree: `nodes` values of `width` bits, side by side in one bus."""
    index: int
    nodes: int
    width: int
    operand_width: int      # of the level below (level 0, the terms, has none)
    registered: bool = True  # a register, or wires into the level above (a compact pipeline)

    @property
    def bits(self) -> int:
        return self.nodes * self.width

    @property
    def operands(self) -> int:
        return self.index - 1

    @property
    def grows(self) -> bool:
        return self.width > self.operand_width


def byte_ceil(bits: int) -> int:
    """Vitis HLS rounds an axis TDATA up to whole bytes."""
    return -(-bits // 8) * 8


@dataclass(frozen=True)
class MvuRtl:
    """What the RTL template prints for one kind: the plan's numbers, and the RTL's own."""
    top: str
    plan: BitLinearPlan

    def __getattr__(self, name):
        # kind, rows, cols, pe, simd, matrices, acc_width, lane_bits, cycles_per_matrix, ...
        if name.startswith("_") or name == "plan":
            raise AttributeError(name)
        return getattr(self.plan, name)

    @property
    def module(self) -> str:
        return f"{self.top}_mvu_{self.kind}"

    @property
    def verilog_path(self) -> str:
        return f"rtl/{self.module}.v"

    @property
    def ecp5_rom_path(self) -> str:
        return f"rtl/{self.module}_rom.v"

    @property
    def mem_file(self) -> str:
        return f"{self.module}.mem"

    @property
    def weight_stream(self) -> bool:
        return self.offchip

    @property
    def has_layer(self) -> bool:
        """A ROM of several matrices needs to be told which; a weight stream brings the right one."""
        return self.matrices > 1 and not self.weight_stream

    @property
    def layer_bits(self) -> int:
        return bits_for(self.matrices - 1)

    @property
    def log_simd(self) -> int:
        return self.simd.bit_length() - 1

    @property
    def tree_levels(self) -> list[TreeLevel]:
        """Sums grow a bit per level up to acc_width; wrapping past it is exact (the total fits)."""
        widths = [min(TERM_WIDTH + level, self.acc_width) for level in range(self.log_simd + 1)]
        registered = mvu_registered_levels(self.plan)
        return [TreeLevel(level, self.simd >> level, widths[level], widths[level - 1] if level else 0,
                          level in registered) for level in range(self.log_simd + 1)]

    @property
    def row_copies(self) -> bool:
        """Each PE row registers its own copy of +x, -x and its lane codes (not at a slow clock)."""
        return not self.plan.compact_pipeline

    @property
    def root_level(self) -> TreeLevel:
        return self.tree_levels[-1]

    @property
    def root_extension(self) -> int:
        """Sign bits that widen the tree's root to acc_width."""
        return self.acc_width - self.root_level.width

    @property
    def simd_folds(self) -> int:
        return self.cols // self.simd

    @property
    def pe_folds(self) -> int:
        return self.rows // self.pe

    @property
    def sf_bits(self) -> int:
        return bits_for(self.simd_folds - 1)

    @property
    def sf_last(self) -> int:
        return self.simd_folds - 1

    @property
    def nf_bits(self) -> int:
        return bits_for(self.pe_folds - 1)

    @property
    def nf_last(self) -> int:
        return self.pe_folds - 1

    @property
    def batched(self) -> bool:
        """Calls of several tokens: an n_tokens port, a load phase and a chain of accumulators.
        A batch-1 plan prints the single-token unit, unchanged."""
        return self.batch > 1

    @property
    def tok_bits(self) -> int:
        return bits_for(self.batch)

    @property
    def buffer_depth(self) -> int:
        return self.batch * self.simd_folds

    @property
    def at_bits(self) -> int:
        return bits_for(self.buffer_depth - 1)

    @property
    def at_of_next_sf(self) -> str:
        """sf + 1 as an at_bits-wide Verilog expression (lint-clean: no implicit widening)."""
        pad = self.at_bits - self.sf_bits
        return f"{{{{{pad}{{1'b0}}}}, sf}} + 1'b1" if pad else "sf + 1'b1"

    @property
    def pipeline_stages(self) -> int:
        return mvu_pipeline_stages(self.plan)

    @property
    def out_fifo_depth(self) -> int:
        """Room for every sums beat in flight at II=1 (from issue to the output register: a beat per
        token every cols / SIMD steps), and two to spare: backpressure only ever stops the issue."""
        latency = self.pipeline_stages + MVU_OUTPUT_CYCLES
        # A fold's last column step emits a beat per token, the call's n <= batch tokens in a row.
        in_flight = min(latency, -(-latency // self.simd_folds) * self.batch) + 2
        return 1 << bits_for(in_flight - 1)

    @property
    def out_fifo_bits(self) -> int:
        return self.out_fifo_depth.bit_length() - 1

    @property
    def rom_depth(self) -> int:
        return self.matrices * self.cycles_per_matrix

    @property
    def addr_bits(self) -> int:
        return bits_for(self.rom_depth - 1)

    @property
    def matrix_bases(self) -> list[int]:
        return [m * self.cycles_per_matrix for m in range(self.matrices)]

    @property
    def codes_tdata_width(self) -> int:
        return 8 * self.simd

    @property
    def weights_tdata_width(self) -> int:
        return byte_ceil(self.lane_bits)

    @property
    def weights_pad_bits(self) -> int:
        return self.weights_tdata_width - self.lane_bits

    @property
    def sums_width(self) -> int:
        return self.pe * self.acc_width

    @property
    def sums_tdata_width(self) -> int:
        return byte_ceil(self.sums_width)

    @property
    def sums_pad_bits(self) -> int:
        return self.sums_tdata_width - self.sums_width

    @property
    def hls_signature(self) -> str:
        """The C++ top whose Vitis RTL has these ports (axis streams, ap_ctrl_hs)."""
        args = [f"hls::stream<ap_uint<{self.codes_tdata_width}> >& codes"]
        if self.weight_stream:
            args.append(f"hls::stream<ap_uint<{self.lane_bits}> >& weights")
        args.append(f"hls::stream<ap_uint<{self.sums_width}> >& sums")
        if self.has_layer:
            args.append(f"ap_uint<{self.layer_bits}> layer")
        if self.batched:
            args.append(f"ap_uint<{self.tok_bits}> n_tokens")
        return f"void {self.module}({', '.join(args)});"


def mvu_rtls(plan: HardwarePlan) -> list[MvuRtl]:
    rtls = [MvuRtl(plan.top, b) for b in plan.bitlinears]
    for m in rtls:
        if m.acc_width < TERM_WIDTH:   # the RTL adds 9-bit terms; a 1-column matrix is no use anyway
            raise HlsgenError(f"rtl: the {m.kind} projection has {m.cols} column(s) (allowed: at least 2)")
    return rtls


# ----------------------------------------------------------------------------- weight lanes
def matrix_lanes(words: np.ndarray, lane_bits: int, count: int, packing: str = "2bit") -> list[int]:
    """The first `count` lanes of one matrix's lane words (uint64 [W, 8 * stripes], least
    significant first), in the order the MVU consumes them; lanes never straddle words.  The RTL
    MVU takes 2-bit lanes, so 5trit words are decoded here (words.weight_words' layout)."""
    if packing == "5trit":
        data = np.ascontiguousarray(pack_2bit(trit_folds(words, lane_bits // 2, count).reshape(-1)))
    else:
        data = np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(-1)
    if lane_bits >= 8:
        step = lane_bits // 8
        return [int.from_bytes(data[i * step:(i + 1) * step].tobytes(), "little") for i in range(count)]
    per_byte = 8 // lane_bits
    shifts = np.arange(per_byte, dtype=np.uint8) * lane_bits
    lanes = (data[:, None] >> shifts) & ((1 << lane_bits) - 1)
    return [int(v) for v in lanes.reshape(-1)[:count]]


def trit_folds(words: np.ndarray, lanes: int, count: int) -> np.ndarray:
    """Codes [count, lanes] of 5trit words: stripe s holds lane part s of every fold, run on."""
    stripes = np.ascontiguousarray(words, dtype="<u8").reshape(len(words), -1, 8)
    part = lanes // stripes.shape[1]
    return np.concatenate([unpack_5trit(np.ascontiguousarray(stripes[:, s]).view(np.uint8).reshape(-1), count * part)
                           .reshape(count, part) for s in range(stripes.shape[1])], axis=1)


def mem_text(lanes: list[int], lane_bits: int) -> str:
    digits = -(-lane_bits // 4)
    return "".join(f"{v:0{digits}x}\n" for v in lanes)


def rom_lanes(m: MvuRtl, words: np.ndarray) -> list[int]:
    """Every matrix of the kind, one after another, as the ROM holds them."""
    per_matrix = words.reshape(m.matrices, m.words_per_matrix, -1)
    return [lane for matrix in per_matrix
            for lane in matrix_lanes(matrix, m.lane_bits, m.cycles_per_matrix, m.plan.packing)]


# ----------------------------------------------------------------------------- ECP5 block RAMs
DP16KD_DEPTH, DP16KD_WIDTH = 1024, 18     # the 1K x 18 configuration (Lattice TN1264; Yosys brams_16kd.txt)
DP16KD_WORDS_PER_INIT = 16                # an INITVAL_xx holds 16 words, each in 20 bits (18 used)


def ecp5_rom_fits(m: MvuRtl) -> bool:
    """A ROM of at most 1K lanes is instanced as DP16KD blocks with their output register."""
    return not m.weight_stream and m.rom_depth <= DP16KD_DEPTH


def dp16kd_initvals(lanes: list[int], first_bit: int) -> list[int]:
    """The 64 INITVAL_xx of the block holding lane bits first_bit..first_bit+17 (what Yosys's own
    DP16KD mapping writes, techlibs/lattice/brams_map_16kd.v: word w at bits 20 * (w % 16) of
    INITVAL w // 16)."""
    mask = (1 << DP16KD_WIDTH) - 1
    words = [(lane >> first_bit) & mask for lane in lanes] + [0] * (DP16KD_DEPTH - len(lanes))
    return [sum(words[i * DP16KD_WORDS_PER_INIT + j] << (20 * j) for j in range(DP16KD_WORDS_PER_INIT))
            for i in range(DP16KD_DEPTH // DP16KD_WORDS_PER_INIT)]


def ecp5_rom_text(m: MvuRtl, lanes: list[int], banner: str) -> str:
    """rtl/<module>_rom.v: the lane ROM as DP16KD blocks at 1K x 18, REGMODE OUTREG (two cycles
    from addr to lane, as the portable ROM in mvu.v.j2).  Read by `hlsgen synth --pnr ecp5` with
    HLSGEN_ECP5_DP16KD defined; simulators read the portable ROM."""
    blocks = -(-m.lane_bits // DP16KD_WIDTH)
    pad = DP16KD_WIDTH * blocks - m.lane_bits
    lines = [f"// {banner}", f"// {m.module}'s weight ROM: {m.rom_depth} x {m.lane_bits} bits in {blocks} DP16KD "
             "(1K x 18, output register on).", "`default_nettype none", "",
             f"module {m.module}_rom (", "    input  wire clk,", f"    input  wire [{m.addr_bits}-1:0] addr,",
             f"    output wire [{m.lane_bits}-1:0] lane", ");",
             f"    wire [{DP16KD_WIDTH * blocks}-1:0] data;",
             f"    assign lane = data[{m.lane_bits}-1:0];" if pad else "    assign lane = data;",
             f"    wire [13:0] address = {{{{{10 - m.addr_bits}{{1'b0}}}}, addr, 4'b0000}};   // x18: word address in bits 13:4"
             if m.addr_bits < 10 else "    wire [13:0] address = {addr, 4'b0000};   // x18: word address in bits 13:4"]
    for b in range(blocks):
        inits = ",\n".join(f"        .INITVAL_{i:02X}(320'h{v:080x})" for i, v in enumerate(dp16kd_initvals(lanes, b * DP16KD_WIDTH)))
        pins = ", ".join([f".ADA{i}(address[{i}])" for i in range(14)] + [f".DOA{i}(data[{b * DP16KD_WIDTH + i}])" for i in range(18)])
        lines += ["    DP16KD #(.DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .REGMODE_A(\"OUTREG\"), .REGMODE_B(\"NOREG\"),",
                  '        .CSDECODE_A("0b000"), .CSDECODE_B("0b000"), .WRITEMODE_A("NORMAL"), .WRITEMODE_B("NORMAL"),',
                  inits, f"    ) block{b} (",
                  "        .CLKA(clk), .CEA(1'b1), .OCEA(1'b1), .WEA(1'b0), .RSTA(1'b0), .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0),",
                  "        .CLKB(1'b0), .CEB(1'b0), .OCEB(1'b0), .WEB(1'b0), .RSTB(1'b0), .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0),",
                  f"        {pins}", "    );"]
    return "\n".join(lines + ["endmodule", "", "`default_nettype wire", ""])


# ----------------------------------------------------------------------------- golden vectors
@dataclass
class MvuVectors:
    """Matrix-vector products of one kind: which matrix, the int8 codes in, the exact sums out."""
    layers: np.ndarray       # int32 [N]
    codes: np.ndarray        # int8 [N, cols]
    expected: np.ndarray     # int64 [N, rows]


def traced_codes(spec: Spec, weights: Weights, calls: np.ndarray, logits: np.ndarray) -> golden.Trace:
    """The `.q` traces of the golden fixed model over the testbench sequence (checked to be the run
    whose logits the project already holds)."""

    trace = golden.Trace()

    def keep_codes(name, value):
        return trace(name, value) if name.endswith(".q") else value

    model = golden.Model(spec.model, weights, "fixed", spec.numerics)
    if not np.array_equal(run_calls(model, calls, keep_codes), logits):
        raise HlsgenError("rtl: the golden model did not reproduce the testbench logits; cannot take its codes")
    return trace


def mvu_vectors(m: MvuRtl, trace: golden.Trace, weights: Weights) -> MvuVectors:
    """Token by token, layer by layer: the order the hardware runs them in."""
    if m.kind == "lm_head":
        per_matrix = [trace.get("lm_head.q")]
    else:
        per_matrix = [trace.get(f"layer{l}.{TRACE_NAMES[m.kind]}.q") for l in range(m.matrices)]
    matrices = [p.codes for p in weights.of_kind(m.kind)]
    codes = np.stack(per_matrix, axis=1)                         # [T, matrices, cols]
    tokens = codes.shape[0]
    expected = np.stack([codes[:, l].astype(np.int64) @ matrices[l].T.astype(np.int64)
                         for l in range(m.matrices)], axis=1)    # [T, matrices, rows]
    layers = np.tile(np.arange(m.matrices, dtype=np.int32), tokens)
    return MvuVectors(layers=layers, codes=codes.reshape(-1, m.cols).astype(np.int8),
                      expected=expected.reshape(-1, m.rows))


def mvu_calls(matrices: int, call_tokens, count: int) -> list[list[int]]:
    """The first `count` vectors (token by token, layer by layer: token * matrices + layer) as the
    MVU's calls, the way the top runs them: each testbench call of n tokens (`call_tokens`, from
    tb/data/calls.bin) is one call per matrix, in layer order, of those n tokens' vectors.  Each
    call's vectors share a matrix, so one pass over its weights serves them all."""
    calls, first = [], 0
    for n in call_tokens:
        for layer in range(matrices):
            vectors = [i for i in range((first * matrices) + layer, (first + n) * matrices, matrices) if i < count]
            if vectors:
                calls.append(vectors)
        first += int(n)
    return calls


def read_vectors(project, entry: dict) -> MvuVectors:
    n = len(entry["layers"])
    codes = np.fromfile(project / entry["codes"], dtype=np.int8).reshape(n, entry["cols"])
    expected = np.fromfile(project / entry["expected"], dtype="<i4").reshape(n, entry["rows"]).astype(np.int64)
    return MvuVectors(np.array(entry["layers"], dtype=np.int32), codes, expected)


# ----------------------------------------------------------------------------- project files
def environment() -> jinja2.Environment:
    """The Jinja2 environment of every RTL template (templates/rtl/)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(resources.templates() / "rtl"), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_module(m: MvuRtl, banner: str) -> str:
    return environment().get_template("mvu.v.j2").render(m=m, banner=banner)


def index_entry(plan: HardwarePlan, m: MvuRtl, vectors: MvuVectors) -> dict:
    """What the cocotb bench needs to know about one kind, from the plan."""
    return {
        "module": m.module, "verilog": m.verilog_path, "kind": m.kind,
        "rows": m.rows, "cols": m.cols, "pe": m.pe, "simd": m.simd, "matrices": m.matrices,
        "acc_width": m.acc_width, "lane_bits": m.lane_bits, "has_layer": m.has_layer,
        "weight_stream": m.weight_stream, "words_per_matrix": m.words_per_matrix,
        "cycles_per_matrix": m.cycles_per_matrix,
        "mem": None if m.weight_stream else f"rtl/{m.mem_file}",
        # Off chip: the stripe buffers of every kind, this kind's lane words from base_word on.
        "weights": [p.data for p in plan.weight_ports] if m.weight_stream else None,
        "base_word": m.base_word,
        "layers": vectors.layers.tolist(),
        "codes": f"cosim/{m.kind}_codes.bin", "expected": f"cosim/{m.kind}_expected.bin",
        "plan": dataclasses.asdict(m.plan),     # what the module was printed from
    }


def project_files(spec: Spec, plan: HardwarePlan, weights: Weights, vectors) -> dict:
    """rtl/ (one module and ROM image per kind) and cosim/ (golden vectors and their index).

    `vectors` is the render.GoldenVectors of the testbench.  The ROM images are cut from the very
    words of the HLS ROMs (words.kind_words), so both designs hold the same bits."""

    trace = traced_codes(spec, weights, vectors.calls, vectors.logits)
    files, index = {}, {"generated_by": BANNER, "top": plan.top, "kinds": {}}
    for m in mvu_rtls(plan):
        files[m.verilog_path] = render_module(m, BANNER)
        if not m.weight_stream:
            lanes = rom_lanes(m, kind_words(plan, weights, m.kind))
            files[f"rtl/{m.mem_file}"] = mem_text(lanes, m.lane_bits)
            if ecp5_rom_fits(m):
                files[m.ecp5_rom_path] = ecp5_rom_text(m, lanes, BANNER)
        v = mvu_vectors(m, trace, weights)
        if np.abs(v.expected).max(initial=0) >= 1 << 31:
            raise HlsgenError(f"rtl: {m.kind} sums exceed 32 bits; the cosim vector files hold int32")
        entry = index_entry(plan, m, v)
        files[entry["codes"]] = v.codes.tobytes()
        files[entry["expected"]] = v.expected.astype("<i4").tobytes()
        index["kinds"][m.kind] = entry
    files[COSIM_INDEX] = json.dumps(index, indent=1) + "\n"
    return files
