"""Issue 13's inputs of the performance model: achievable bandwidth with its source, the Zynq HP
ports' clock (one truth between the block design's Tcl and the model), the ceilings against both
the nominal and the achievable bandwidth."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import write_config
from test_vendor_flow import run_tcl

from hlsgen.hardware import boards, perf
from hlsgen.model import spec as spec_mod
from hlsgen.project import build


def test_every_board_has_an_achievable_bandwidth_with_its_source():
    for key in ("u280", "u55c", "u250", "zcu104", "kv260", "pynq_z2"):
        board = boards.Board.load(key)
        for memory in board.memory:
            assert memory.source and 0 < memory.achievable_gbps <= memory.bandwidth_gbps
        assert 0 < board.conservative_clock_mhz <= board.clock_mhz
    hbm = boards.Board.load("u280").memory_of("hbm")
    assert (hbm.bandwidth_gbps, hbm.achievable_gbps) == (460, 425)       # PERF_FACTS.md: Shuhai
    u280 = boards.Board.load("u280")
    assert u280.slrs.count == 3 and u280.slrs.hbm_slr == 0 and u280.lut_budget == 0.7


@pytest.mark.parametrize("board, clock_mhz, port_gbps", [("kv260", 100, 1.6), ("zcu104", 300, 4.8)])
def test_hp_port_bandwidth_is_128_bits_at_the_pl_clock(board, clock_mhz, port_gbps):
    """PERF_FACTS.md (Zynq US+ TRM): 1.6 GB/s at 100 MHz, 4.8 GB/s at 300 MHz."""
    memory = boards.Board.load(board).memory_of("ddr")
    assert memory.channel_gbps(clock_mhz) == pytest.approx(port_gbps)
    assert memory.achievable_total_gbps(clock_mhz) == pytest.approx(min(4 * port_gbps, 16.3))


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
@pytest.mark.parametrize("board, clock_mhz", [("kv260", None), ("zcu104", 150)])
def test_block_design_clocks_the_hp_ports_at_the_model_s_clock(tmp_path, board, clock_mhz):
    """The generated vivado_bd.tcl sets the PL clock, and checks every HP port it wires runs at
    it; the clock read back from the Tcl gives the model's per-port bandwidth and weight rate."""
    hardware = {"board": board, "weights": "ddr", "parallelism": {"pe": 4, "simd": 8}}
    if clock_mhz:
        hardware["clock_mhz"] = clock_mhz
    result = build.build(spec_mod.load(write_config(tmp_path, "p", hardware=hardware)))
    plan, tcl = result.plan, (result.out / "hls" / "vivado_bd.tcl").read_text()
    ps = plan.board.ps
    pl_mhz = float(re.search(rf"CONFIG\.{ps.clock_mhz_property} \{{([0-9.]+)\}}", tcl).group(1))
    hp_hz = int(re.search(r"set hlsgen_hp_hz (\d+)", tcl).group(1))
    assert pl_mhz == plan.clock_mhz == hp_hz / 1e6
    memory = plan.board.memory_of("ddr")
    tcl_port_gbps = memory.port_bits / 8 * pl_mhz / 1e3
    assert memory.channel_gbps(plan.clock_mhz) == pytest.approx(tcl_port_gbps)
    ports = len({c for p in plan.weight_ports for c in p.channels})
    expected = min(min(64, tcl_port_gbps * 1e3 / pl_mhz) * len(plan.weight_ports) if ports == len(plan.weight_ports)
                   else ports * tcl_port_gbps * 1e3 / pl_mhz, memory.achievable_total_gbps(pl_mhz) * 1e3 / pl_mhz)
    assert perf.weight_bytes_per_cycle(plan) == pytest.approx(expected)

    # Run the script on Vivado stubs: HP ports at the PL clock pass; a block design that clocks
    # them otherwise is stopped.
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "design_1_wrapper.bit").write_bytes(b"bit")
    script = result.out / "hls" / "vivado_bd.tcl"
    done, _ = run_tcl(script, tmp_path, f"set ::runs_dir {runs}; set ::hp_hz {hp_hz}")
    assert "is clocked at" not in done.stderr
    done, _ = run_tcl(script, tmp_path, f"set ::runs_dir {runs}; set ::hp_hz 333333333")
    assert done.returncode != 0 and "the performance model assumes" in done.stderr


def test_ceilings_against_nominal_and_achievable(tmp_path):
    """u280, 5trit on HBM: the achievable ceiling is 425 / 460 of the nominal one."""
    config = write_config(tmp_path, "big", hardware={"board": "u280", "weights": "hbm", "packing": "5trit",
                                                     "parallelism": {"pe": 4, "simd": 8}})
    from hlsgen.hardware import planner
    plan = planner.plan(spec_mod.load(config))
    e = perf.estimate(plan, 1)
    assert e.ceiling_tokens_per_s == pytest.approx(e.nominal_ceiling_tokens_per_s * 425 / 460)
    assert e.decode_tokens_per_s <= e.ceiling_tokens_per_s
