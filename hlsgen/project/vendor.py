"""The vendor flow of a generated project, as data: how to build the bitstream (Alveo: v++ compile
and link to an .xclbin; Zynq: the Vitis HLS IP export, then a Vivado block design to .bit/.hwh),
how to program the board, and how to run the on-board self-test.

The templates print these commands (vendor.mk, the README) and `hlsgen bitstream` / `hlsgen
flash` run them (hlsgen/tools/deploy.py), so what is printed is what runs.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

from hlsgen.hardware import perf
from hlsgen.hardware.boards import Board
from hlsgen.project import integrity
from hlsgen.errors import HlsgenError
from hlsgen.hardware.planner import HardwarePlan, by_bundle
from hlsgen.project import open_board
from hlsgen.project.calls import CALL_HEADER, CALL_WIDTH

ALVEO_TARGETS = ("sw_emu", "hw_emu", "hw")
FLOW_FILE = "hls/flow.json"
IP_CELL = "accel"           # the accelerator's cell in the Vivado block design (PYNQ: overlay.accel)
HOST_BINARY = "impl/host"
# A C++ type per host dtype of a logit (planner.HardwarePlan.logit_dtype).
C_TYPES = {"<i1": "int8_t", "<i2": "int16_t", "<i4": "int32_t", "<i8": "int64_t"}


@dataclass(frozen=True)
class Step:
    what: str
    argv: tuple
    env: tuple = ()              # (name, value) pairs set for this step only
    on_board: bool = False       # runs on the board's own processor, not on this host

    @property
    def shell(self) -> str:
        prefix = "".join(f"{name}={shlex.quote(value)} " for name, value in self.env)
        return prefix + shlex.join(self.argv)


# A board given by path (hardware.board: my_board.yaml) travels with the project as this file.
BOARD_COPY = "hlsgen_board.yaml"


@dataclass(frozen=True)
class Flow:
    """What the vendor flow needs of a project: its top, its board and its clock."""
    top: str
    board: Board
    clock_mhz: float

    @classmethod
    def of_plan(cls, plan: HardwarePlan) -> "Flow":
        return cls(plan.top, plan.board, plan.clock_mhz)

    @classmethod
    def of_project(cls, project: Path) -> "Flow":
        path = Path(project) / FLOW_FILE
        if not path.is_file():
            raise HlsgenError(f"{project}: not an hlsgen project with a vendor flow (no {FLOW_FILE}; "
                              f"run `hlsgen build` first)")
        data = integrity.read_json(path)
        if not isinstance(data.get("top"), str) or not isinstance(data.get("board"), str):
            raise HlsgenError(f"{path}: corrupt, no 'top' or 'board' ({integrity.REBUILD})")
        board = data["board"]          # a shipped board's name, or the project's copy of its board file
        return cls(data["top"], Board.load(Path(project) / board if board == BOARD_COPY else board), data.get("clock_mhz"))

    def to_json(self, banner: str) -> str:
        # JSON has no comments: the banner is a field, as in the manifest.
        board = self.board.key if self.board.shipped else BOARD_COPY
        return json.dumps({"generated_by": banner, "top": self.top, "board": board,
                           "clock_mhz": self.clock_mhz}, indent=2) + "\n"

    @property
    def alveo(self) -> bool:
        return self.board.flow == "alveo"

    @property
    def ecp5(self) -> bool:
        """An open-tool ECP5 board: the RTL design, built by hlsgen itself (tools/deploy.py)."""
        return self.board.flow == "ecp5"

    @property
    def kernel(self) -> str:
        return f"{self.top}_top"

    @property
    def compute_unit(self) -> str:
        return f"{self.kernel}_1"

    def xo(self, target: str) -> str:
        return f"impl/{target}/{self.top}.xo"

    def xclbin(self, target: str = "hw") -> str:
        return f"impl/{target}/{self.top}.xclbin"

    @property
    def bitstream(self) -> str:
        """What programs the board: the hardware .xclbin (Alveo) or the .bit, its .hwh beside it."""
        return self.xclbin() if self.alveo else f"impl/{self.top}.bit"

    @property
    def hwh(self) -> str:
        return f"impl/{self.top}.hwh"

    @property
    def driver(self) -> str:
        return f"host/{self.top}_driver.py"

    @property
    def ip_repo(self) -> str:
        return f"hls/{self.top}_prj/sol1/impl/ip"

    # ------------------------------------------------------------------------- bitstream
    def vpp_steps(self, target: str) -> list[Step]:
        """v++ compile and link; -t and --platform are the same in both, as v++ requires."""
        out = f"impl/{target}"
        common = ("-t", target, "--platform", self.board.platform, "--save-temps", "--temp_dir", f"{out}/tmp")
        clock = () if self.clock_mhz == self.board.clock_mhz else ("--kernel_frequency", f"{self.clock_mhz:g}")
        xo = self.xo(target)
        # HLS schedules for the clock it is given at compile time (UG1393 2023.1 "Managing Clock
        # Frequencies": v++ -c --hls.clock <Hz>:<kernel>); the link's clock does not reach it.
        compile_clock = ("--hls.clock", f"{round(self.clock_mhz * 1e6)}:{self.kernel}")
        return [Step(f"compile the kernel to {xo}",
                     ("v++", "-c", *common, *compile_clock, "-k", self.kernel, "-I", "src", "-o", xo,
                      f"src/{self.top}.cpp")),
                Step(f"link it into {self.xclbin(target)}",
                     ("v++", "-l", *common, *clock, "--config", "hls/link.cfg", "-o", self.xclbin(target), xo))]

    @property
    def emconfig_step(self) -> Step:
        # XRT looks for emconfig.json beside the host executable.
        return Step("describe the emulated card (emconfig.json)",
                    ("emconfigutil", "--platform", self.board.platform, "--od", str(Path(HOST_BINARY).parent)))

    def build_steps(self, target: str = "hw") -> list[Step]:
        if not self.alveo:
            if target != "hw":
                raise HlsgenError(f"--target: {target} is an Alveo emulation target (allowed: hw on {self.board.key})")
            return [Step("synthesise the HLS IP and export it to the IP catalog",
                         ("vitis_hls", "-f", "hls/run_hls.tcl", "-tclargs", "csynth", "export")),
                    Step(f"block design, bitstream and .hwh: {self.bitstream}, {self.hwh}",
                         ("vivado", "-mode", "batch", "-nojournal", "-log", "impl/vivado.log",
                          "-source", "hls/vivado_bd.tcl"))]
        if target not in ALVEO_TARGETS:
            raise HlsgenError(f"--target: {target!r} is not an Alveo target (allowed: {', '.join(ALVEO_TARGETS)})")
        return self.vpp_steps(target) + ([] if target == "hw" else [self.emconfig_step])

    def host_run_step(self, target: str) -> Step:
        """The native host's self-test on emulation or on the card."""
        env = () if target == "hw" else (("XCL_EMULATION_MODE", target),)
        return Step(f"self-test on {target}", (HOST_BINARY, self.xclbin(target), "tb/data"), env)

    def host_build(self, xrt: str = "$XILINX_XRT") -> str:
        """The native host's compile line; `xrt` is how the command refers to the XRT install."""
        return (f"g++ -std=c++17 -O2 -I{xrt}/include host/{self.top}_host.cpp -L{xrt}/lib -lxrt_coreutil "
                f"-pthread -o {HOST_BINARY}")

    # ------------------------------------------------------------------------- programming
    def method(self, method: str | None) -> str:
        allowed = self.board.program.methods
        if method is None:
            return allowed[0]
        if method not in allowed:
            raise HlsgenError(f"--method: {method!r} cannot program {self.board.key} "
                              f"(allowed: {', '.join(allowed)})")
        return method

    def program_steps(self, method: str, device: str | None, persist: bool = False) -> list[Step]:
        """Commands that put the bitstream on the board (pynq: the driver's load() does it).
        `persist`: into the configuration flash (openFPGALoader -f), not only the SRAM."""
        p = self.board.program
        if persist and method != "openfpgaloader":
            raise HlsgenError(f"--persist: {method} cannot write the configuration flash (allowed: --method openfpgaloader)")
        if method == "xbutil":
            target = ("--device", device) if device else ()
            return [Step("program the card", ("xbutil", "program", *target, "--user", self.bitstream))]
        if method == "openfpgaloader":
            cable = ("--ftdi-serial", device) if device else ()
            flash = ("-f",) if persist else ()
            what = "write the configuration flash over JTAG" if persist else "program the FPGA's SRAM over JTAG"
            return [Step(what if self.ecp5 else "program the PL over JTAG",
                         ("openFPGALoader", "-b", p.openfpgaloader_board, *cable, *flash, self.bitstream))]
        if method == "vivado":
            target = (device,) if device else ()
            return [Step("program the PL over JTAG (Vivado hardware manager)",
                         ("vivado", "-mode", "batch", "-nojournal", "-nolog", "-source", "hls/program_jtag.tcl",
                          "-tclargs", self.bitstream, *target))]
        return []

    def driver_backend(self, method: str) -> str:
        if self.ecp5:
            return "serial"
        return "xrt" if method == "xbutil" else "pynq"

    def self_test_step(self, method: str, device: str | None, port: str | None = None) -> Step:
        """Golden vectors through the driver, bit for bit. After JTAG it must run on the board's PS
        (with PYNQ), which drives the PL; `pynq` loads the overlay itself.  An ECP5 board is driven
        from this host over its USB serial bridge (`port`)."""
        backend = self.driver_backend(method)
        if self.ecp5:
            target = ("--device", port) if port else ()
            return Step("self-test over the serial link: the golden vectors through the driver, bit for bit",
                        ("python3", self.driver, "--backend", "serial", *target, "--self-test"))
        target = ("--device", device) if device and backend == "xrt" else ()
        what = "self-test: the golden vectors through the driver, bit for bit"
        if method == "pynq":
            what = "load the overlay (this programs the device), then the " + what
        return Step(what,
                    ("python3", self.driver, "--backend", backend, *target, "--self-test"),
                    on_board=method in ("openfpgaloader", "vivado"))

    def required_files(self, method: str) -> list[str]:
        if method == "pynq" and not self.alveo:
            return [self.bitstream, self.hwh]      # PYNQ reads the .hwh named after the .bit
        return [self.bitstream]


# ----------------------------------------------------------------------------- project files
def channel_for_pynq(link: str) -> str:
    """PYNQ-on-Alveo memory name of a link.cfg channel: HBM[3] -> HBM3, DDR[1] -> bank1."""
    bank, _, index = link.partition("[")
    first = index.rstrip("]").split(":")[0]
    return f"HBM{first}" if bank == "HBM" else f"bank{first}"


def bundle_ports(plan: HardwarePlan) -> dict:
    """m_axi bundle -> its first port: one AXI master each (the planner gives the ports of a bundle
    the same channels), so the block design connects each bundle once."""
    return {bundle: ports[0] for bundle, ports in by_bundle(plan.memory_ports).items()}


def project_files(plan: HardwarePlan, env, context: dict) -> dict:
    """The vendor flow and the host drivers of one project: {relpath: text}."""

    flow = Flow.of_plan(plan)
    bundles = bundle_ports(plan)
    links = {p.name: p.link for p in plan.memory_ports}
    used_channels = sorted({c for p in bundles.values() for c in p.channels})
    context = dict(context, flow=flow, ip_cell=IP_CELL, logit_ctype=C_TYPES[plan.logit_dtype],
                   bundles=bundles, links=links, call_header=CALL_HEADER, call_width=CALL_WIDTH,
                   ps_enable=[plan.board.ps.slave_enable[c] for c in used_channels] if plan.board.ps else [],
                   hp_ports=[plan.board.ps.slaves[c] for c in used_channels] if plan.board.ps else [],
                   hp_gbps=plan.board.memory[0].port_gbps(plan.clock_mhz) if plan.board.ps else 0,
                   pynq_memory={name: channel_for_pynq(link) for name, link in links.items()} if flow.alveo else {},
                   targets={t: flow.build_steps(t) for t in (ALVEO_TARGETS if flow.alveo else ("hw",))},
                   make_host_build=flow.host_build("$(XILINX_XRT)"), host_build=flow.host_build(),
                   # The model's cycles for a call of 1 .. batch tokens: the drivers' deadlines.
                   call_cycles=[math.ceil(perf.estimate(plan, n).cycles_per_call) for n in range(1, plan.batch + 1)])
    if flow.ecp5:      # the RTL design: board top, UART and pins; bitstream by hlsgen itself
        context = dict(context, **open_board.context(plan, context["spec_digest"]))
        files = open_board.project_files(plan, env, context)
        files[flow.driver] = env.get_template("host/driver.py.j2").render(**context)
        files[FLOW_FILE] = flow.to_json(context["banner"])
        return files
    templates = [("host/driver.py.j2", flow.driver), ("vendor/vendor.mk.j2", "vendor.mk")]
    if flow.alveo:
        templates += [("vendor/link.cfg.j2", "hls/link.cfg"), ("host/xrt_host.cpp.j2", f"host/{plan.top}_host.cpp")]
    else:
        templates += [("vendor/vivado_bd.tcl.j2", "hls/vivado_bd.tcl"),
                      ("vendor/program_jtag.tcl.j2", "hls/program_jtag.tcl")]
    files = {rel: env.get_template(template).render(**context) for template, rel in templates}
    files[FLOW_FILE] = flow.to_json(context["banner"])
    return files

