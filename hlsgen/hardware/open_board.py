"""The whole accelerator on an open ECP5 board (flow `ecp5`, e.g. boards/ulx3s_85f.yaml), as data:
the PLL that makes the plan's clock, the serial link's framed protocol and its token rate, and the
fit check in the chip's own primitives (DP16KD, MULT18X18D, LUT4).

The RTL that uses these numbers is printed by hlsgen/project/open_board.py; the generated driver's
`serial` backend speaks the same protocol (templates/host/driver.py.j2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hlsgen.errors import HlsgenError
from hlsgen.hardware.boards import Board, DP16KD_BITS

# ----------------------------------------------------------------------------- PLL
# EHXPLLL (prjtrellis ecppll, Lattice TN1263): f_pfd = f_in / CLKI_DIV within 3.125-400 MHz,
# f_out = f_pfd * CLKFB_DIV (feedback from CLKOP), f_vco = f_out * CLKOP_DIV within 400-800 MHz.
PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
CLKI_MAX, CLKFB_MAX, CLKOP_MAX = 128, 80, 128


@dataclass(frozen=True)
class Pll:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    input_mhz: float

    @property
    def output_mhz(self) -> float:
        return self.input_mhz * self.clkfb_div / self.clki_div

    @property
    def vco_mhz(self) -> float:
        return self.output_mhz * self.clkop_div


def _plls(input_mhz: float):
    """Every EHXPLLL setting within the PFD and VCO ranges."""
    for clki in range(1, CLKI_MAX + 1):
        pfd = input_mhz / clki
        if not PFD_MHZ[0] <= pfd <= PFD_MHZ[1]:
            continue
        for clkfb in range(1, CLKFB_MAX + 1):
            for clkop in range(1, CLKOP_MAX + 1):
                vco = pfd * clkfb * clkop
                if vco > VCO_MHZ[1]:
                    break
                if vco >= VCO_MHZ[0]:
                    yield Pll(clki, clkfb, clkop, input_mhz)


def pll_at_most(input_mhz: float, limit_mhz: float) -> Pll:
    """The fastest setting whose output does not exceed `limit_mhz` (a clock lowered to what timing met)."""
    middle = sum(VCO_MHZ) / 2
    found = [p for p in _plls(input_mhz) if p.output_mhz <= limit_mhz]
    if not found:
        raise HlsgenError(f"--allow-slow: no EHXPLLL output from {input_mhz:g} MHz is at most {limit_mhz:g} MHz")
    return max(found, key=lambda p: (p.output_mhz, -abs(p.vco_mhz - middle)))


def pll(input_mhz: float, target_mhz: float) -> Pll:
    """The divisors nearest `target_mhz`, the VCO nearest the middle of its range on ties (what
    ecppll chooses: 25 -> 100 MHz is 1/4/6, 25 -> 50 MHz is 1/2/12)."""
    middle = sum(VCO_MHZ) / 2
    best = min(_plls(input_mhz), default=None,
               key=lambda p: (round(abs(p.output_mhz - target_mhz), 9), abs(p.vco_mhz - middle)))
    if best is None:
        raise HlsgenError(f"hardware.clock_mhz: {target_mhz:g} MHz cannot be made from {input_mhz:g} MHz by an "
                          f"EHXPLLL (allowed: about 3 to 400 MHz)")
    return best


# ----------------------------------------------------------------------------- the serial link
# Host -> FPGA: SYNC_IN, command, payload length (u16 LE), payload, CRC-8.
# FPGA -> host: SYNC_OUT, status, payload length (u16 LE), payload, CRC-8.
# The CRC-8 (polynomial x^8 + x^2 + x + 1, initial 0) covers command/status, length and payload.
SYNC_IN, SYNC_OUT = 0xA5, 0x5A
CMD_VERSION, CMD_RUN, CMD_GENERATE = 0x56, 0x52, 0x47      # 'V', 'R', 'G'
STATUS = {0: "ok", 1: "CRC error", 2: "unknown command", 3: "bad length or field"}
PROTOCOL_VERSION = 1
FRAME_BYTES = 5                  # sync, command/status, length (2), CRC
MAX_PAYLOAD = 0xFFFF
BITS_PER_BYTE = 10               # 8N1: a start and a stop bit around each byte
RESET_BIT = 0x80                 # in a token entry's control byte; the slot is in the low bits
FLAG_LOGITS = 0x01               # RUN / GENERATE: send every token's logits before its next token
MIN_CLOCKS_PER_BIT = 8           # the receiver samples mid-bit on a phase accumulator
IDLE_TIMEOUT_S = 1e-3            # a frame that stops for this long is dropped by the receiver


def crc8(data: bytes, crc: int = 0) -> int:
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def byte_count(bits: int) -> int:
    return (bits + 7) // 8


@dataclass(frozen=True)
class Link:
    """The protocol's sizes for one design: tokens and logits as little-endian bytes."""
    baud: int
    vocab: int
    token_bytes: int
    logit_bytes: int
    batch: int

    @classmethod
    def of(cls, plan) -> "Link":
        return cls(baud=plan.board.ecp5.baud, vocab=plan.vocab, token_bytes=byte_count((plan.vocab - 1).bit_length()),
                   logit_bytes=byte_count(plan.numerics["act_width"]), batch=plan.batch)

    @property
    def bytes_per_second(self) -> float:
        return self.baud / BITS_PER_BYTE

    @property
    def entry_bytes(self) -> int:
        """A RUN entry: the control byte (slot, reset) and the token."""
        return 1 + self.token_bytes

    def reply_bytes_per_token(self, logits: bool) -> int:
        return self.token_bytes + (self.vocab * self.logit_bytes if logits else 0)

    def max_generate(self, logits: bool = False) -> int:
        return MAX_PAYLOAD // self.reply_bytes_per_token(logits)

    def tokens_per_second(self, logits: bool = False, round_trip: bool = False) -> float:
        """What the link alone allows.  GENERATE streams the next tokens back (the FPGA feeds each
        one in itself), so only the reply bytes count; a RUN per token (round_trip) sends a frame
        and waits for one, before any USB latency."""
        per_token = self.reply_bytes_per_token(logits)
        if round_trip:
            per_token += 2 * FRAME_BYTES + 1 + self.entry_bytes
        return self.bytes_per_second / per_token


def clock_defines(board: Board, clock_mhz: float) -> dict:
    """The Verilog defines of the board top at `clock_mhz`: the PLL divisors, the UART's phase
    increment per clock (16 fraction bits of a bit period) and the receiver's idle timeout."""
    e = board.ecp5
    p = pll(e.oscillator_mhz, clock_mhz)
    mhz = p.output_mhz
    if mhz * 1e6 < MIN_CLOCKS_PER_BIT * e.baud:
        raise HlsgenError(f"hardware.clock_mhz: {mhz:g} MHz is too slow for the {e.baud:,} baud UART of "
                          f"{board.key} (allowed: at least {MIN_CLOCKS_PER_BIT * e.baud / 1e6:g} MHz)")
    return {"HLSGEN_CLKI_DIV": p.clki_div, "HLSGEN_CLKFB_DIV": p.clkfb_div, "HLSGEN_CLKOP_DIV": p.clkop_div,
            "HLSGEN_BAUD_INC": round(e.baud * 65536 / (mhz * 1e6)),
            "HLSGEN_IDLE_CYCLES": math.ceil(IDLE_TIMEOUT_S * mhz * 1e6)}


# ----------------------------------------------------------------------------- fit
# DP16KD aspect ratios (depth, width): 16K x 1 to 1K x 18, and 512 x 36 as a pseudo dual port.
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def rom_blocks(depth: int, width: int) -> int:
    """DP16KD blocks of the best aspect ratio for a depth x width memory."""
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in DP16KD_SHAPES)


def rom_blocks_of(plan) -> dict:
    """Block RAM of the core's largest ROMs (hlsgen/project/rtl_core.py): one per projection kind
    with every layer's lane words, and the embedding table, one entry per word."""
    blocks = {f"{b.kind} weights": rom_blocks(b.matrices * b.rows * b.cols // (b.pe * b.simd), 2 * b.pe * b.simd)
              for b in plan.bitlinears}
    blocks["embedding"] = rom_blocks(plan.vocab * plan.hidden, plan.numerics["act_width"])
    return blocks


def check_plan(plan) -> None:
    """At build time: the weights stay on chip, and the weight and embedding ROMs fit the DP16KD
    blocks (the netlist's own count is checked again before place and route)."""
    board = plan.board
    if plan.offchip:
        raise HlsgenError(f"hardware.weights: {plan.weights_place!r} on {board.key} (allowed: onchip; the ECP5 design "
                          f"keeps its weights in DP16KD ROMs)")
    blocks = rom_blocks_of(plan)
    need, have = sum(blocks.values()), board.resources["dp16kd"]
    if need > have:
        detail = ", ".join(f"{name} {n}" for name, n in blocks.items())
        raise HlsgenError(f"hardware: the weight and embedding ROMs need {need} DP16KD blocks ({detail}) but {board.key} has "
                          f"{have} ({have * DP16KD_BITS / 8192:.0f} KB) (allowed: a smaller model)")


# Cells of a Yosys synth_ecp5 netlist, in the chip's resources: a CCU2C carry cell is two LUT4s,
# a TRELLIS_DPR16X4 distributed RAM takes a slice (two LUT4s).
NETLIST_CELLS = {"LUT4": ("lut", 1), "CCU2C": ("lut", 2), "TRELLIS_DPR16X4": ("lut", 2), "TRELLIS_FF": ("ff", 1),
                 "DP16KD": ("dp16kd", 1), "PDPW16KD": ("dp16kd", 1), "MULT18X18D": ("mult18", 1)}


def netlist_usage(netlist: dict, top: str) -> dict:
    """{resource: count} of a synthesized (flattened) netlist's top module."""
    used = dict.fromkeys(("lut", "ff", "dp16kd", "mult18"), 0)
    for cell in netlist["modules"][top]["cells"].values():
        resource, weight = NETLIST_CELLS.get(cell["type"], (None, 0))
        if resource:
            used[resource] += weight
    return used


def check_netlist(used: dict, board: Board) -> None:
    """After synthesis, before place and route: every resource within the chip, or the numbers."""
    over = {k: (n, board.resources[k]) for k, n in used.items() if n > board.resources[k]}
    if over:
        numbers = ", ".join(f"{k.upper()} {n:,} of {have:,}" for k, (n, have) in over.items())
        raise HlsgenError(f"bitstream: the synthesized design needs {numbers} on {board.key} ({board.part}) "
                          f"(allowed: a smaller model or parallelism)")
