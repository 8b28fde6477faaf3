"""Board files (boards/*.yaml): what the planner, the vendor flow and `hlsgen flash` know about a
target, validated against a small explicit schema.

The schema is written by hand rather than with jsonschema: the rules that matter here depend on
each other (a Zynq board needs a `ps` section whose slave ports match its memory channels; an
Alveo board needs a Vitis platform), and the errors must name the file, the key and what is
allowed, which a generic validator would need as much custom code to say.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hlsgen.errors import HlsgenError
from hlsgen.schema import TOKEN, TOKEN_ALLOWED, Problems, Section
from hlsgen import resources as data_folders

BRAM36_BITS = 36 * 1024
URAM_BITS = 288 * 1024
FLOWS = ("alveo", "zynq", "ecp5")
MEMORY_KINDS = ("hbm", "ddr")
# Programming methods: xbutil (Alveo), pynq (overlay load on the board, Zynq or Alveo),
# openfpgaloader and vivado (JTAG hardware manager).
METHODS = {"alveo": ("xbutil", "pynq"), "zynq": ("pynq", "openfpgaloader", "vivado"), "ecp5": ("openfpgaloader",)}
RESOURCES = ("lut", "ff", "bram36", "uram", "dsp")
# A Lattice ECP5 counts its own primitives: LUT4s, DP16KD 18 Kbit block RAMs, MULT18X18D multipliers.
ECP5_RESOURCES = ("lut", "ff", "dp16kd", "mult18")
DP16KD_BITS = 18 * 1024


@dataclass(frozen=True)
class Memory:
    """One kind of memory the PL reaches, as `count` channels (HBM pseudo-channels, DDR banks, or
    the PS slave ports that lead to a Zynq's DDR)."""
    kind: str                     # hbm | ddr
    bank: str                     # link.cfg names channel n `<bank>[n]` (Alveo)
    count: int
    gbps_each: float | None       # nominal per channel; None: a Zynq HP port, port_bits at the PL clock
    mb_each: float | None = None  # capacity of one channel (each reaches only its own)
    mb_total: float | None = None  # capacity shared by all channels (one DDR behind several ports)
    gbps_total: float | None = None
    achievable_gbps: float | None = None   # what a published measurement obtained, all channels together
    source: str | None = None              # where achievable_gbps comes from
    port_bits: int | None = None           # a Zynq HP port's width (its clock is the PL clock the block design sets)

    @property
    def shared(self) -> bool:
        return self.mb_total is not None

    @property
    def efficiency(self) -> float:
        """Achievable over nominal bandwidth of the memory (1 without a measurement)."""
        return 1.0 if self.achievable_gbps is None else self.achievable_gbps / self.bandwidth_gbps

    def port_gbps(self, clock_mhz: float) -> float:
        """A Zynq HP port: port_bits at its clock, the PL clock (Zynq US+ TRM: 128 bits x clock)."""
        return self.port_bits / 8 * clock_mhz / 1e3

    def channel_gbps(self, clock_mhz: float) -> float:
        """What one channel gives a kernel at `clock_mhz`: an HP port's width x the PL clock, or a
        channel's nominal figure scaled to the measured efficiency of the memory."""
        return self.port_gbps(clock_mhz) if self.port_bits else self.gbps_each * self.efficiency

    def achievable_total_gbps(self, clock_mhz: float) -> float:
        """The most all channels together give: the measured figure, and on a Zynq no more than
        its HP ports carry at the PL clock."""
        measured = self.achievable_gbps if self.achievable_gbps is not None else self.bandwidth_gbps
        return min(measured, self.count * self.port_gbps(clock_mhz)) if self.port_bits else measured

    @property
    def capacity_bytes(self) -> int:
        return int((self.mb_total if self.shared else self.mb_each * self.count) * 2**20)

    @property
    def channel_bytes(self) -> int:
        """What one channel can hold (all of it when the channels share one memory)."""
        return int((self.mb_total if self.shared else self.mb_each) * 2**20)

    @property
    def bandwidth_gbps(self) -> float:
        """The nominal (data-sheet) bandwidth of the memory."""
        return self.gbps_total if self.gbps_total is not None else self.gbps_each * self.count


@dataclass(frozen=True)
class ProcessingSystem:
    """The Zynq PS as the Vivado block design sees it."""
    ip: str                       # xilinx.com:ip:<ip>:*, automation rule xilinx.com:bd_rule:<ip>
    automation: str               # apply_bd_automation -config of the PS
    master: str                   # PS master port driving the accelerator's s_axi_control
    slaves: tuple                 # PS slave ports to DDR, one per memory channel
    slave_enable: tuple           # the PS property enabling each slave port
    clock: str                    # PL clock pin
    clock_mhz_property: str
    properties: dict              # further PS settings (e.g. unused masters off)
    pl_base: int                  # address of the first PL peripheral


@dataclass(frozen=True)
class Ecp5:
    """What the open ECP5 flow needs of a board: nextpnr's device, the oscillator, the UART pins."""
    size: str                     # nextpnr-ecp5 --<size>: 25k | 45k | 85k ...
    package: str                  # nextpnr-ecp5 --package
    speed: int
    oscillator_pin: str
    oscillator_mhz: float
    uart_tx: str                  # the FPGA's transmit pin (the bridge's RXD)
    uart_rx: str
    baud: int
    io_type: str
    leds: tuple


@dataclass(frozen=True)
class Programming:
    methods: tuple                # the first is the default
    openfpgaloader_board: str | None = None
    hw_device: str | None = None  # Vivado hardware manager device name pattern


@dataclass(frozen=True)
class Slrs:
    """An Alveo card's super logic regions: how many, and what each holds."""
    count: int
    resources: dict               # per SLR, RESOURCES
    hbm_slr: int | None = None    # the SLR next to the HBM stacks


@dataclass(frozen=True)
class Board:
    key: str
    name: str
    part: str
    flow: str
    clock_mhz: float
    resources: dict
    memory: tuple
    program: Programming
    platform: str | None = None
    board_part: str | None = None
    ps: ProcessingSystem | None = None
    ecp5: Ecp5 | None = None
    conservative_clock_mhz: float | None = None   # a clock large designs reach without floorplanning
    lut_budget: float | None = None               # the share of LUTs a design may take (None: the planner's default)
    slrs: Slrs | None = None

    source: Path | None = None     # the board file

    @classmethod
    def load(cls, ref: str) -> "Board":
        """A shipped board by name, or a board file by path (as spec.hardware.board holds them)."""
        return load(path_of(ref))

    @property
    def shipped(self) -> bool:
        return self.source is None or self.source.parent == data_folders.boards().resolve()

    @property
    def onchip_bits(self) -> int:
        r = self.resources
        if self.flow == "ecp5":
            return r["dp16kd"] * DP16KD_BITS
        return r["bram36"] * BRAM36_BITS + r["uram"] * URAM_BITS

    def memory_of(self, kind: str) -> Memory:
        return next(m for m in self.memory if m.kind == kind)

    @property
    def memory_kinds(self) -> list[str]:
        return [m.kind for m in self.memory]

    def channel_name(self, memory: Memory, channels: tuple) -> str:
        """How the vendor flow names these channels: HBM[2], DDR[0:1], or a PS slave port."""
        if self.flow == "zynq":
            return self.ps.slaves[channels[0]]
        span = f"{channels[0]}" if len(channels) == 1 else f"{channels[0]}:{channels[-1]}"
        return f"{memory.bank}[{span}]"

    @property
    def board_part_pattern(self) -> str:
        """The board part with any version, for get_board_parts."""
        return self.board_part.rsplit(":", 1)[0] + ":*"


# ----------------------------------------------------------------------------- schema
# Read with the one validator of configs and boards (hlsgen/schema.py).  A board file may come from
# anywhere (`hardware.board: path/to/board.yaml`), and its strings reach Tcl, make, shell commands
# and C++: each is matched against a strict pattern.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+()/-]{0,63}$")
NAME_ALLOWED = "letters, digits, spaces and _ . + ( ) / -, at most 64 characters"
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")      # the file's stem: the board's key
# A bandwidth's source: a citation on one line; it reaches only reports, never a tool.
CITATION = re.compile(r"^[^\x00-\x1f\x7f]{1,400}$")
CITATION_ALLOWED = "one line of text, at most 400 characters"
DEVICE = re.compile(r"^[A-Za-z0-9_*][A-Za-z0-9_.:*-]{0,127}$")
DEVICE_ALLOWED = "letters, digits and _ . : - *, at most 128 characters"
# The -config of apply_bd_automation, inside Tcl braces: words and double-quoted values, nothing
# that could close the braces or substitute ([ ] { } $ \ ;).
AUTOMATION = re.compile(r'^[A-Za-z0-9_ ",.:=-]{1,200}$')
AUTOMATION_ALLOWED = 'words, spaces, double quotes and , . : = -, at most 200 characters'


def _memory(f: Section) -> Memory:
    port_bits = f.int("port_bits", minimum=8, optional=True)
    memory = Memory(kind=f.choice("kind", None, MEMORY_KINDS), bank=f.text("bank"),
                    count=f.int("count", minimum=1), gbps_each=f.float("gbps_each", None, optional=port_bits is not None),
                    mb_each=f.float("mb_each", None, optional=True), mb_total=f.float("mb_total", None, optional=True),
                    gbps_total=f.float("gbps_total", None, optional=port_bits is None),
                    achievable_gbps=f.float("achievable_gbps", None, optional=True),
                    source=f.text("source", required=False, pattern=CITATION, allowed=CITATION_ALLOWED),
                    port_bits=port_bits)
    f.check()
    if (memory.achievable_gbps is None) != (memory.source is None):
        raise HlsgenError(f"{f.path}: achievable_gbps and source go together (allowed: both, the measured "
                          f"bandwidth and where it was published)")
    if memory.achievable_gbps is not None and memory.achievable_gbps > memory.bandwidth_gbps:
        raise HlsgenError(f"{f.path}.achievable_gbps: {memory.achievable_gbps:g} is above the nominal "
                          f"{memory.bandwidth_gbps:g} GB/s (allowed: at most the nominal bandwidth)")
    if (memory.mb_each is None) == (memory.mb_total is None):
        raise HlsgenError(f"{f.path}: give exactly one of mb_each (per channel) and mb_total (shared) "
                          f"(allowed: mb_each for HBM/DDR banks, mb_total for one DDR behind several ports)")
    return memory


def _properties(f: Section) -> dict:
    """PS properties: a name of the vendor's, set to a number or a word."""
    values = {}
    for key, value in f.data.items():
        f.known.add(key)
        word = isinstance(value, str) and TOKEN.match(value)
        if not (isinstance(key, str) and TOKEN.match(key)):
            f.fail(f"{f.where(key)}: the property name is not allowed (allowed: {TOKEN_ALLOWED})")
        elif isinstance(value, bool) or not (isinstance(value, (int, float)) or word):
            f.fail(f"{f.where(key)}: {value!r} is not allowed (allowed: a number, or {TOKEN_ALLOWED})")
        else:
            values[key] = value
    return values


def _ps(f: Section, channels: int) -> ProcessingSystem:
    ps = ProcessingSystem(ip=f.text("ip"), automation=f.text("automation", pattern=AUTOMATION,
                                                             allowed=AUTOMATION_ALLOWED),
                          master=f.text("master"), slaves=tuple(f.strings("slaves")),
                          slave_enable=tuple(f.strings("slave_enable")),
                          clock=f.text("clock"), clock_mhz_property=f.text("clock_mhz_property"),
                          properties=_properties(f.sub("properties", required=True)),
                          pl_base=f.int("pl_base", minimum=0))
    f.check()
    for key, values in (("slaves", ps.slaves), ("slave_enable", ps.slave_enable)):
        if channels and len(values) != channels:      # 0: the memory entry itself is wrong
            raise HlsgenError(f"{f.where(key)}: {len(values)} entries for {channels} memory channels "
                              f"(allowed: one per channel of the memory entry)")
    return ps


def _ecp5(f: Section) -> Ecp5:
    n, osc, uart = f.sub("nextpnr", required=True), f.sub("oscillator", required=True), f.sub("uart", required=True)
    ecp5 = Ecp5(size=n.text("size"), package=n.text("package"), speed=n.int("speed", minimum=1),
                oscillator_pin=osc.text("pin"), oscillator_mhz=osc.float("mhz", None),
                uart_tx=uart.text("tx"), uart_rx=uart.text("rx"), baud=uart.int("baud", minimum=300),
                io_type=f.text("io_type"), leds=tuple(f.strings("leds") if f.has("leds") else ()))
    for sub in (n, osc, uart):
        sub.finish()
    f.finish()
    return ecp5


def _programming(f: Section, flow: str) -> Programming:
    allowed = METHODS.get(flow, ())
    methods = f.raw("methods")
    if not isinstance(methods, list) or not methods or not all(m in allowed for m in methods):
        f.fail(f"{f.where('methods')}: {methods!r} is not allowed (allowed: a list of {', '.join(allowed)})")
        methods = []
    program = Programming(methods=tuple(methods), openfpgaloader_board=f.text("openfpgaloader_board", required=False),
                          hw_device=f.text("hw_device", required=False, pattern=DEVICE, allowed=DEVICE_ALLOWED))
    f.check()
    needs = {"openfpgaloader": ("openfpgaloader_board", program.openfpgaloader_board),
             "vivado": ("hw_device", program.hw_device)}
    for method, (key, value) in needs.items():
        if method in methods and value is None:
            raise HlsgenError(f"{f.where(key)}: missing (allowed: required with the method {method})")
    return program


def _check_model_inputs(board: Board, where: str) -> None:
    """What the performance model and the fit check read from an AMD board must be there."""
    if board.conservative_clock_mhz is None:
        raise HlsgenError(f"{where}.conservative_clock_mhz: missing (allowed: a clock in MHz, at most "
                          f"clock_mhz, that large designs reach without floorplanning)")
    if board.conservative_clock_mhz > board.clock_mhz:
        raise HlsgenError(f"{where}.conservative_clock_mhz: {board.conservative_clock_mhz:g} is above clock_mhz "
                          f"{board.clock_mhz:g} (allowed: at most the target clock)")
    if board.lut_budget is not None and not 0 < board.lut_budget <= 1:
        raise HlsgenError(f"{where}.lut_budget: {board.lut_budget:g} is out of range (allowed: 0 < lut_budget <= 1)")
    missing = [i for i, m in enumerate(board.memory) if m.achievable_gbps is None]
    if missing:
        raise HlsgenError(f"{where}.memory[{missing[0]}].achievable_gbps: missing (allowed: the measured "
                          f"bandwidth in GB/s, with its source)")
    if board.flow == "zynq" and board.memory[0].port_bits is None:
        raise HlsgenError(f"{where}.memory[0].port_bits: missing (allowed: the HP ports' width in bits; "
                          f"their clock is the PL clock)")


def path_of(ref) -> Path:
    """A board file: a shipped board's name (boards/<name>.yaml) or a path (spec.py resolved it)."""
    ref = str(ref)
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        return Path(ref)
    return data_folders.boards() / f"{ref}.yaml"


def _slrs(f: Section) -> Slrs:
    r = f.sub("resources", required=True)
    slrs = Slrs(count=f.int("count", minimum=1), resources={key: r.int(key, minimum=0) for key in RESOURCES},
                hbm_slr=f.int("hbm_slr", minimum=0, optional=True))
    r.finish()
    f.check()
    return slrs


def load(path: Path) -> Board:
    """Read and validate one board file (parsed once per version of the file: explore plans
    thousands of designs on one board)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise HlsgenError(f"{_where(path)}: no such board file") from None
    return _parse(path, stat.st_mtime_ns, stat.st_size)


def _where(path: Path) -> str:
    """How errors name a board file: boards/<name>.yaml for the shipped ones, else its path."""
    shipped = path.parent.resolve() == data_folders.boards().resolve()
    return f"boards/{path.name}" if shipped else str(path)


@functools.lru_cache(maxsize=32)
def _parse(path: Path, mtime_ns: int, size: int) -> Board:
    where = _where(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HlsgenError(f"{where}: no such board file") from None
    except yaml.YAMLError as exc:
        raise HlsgenError(f"{where}: not valid YAML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HlsgenError(f"{where}: cannot be read ({exc})") from None
    problems = Problems()
    f = Section(data, where, problems)
    if not KEY.match(path.stem):
        f.fail(f"{where}: the file name {path.stem!r} is not a board name (allowed: a letter or digit, then "
               f"letters, digits, _ or -, at most 63 characters, then .yaml)")
    board = None
    with problems.collecting():
        flow = f.choice("flow", None, FLOWS)
        r = f.sub("resources", required=True)
        resources = {key: r.int(key, minimum=0) for key in (ECP5_RESOURCES if flow == "ecp5" else RESOURCES)}
        r.finish()
        memory = []
        for i, entry in enumerate(f.items("memory")):
            with problems.collecting():
                memory.append(_memory(Section(entry, f"{where}.memory[{i}]", problems)))
        memory = tuple(memory)
        kinds = [m.kind for m in memory]
        if len(set(kinds)) != len(kinds):
            f.fail(f"{where}.memory: kinds {kinds} repeat (allowed: one entry per kind)")
        alveo, zynq = flow == "alveo", flow == "zynq"
        ps = ecp5 = None
        if zynq and f.has("ps"):
            with problems.collecting():
                ps = _ps(f.sub("ps"), memory[0].count if memory else 0)
        elif zynq:
            f.sub("ps", required=True)
        if flow == "ecp5":
            with problems.collecting():
                ecp5 = _ecp5(f.sub("ecp5", required=True))
        program = None
        with problems.collecting():
            program = _programming(f.sub("program", required=True), flow)
        board = Board(key=path.stem, name=f.text("name", pattern=NAME, allowed=NAME_ALLOWED), part=f.text("part"),
                      flow=flow, clock_mhz=f.float("clock_mhz", None), resources=resources, memory=memory,
                      platform=f.text("platform", required=alveo), board_part=f.text("board_part", required=zynq),
                      ps=ps, ecp5=ecp5, program=program, source=path.resolve(),
                      conservative_clock_mhz=f.float("conservative_clock_mhz", None, optional=True),
                      lut_budget=f.float("lut_budget", None, optional=True),
                      slrs=_slrs(f.sub("slrs")) if f.has("slrs") else None)
        f.check()
        if flow != "ecp5":      # the HLS model's inputs (an ECP5 design is measured, not modelled)
            _check_model_inputs(board, where)
        if flow == "ecp5" and (board.platform or board.board_part or "ps" in data):
            raise HlsgenError(f"{where}: platform, board_part and ps are Xilinx keys (allowed: ecp5 for an ECP5 board)")
        if alveo and (board.board_part or "ps" in data):
            raise HlsgenError(f"{where}: board_part and ps are Zynq keys (allowed: platform for an Alveo board)")
        if zynq and (board.platform or len(memory) != 1 or not memory[0].shared):
            raise HlsgenError(f"{where}: a Zynq board has no Vitis platform and one PS memory entry with mb_total "
                              f"(allowed: board_part, ps, one memory entry)")
    problems.raise_if_any()
    return board


def names() -> list[str]:
    return sorted(p.stem for p in data_folders.boards().glob("*.yaml"))

