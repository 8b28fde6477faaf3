"""Board files (boards/*.yaml): what the planner, the vendor flow and `hlsgen flash` know about a
target, validated against a small explicit schema.

The schema is written by hand rather than with jsonschema: the rules that matter here depend on
each other (a Zynq board needs a `ps` section whose slave ports match its memory channels; an
Alveo board needs a Vitis platform), and the errors must name the file, the key and what is
allowed, which a generic validator would need as much custom code to say.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass
from pathlib import Path

import yaml

from hlsgen.errors import HlsgenError
from hlsgen.resources import BOARDS_DIR

BRAM36_BITS = 36 * 1024
URAM_BITS = 288 * 1024
FLOWS = ("alveo", "zynq")
MEMORY_KINDS = ("hbm", "ddr")
# Programming methods: xbutil (Alveo), pynq (overlay load on the board, Zynq or Alveo),
# openfpgaloader and vivado (JTAG hardware manager).
METHODS = {"alveo": ("xbutil", "pynq"), "zynq": ("pynq", "openfpgaloader", "vivado")}
RESOURCES = ("lut", "ff", "bram36", "uram", "dsp")


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
    conservative_clock_mhz: float | None = None   # a clock large designs reach without floorplanning
    lut_budget: float | None = None               # the share of LUTs a design may take (None: the planner's default)
    slrs: Slrs | None = None

    @classmethod
    def load(cls, key: str) -> "Board":
        return load(BOARDS_DIR / f"{key}.yaml")

    @property
    def onchip_bits(self) -> int:
        r = self.resources
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
class _Fields:
    """Typed access to one mapping of a board file; every error names file and key."""

    def __init__(self, data, where: str):
        self.where = where
        if not isinstance(data, dict):
            raise HlsgenError(f"{where}: {data!r} is not a mapping")
        self.data = data
        self.used: set = set()

    def _fail(self, key, problem: str, allowed: str):
        raise HlsgenError(f"{self.where}.{key}: {problem} (allowed: {allowed})")

    def get(self, key, kind, allowed: str, required=True, check=lambda v: True):
        self.used.add(key)
        if key not in self.data:
            if required:
                self._fail(key, "is missing", allowed)
            return None
        value = self.data[key]
        ok_type = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if not ok_type or not check(value):
            self._fail(key, f"{value!r} is not valid", allowed)
        return value

    def text(self, key, required=True):
        return self.get(key, str, "a non-empty string", required, check=bool)

    def number(self, key, required=True):
        return self.get(key, (int, float), "a number > 0", required, check=lambda v: v > 0)

    def integer(self, key, minimum=0, required=True):
        return self.get(key, int, f"an integer >= {minimum}", required, check=lambda v: v >= minimum)

    def choice(self, key, allowed):
        return self.get(key, str, " | ".join(allowed), check=lambda v: v in allowed)

    def strings(self, key, required=True):
        return self.get(key, list, "a list of non-empty strings", required,
                        check=lambda v: bool(v) and all(isinstance(s, str) and s for s in v))

    def sub(self, key, required=True):
        value = self.get(key, dict, "a mapping", required)
        return None if value is None else _Fields(value, f"{self.where}.{key}")

    def finish(self):
        extra = sorted(set(self.data) - self.used, key=str)
        if extra:
            raise HlsgenError(f"{self.where}.{extra[0]}: unknown key (allowed: {', '.join(sorted(self.used))})")


def _memory(entry, where: str) -> Memory:
    f = _Fields(entry, where)
    port_bits = f.integer("port_bits", minimum=8, required=False)
    memory = Memory(kind=f.choice("kind", MEMORY_KINDS), bank=f.text("bank"),
                    count=f.integer("count", minimum=1), gbps_each=f.number("gbps_each", required=port_bits is None),
                    mb_each=f.number("mb_each", required=False), mb_total=f.number("mb_total", required=False),
                    gbps_total=f.number("gbps_total", required=port_bits is not None),
                    achievable_gbps=f.number("achievable_gbps", required=False),
                    source=f.text("source", required=False), port_bits=port_bits)
    f.finish()
    if (memory.achievable_gbps is None) != (memory.source is None):
        raise HlsgenError(f"{where}: achievable_gbps and source go together (allowed: both, the measured "
                          f"bandwidth and where it was published)")
    if memory.achievable_gbps is not None and memory.achievable_gbps > memory.bandwidth_gbps:
        raise HlsgenError(f"{where}.achievable_gbps: {memory.achievable_gbps:g} is above the nominal "
                          f"{memory.bandwidth_gbps:g} GB/s (allowed: at most the nominal bandwidth)")
    if (memory.mb_each is None) == (memory.mb_total is None):
        raise HlsgenError(f"{where}: give exactly one of mb_each (per channel) and mb_total (shared) "
                          f"(allowed: mb_each for HBM/DDR banks, mb_total for one DDR behind several ports)")
    return memory


def _ps(f: _Fields, channels: int) -> ProcessingSystem:
    ps = ProcessingSystem(ip=f.text("ip"), automation=f.text("automation"), master=f.text("master"),
                          slaves=tuple(f.strings("slaves")), slave_enable=tuple(f.strings("slave_enable")),
                          clock=f.text("clock"), clock_mhz_property=f.text("clock_mhz_property"),
                          properties=f.get("properties", dict, "a mapping of PS property: value"),
                          pl_base=f.integer("pl_base"))
    f.finish()
    for key, values in (("slaves", ps.slaves), ("slave_enable", ps.slave_enable)):
        if len(values) != channels:
            raise HlsgenError(f"{f.where}.{key}: {len(values)} entries for {channels} memory channels "
                              f"(allowed: one per channel of the memory entry)")
    return ps


def _programming(f: _Fields, flow: str) -> Programming:
    allowed = METHODS[flow]
    methods = f.get("methods", list, f"a list of {', '.join(allowed)}",
                    check=lambda v: bool(v) and all(m in allowed for m in v))
    program = Programming(methods=tuple(methods), openfpgaloader_board=f.text("openfpgaloader_board", required=False),
                          hw_device=f.text("hw_device", required=False))
    f.finish()
    needs = {"openfpgaloader": ("openfpgaloader_board", program.openfpgaloader_board),
             "vivado": ("hw_device", program.hw_device)}
    for method, (key, value) in needs.items():
        if method in methods and value is None:
            raise HlsgenError(f"{f.where}.{key}: is missing (allowed: required with the method {method})")
    return program


def _slrs(f: _Fields | None) -> Slrs | None:
    if f is None:
        return None
    r = f.sub("resources")
    slrs = Slrs(count=f.integer("count", minimum=1), resources={key: r.integer(key) for key in RESOURCES},
                hbm_slr=f.integer("hbm_slr", required=False))
    r.finish()
    f.finish()
    return slrs


def load(path: Path) -> Board:
    """Read and validate one board file (parsed once per version of the file: explore plans
    thousands of designs on one board)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise HlsgenError(f"boards/{path.name}: no such board file") from None
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _parse(path: Path, mtime_ns: int, size: int) -> Board:
    where = f"boards/{path.name}"
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HlsgenError(f"{where}: no such board file") from None
    except yaml.YAMLError as exc:
        raise HlsgenError(f"{where}: not valid YAML ({exc})") from None
    f = _Fields(data, where)
    flow = f.choice("flow", FLOWS)
    r = f.sub("resources")
    resources = {key: r.integer(key) for key in RESOURCES}
    r.finish()
    entries = f.get("memory", list, "a list of memory entries", check=bool)
    memory = tuple(_memory(entry, f"{where}.memory[{i}]") for i, entry in enumerate(entries))
    kinds = [m.kind for m in memory]
    if len(set(kinds)) != len(kinds):
        raise HlsgenError(f"{where}.memory: kinds {kinds} repeat (allowed: one entry per kind)")
    alveo = flow == "alveo"
    board = Board(key=path.stem, name=f.text("name"), part=f.text("part"), flow=flow,
                  clock_mhz=f.number("clock_mhz"), resources=resources, memory=memory,
                  platform=f.text("platform", required=alveo), board_part=f.text("board_part", required=not alveo),
                  ps=None if alveo else _ps(f.sub("ps"), memory[0].count),
                  program=_programming(f.sub("program"), flow),
                  conservative_clock_mhz=f.number("conservative_clock_mhz", required=False),
                  lut_budget=f.get("lut_budget", (int, float), "a share 0 < lut_budget <= 1", required=False,
                                   check=lambda v: 0 < v <= 1),
                  slrs=_slrs(f.sub("slrs", required=False)))
    f.finish()
    if board.conservative_clock_mhz is None:
        raise HlsgenError(f"{where}.conservative_clock_mhz: is missing (allowed: a clock in MHz, at most "
                          f"clock_mhz, that large designs reach without floorplanning)")
    if board.conservative_clock_mhz > board.clock_mhz:
        raise HlsgenError(f"{where}.conservative_clock_mhz: {board.conservative_clock_mhz:g} is above clock_mhz "
                          f"{board.clock_mhz:g} (allowed: at most the target clock)")
    missing = [i for i, m in enumerate(memory) if m.achievable_gbps is None]
    if missing:
        raise HlsgenError(f"{where}.memory[{missing[0]}].achievable_gbps: is missing (allowed: the measured "
                          f"bandwidth in GB/s, with its source)")
    if not alveo and memory[0].port_bits is None:
        raise HlsgenError(f"{where}.memory[0].port_bits: is missing (allowed: the HP ports' width in bits; "
                          f"their clock is the PL clock)")
    if alveo and (board.board_part or "ps" in data):
        raise HlsgenError(f"{where}: board_part and ps are Zynq keys (allowed: platform for an Alveo board)")
    if not alveo and (board.platform or len(memory) != 1 or not memory[0].shared):
        raise HlsgenError(f"{where}: a Zynq board has no Vitis platform and one PS memory entry with mb_total "
                          f"(allowed: board_part, ps, one memory entry)")
    return board


def names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))

