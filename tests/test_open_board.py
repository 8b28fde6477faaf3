"""An open ECP5 board (issue 16, items 3-6): the ULX3S 85F board file, the PLL divisors, the pins,
the fit check in the chip's primitives, the framed serial protocol against the RTL in simulation,
the driver's link errors, and the bitstream / flash commands.

The serial tests run the generated board top in Verilator around a stand-in `<top>_core` that
replays the golden vectors and checks every token, slot and reset it is given
(sim/standin_core.py), so they test the link, not the core; the whole-model cosim tests the core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import tty
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import needs_tool, plan_of, record_edits, run_cli, write_config
from hlsgen.errors import HlsgenError
from hlsgen.hardware import boards
from hlsgen.hardware import open_board as ob
from hlsgen.model import spec as spec_mod
from hlsgen.project import build
from hlsgen.project.calls import CALL_WIDTH
from hlsgen.project.open_board import core_widths, version_word
from hlsgen.resources import BOARDS_DIR
from sim import standin_core

ULX3S = {"board": "ulx3s_85f", "weights": "onchip", "parallelism": {"pe": 4, "simd": 8}}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The TINY random model (two layers, H=64) built for the ULX3S."""
    root = tmp_path_factory.mktemp("ulx3s")
    return build.build(spec_mod.load(write_config(root, "tiny", hardware=ULX3S))).out.resolve()


# ----------------------------------------------------------------------------- board file, PLL, pins
def test_ulx3s_board_file():
    board = boards.Board.load("ulx3s_85f")
    assert (board.part, board.flow) == ("LFE5U-85F-6BG381C", "ecp5")
    assert board.resources == {"lut": 83640, "ff": 83640, "dp16kd": 208, "mult18": 156}
    e = board.ecp5
    assert (e.size, e.package, e.oscillator_pin, e.oscillator_mhz) == ("85k", "CABGA381", "G2", 25)
    assert (e.uart_tx, e.uart_rx, e.baud) == ("L4", "M1", 3_000_000)
    assert board.program.methods == ("openfpgaloader",) and board.program.openfpgaloader_board == "ulx3s"
    assert board.onchip_bits == 208 * 18 * 1024


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["ecp5"].pop("uart"), "boards/ulx3s_85f.yaml.ecp5.uart: missing (allowed: a mapping)"),
    (lambda d: d["ecp5"]["uart"].update(baud=100), "boards/ulx3s_85f.yaml.ecp5.uart.baud: 100 is out of range"),
    (lambda d: d["resources"].pop("dp16kd"), "boards/ulx3s_85f.yaml.resources.dp16kd: missing"),
    (lambda d: d.update(board_part="x:y:z:1"), "boards/ulx3s_85f.yaml: platform, board_part and ps are Xilinx keys"),
    (lambda d: d["program"].update(methods=["vivado"]), "boards/ulx3s_85f.yaml.program.methods"),
])
def test_broken_ecp5_board_files_are_refused(tmp_path, edit, expected):
    data = yaml.safe_load((BOARDS_DIR / "ulx3s_85f.yaml").read_text())
    edit(data)
    path = tmp_path / "ulx3s_85f.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HlsgenError) as error:
        boards.load(path)
    assert expected.removeprefix("boards/") in str(error.value)     # a board file outside boards/ is named by path


# ecppll -i 25 -o F, run here (../shared/OPEN_BOARD.md): CLKI, CLKFB, CLKOP divisors.
@pytest.mark.parametrize("mhz, divisors", [(100, (1, 4, 6)), (150, (1, 6, 4)), (120, (5, 24, 5)), (50, (1, 2, 12)),
                                           (60, (5, 12, 10)), (75, (1, 3, 8)), (48, (8, 15, 13)), (42.5, (7, 12, 14))])
def test_pll_divisors_are_ecppll_s(mhz, divisors):
    p = ob.pll(25, mhz)
    assert (p.clki_div, p.clkfb_div, p.clkop_div) == divisors
    assert 400 <= p.vco_mhz <= 800


@pytest.mark.parametrize("mhz", [33, 66.6, 90])
def test_pll_divisors_against_yowasp_ecppll(mhz):
    out = subprocess.run(["yowasp-ecppll", "-i", "25", "-o", str(mhz)], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    p = ob.pll(25, mhz)
    assert (p.clki_div, p.clkfb_div, p.clkop_div) == tuple(int(fields[k]) for k in
                                                           ("Refclk divisor", "Feedback divisor", "clkout0 divisor"))


def test_a_lowered_clock_is_the_fastest_pll_output_within_what_was_met():
    p = ob.pll_at_most(25, 47.3)
    assert p.output_mhz == pytest.approx(46.875) and p.output_mhz <= 47.3
    assert ob.pll_at_most(25, 50).output_mhz == 50


def test_pins_and_clock_come_from_the_board_file(project):
    lpf = (project / "board" / "tiny_top.lpf").read_text()
    for line in ('LOCATE COMP "clk_osc" SITE "G2";', 'FREQUENCY PORT "clk_osc" 25 MHZ;',
                 'LOCATE COMP "uart_tx" SITE "L4";', 'LOCATE COMP "uart_rx" SITE "M1";',
                 'IOBUF PORT "uart_rx" PULLMODE=UP IO_TYPE=LVCMOS33;', 'LOCATE COMP "led[7]" SITE "H3";'):
        assert line in lpf
    top = (project / "board" / "tiny_top_board.v").read_text()
    assert "EHXPLLL" in top and "tiny_top_core core" in top
    # The board's 30 MHz: CLKI 5, CLKFB 6, CLKOP 20; the UART's phase step is 3 Mbaud / 30 MHz in 16 fraction bits.
    for define in ("`define HLSGEN_CLKI_DIV 5", "`define HLSGEN_CLKFB_DIV 6", "`define HLSGEN_CLKOP_DIV 20",
                   f"`define HLSGEN_BAUD_INC {round(3e6 * 65536 / 30e6)}"):
        assert define in top


def test_a_clock_too_slow_for_the_uart_is_refused(tmp_path):
    config = write_config(tmp_path, "slow", hardware=dict(ULX3S, clock_mhz=20))
    result = run_cli("build", str(config))
    assert result.code == 2 and "too slow for the 3,000,000 baud UART" in result.err


# ----------------------------------------------------------------------------- fit
def test_weights_beyond_the_block_rams_are_refused_with_numbers(tmp_path):
    config = write_config(tmp_path, "big", model={"hidden": 512, "layers": 4, "intermediate_size": 1024},
                          hardware=ULX3S)
    result = run_cli("build", str(config))
    assert result.code == 2
    assert "the weight and embedding ROMs need" in result.err and "DP16KD blocks" in result.err and "has 208" in result.err


def test_weights_off_chip_are_refused_on_an_ecp5_board(tmp_path):
    config = write_config(tmp_path, "ddr", hardware=dict(ULX3S, weights="ddr"))
    result = run_cli("build", str(config))
    assert result.code == 2 and "allowed: onchip" in result.err


def test_rom_blocks_take_the_best_aspect_ratio():
    assert ob.rom_blocks(512, 36) == 1 and ob.rom_blocks(1024, 18) == 1 and ob.rom_blocks(4096, 64) == 16
    assert ob.rom_blocks(100, 256) == 8          # 512 x 36, eight side by side


def test_the_netlist_fit_check_counts_primitives_and_names_the_numbers():
    board = boards.Board.load("ulx3s_85f")
    netlist = {"modules": {"top": {"cells": {
        "a": {"type": "LUT4"}, "b": {"type": "CCU2C"}, "c": {"type": "TRELLIS_FF"}, "d": {"type": "DP16KD"},
        "e": {"type": "MULT18X18D"}, "f": {"type": "TRELLIS_IO"}}}}}
    assert ob.netlist_usage(netlist, "top") == {"lut": 3, "ff": 1, "dp16kd": 1, "mult18": 1}
    ob.check_netlist({"lut": 83640, "ff": 10, "dp16kd": 208, "mult18": 156}, board)
    with pytest.raises(HlsgenError) as error:
        ob.check_netlist({"lut": 90000, "ff": 10, "dp16kd": 300, "mult18": 2}, board)
    assert "LUT 90,000 of 83,640, DP16KD 300 of 208" in str(error.value)


# ----------------------------------------------------------------------------- protocol
def driver_module(project: Path):
    import importlib.util
    path = project / "host" / "tiny_top_driver.py"
    module_spec = importlib.util.spec_from_file_location("tiny_top_driver", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_crc8_is_the_smbus_crc_in_hlsgen_and_in_the_driver(project):
    assert ob.crc8(b"123456789") == 0xF4                       # CRC-8 (poly 0x07, init 0) check value
    driver = driver_module(project)
    data = bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8))
    assert driver.crc8(data) == ob.crc8(data) and driver.crc8(b"123456789") == 0xF4
    assert driver.VERSION_WORD >> 24 == ob.PROTOCOL_VERSION


def test_the_link_limits():
    link = ob.Link(baud=3_000_000, vocab=256, token_bytes=1, logit_bytes=3, batch=1)
    assert link.tokens_per_second() == 300_000                 # a byte per token, 10 bits per byte
    assert link.tokens_per_second(logits=True) == pytest.approx(300_000 / 769)
    assert link.tokens_per_second(round_trip=True) == pytest.approx(300_000 / (1 + 10 + 1 + 2))
    assert link.max_generate(True) == 65535 // 769


class FakeBoard:
    """A pseudo-terminal with a scripted answer to every frame (or none): the driver's error paths."""

    def __init__(self, answer):
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        self.answer = answer
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                frame = os.read(self.master, 4096)
            except OSError:
                return
            reply = self.answer(frame)
            if reply:
                os.write(self.master, reply)

    @property
    def port(self) -> str:
        return os.ttyname(self.slave)


def reply(status: int, payload: bytes, crc_error: bool = False) -> bytes:
    body = bytes([status]) + len(payload).to_bytes(2, "little") + payload
    return bytes([ob.SYNC_OUT]) + body + bytes([ob.crc8(body) ^ crc_error])


def run_driver(project: Path, port: str, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, HLSGEN_SERIAL_TIMEOUT="0.5")
    return subprocess.run([sys.executable, str(project / "host" / "tiny_top_driver.py"), "--backend", "serial",
                           "--device", port, *args], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize("answer, expected", [
    (lambda frame: b"", "error: serial: timeout: 0 of 4 reply bytes"),
    (lambda frame: b"\x00" * 8, "error: serial: framing error: a reply starts with 0x00, not 0x5A"),
    (lambda frame: reply(0, b"\x01\x02\x03\x04", crc_error=True), "error: serial: CRC error in a 4-byte reply"),
    (lambda frame: reply(1, b""), "error: serial: the board refused command 0x56: CRC error"),
    (lambda frame: reply(0, (0x01ABCDEF).to_bytes(4, "little")),
     "error: serial: the board answers with version word 0x01ABCDEF, not this design's"),
])
def test_link_errors_are_clear_driver_errors_not_hangs(project, answer, expected):
    board = FakeBoard(answer)
    done = run_driver(project, board.port, "--self-test")
    assert done.returncode == 1 and expected in done.stderr and "Traceback" not in done.stderr


def test_a_missing_port_is_a_clear_error(project):
    done = run_driver(project, "/dev/no-such-tty", "--self-test")
    assert done.returncode == 1 and "error: serial: cannot open /dev/no-such-tty" in done.stderr


def test_the_fake_board_speaks_the_protocol(project):
    """The driver's framing against a scripted board that answers the version and one RUN."""
    word = version_word(yaml.safe_load((project / "hlsgen_manifest.json").read_text())["spec_digest"])
    logits = np.arange(-128, 128, dtype=np.int64) * 1000

    def answer(frame):
        assert frame[0] == ob.SYNC_IN and ob.crc8(frame[1:-1]) == frame[-1]
        if frame[1] == ob.CMD_VERSION:
            return reply(0, word.to_bytes(4, "little"))
        assert frame[1] == ob.CMD_RUN and frame[2:7] == bytes([3, 0, ob.FLAG_LOGITS, ob.RESET_BIT, 7])
        return reply(0, b"".join(int(v & 0xFFFFFF).to_bytes(3, "little") for v in logits) + bytes([42]))

    board = FakeBoard(answer)
    driver = driver_module(project)
    driver.SERIAL_TIMEOUT = 2.0
    backend = driver.SerialBackend(board.port)
    backend.program()
    out, next_tokens = backend.call(np.array([7]), 0, 1)
    assert np.array_equal(out[0], logits) and next_tokens.tolist() == [42]


# ----------------------------------------------------------------------------- the link in simulation
def standin(project: Path, out: Path, garble: bool = False) -> Path:
    plan = plan_of(project)
    out.mkdir(parents=True, exist_ok=True)
    path = standin_core.verilog(project, plan.top, plan.vocab, core_widths(plan), CALL_WIDTH, out)
    if garble:      # the mutation: one logit of every token off by one
        text = path.read_text()
        path.write_text(text.replace(f"logits_rom[t * {plan.vocab} + i]", f"logits_rom[t * {plan.vocab} + i] + (i == 3)"))
    return path


def test_driver_self_test_passes_over_the_simulated_uart(project, tmp_path):
    from hlsgen.tools import serial_sim
    result = serial_sim.run(project, core=[standin(project, tmp_path)], timeout_s=60, wall_limit_s=600)
    assert result.passed, result.report["output"]
    assert "PASS: bit-exact with the golden vectors" in result.report["output"]
    tokens = len(np.fromfile(project / "tb" / "data" / "expected_next.bin", "<i4"))
    # Each token's reply: header, 256 logits of 3 bytes, its next token, CRC (one RUN frame per call).
    assert result.report["bytes_from_fpga"] == tokens * (4 + 256 * 3 + 1 + 1) + 4 + 4 + 1


def test_generate_decodes_on_the_fpga_over_the_simulated_uart(project, tmp_path):
    """A prompt, then GENERATE: the FPGA feeds each next token back itself (the testbench's own decode)."""
    from hlsgen.tools import serial_sim
    calls = np.fromfile(project / "tb" / "data" / "calls.bin", "<i4").reshape(-1, CALL_WIDTH)
    expected = np.fromfile(project / "tb" / "data" / "expected_next.bin", "<i4")
    prompt = calls[:5, 3].tolist()
    assert calls[5, 3] == expected[4]            # the testbench's sixth token is the greedy next one
    steps = int(np.argmax(calls[5:, 2] == 1)) if (calls[5:, 2] == 1).any() else len(calls) - 5
    args = ("--prompt", ",".join(map(str, prompt)), "--max-new-tokens", str(steps + 1))
    result = serial_sim.run(project, core=[standin(project, tmp_path)], driver_args=args, timeout_s=60,
                            wall_limit_s=600, name="serial_generate")
    assert result.passed, result.report["output"]
    assert f"tokens: {','.join(map(str, expected[4:5 + steps]))}" in result.report["output"]


def test_a_garbled_logit_fails_the_self_test(project, tmp_path):
    from hlsgen.tools import serial_sim
    result = serial_sim.run(project, core=[standin(project, tmp_path, garble=True)], timeout_s=60,
                            wall_limit_s=600, name="serial_garbled")
    assert not result.passed
    assert "MISMATCH token 0 (call 0): 1 logits differ, first [3]" in result.report["output"]


# ----------------------------------------------------------------------------- bitstream and flash commands
def test_bitstream_dry_run_prints_the_open_flow(project):
    result = run_cli("bitstream", str(project), "--dry-run")
    assert result.code == 0
    assert "synth_ecp5 -top tiny_top_board" in result.out and "-DHLSGEN_CLKFB_DIV=6" in result.out   # 30 MHz: 25 / 5 * 6
    assert "--85k --package CABGA381 --speed 6" in result.out and "--lpf tiny_top.lpf" in result.out
    assert "ecppack --compress tiny_top.config tiny_top.bit" in result.out
    routed = run_cli("bitstream", str(project), "--dry-run", "--router", "router2", "--seed", "7")
    assert routed.code == 0 and "--textcfg tiny_top.config --router router2 --seed 7" in routed.out


def test_flash_dry_run_prints_the_openfpgaloader_line(project):
    result = run_cli("flash", str(project), "--dry-run")
    assert result.code == 0
    assert "openFPGALoader -b ulx3s impl/tiny_top.bit" in result.out
    assert "python3 host/tiny_top_driver.py --backend serial --self-test" in result.out
    persist = run_cli("flash", str(project), "--dry-run", "--persist", "--port", "/dev/ttyUSB3")
    assert "openFPGALoader -b ulx3s -f impl/tiny_top.bit" in persist.out
    assert "--backend serial --device /dev/ttyUSB3 --self-test" in persist.out


@needs_tool("openFPGALoader")
def test_flash_without_a_board_is_the_cable_error(project, tmp_path):
    copy = tmp_path / project.name
    shutil.copytree(project, copy)
    (copy / "impl").mkdir(exist_ok=True)
    (copy / "impl" / "tiny_top.bit").write_bytes(b"not a real bitstream: openFPGALoader stops at the cable")
    result = run_cli("flash", str(copy))
    assert result.code == 2 and "flash: no board attached: `openFPGALoader -b ulx3s impl/tiny_top.bit`" in result.err


# ----------------------------------------------------------------------------- place and route (a small design)
def test_bitstream_refuses_a_missed_clock_then_builds_at_the_met_one(tmp_path):
    """Yosys, nextpnr-ecp5 and ecppack on the board top around the stand-in core (the whole core
    takes minutes: bench/bench_open_board.py), at a clock it cannot meet: refused with the Fmax,
    then --allow-slow builds it at a PLL clock within the Fmax and says so in report/pnr.json (with
    nextpnr's router2 and seed 3 there, which report/pnr.json records)."""
    config = write_config(tmp_path, "fast", hardware=dict(ULX3S, clock_mhz=250))
    project = build.build(spec_mod.load(config)).out.resolve()
    for old in (project / "rtl").glob("*"):
        old.unlink()
    core = standin(project, tmp_path / "standin")
    for f in core.parent.iterdir():
        shutil.copyfile(f, project / "rtl" / ("tiny_top_core.v" if f == core else f.name))
    record_edits(project)
    refused = run_cli("bitstream", str(project))
    assert refused.code == 2 and "below its 250 MHz clock" in refused.err and "--allow-slow" in refused.err
    assert "critical path " in refused.err and " ns of it routing" in refused.err
    missed = yaml.safe_load((project / "report" / "pnr.json").read_text())
    assert missed["router"] == "router1" and missed["seed"] is None
    built = run_cli("bitstream", str(project), "--allow-slow", "--router", "router2", "--seed", "3")
    assert built.code == 0, built.err
    pnr = yaml.safe_load((project / "report" / "pnr.json").read_text())
    assert pnr["router"] == "router2" and pnr["seed"] == 3
    fmax = min(pnr["fmax_mhz"].values())
    assert pnr["lowered"] and pnr["met"] and pnr["clock_mhz"] <= fmax < 250 and pnr["plan_clock_mhz"] == 250
    assert pnr["used"]["lut"] > 0 and pnr["used"]["dp16kd"] >= 1 and pnr["available"]["dp16kd"] == 208
    # the slowest path's delay is the clock's Fmax, read from another part of nextpnr's report
    path = pnr["critical_path"]
    assert path["delay_ns"] == pytest.approx(1000 / fmax, abs=0.02) and 0 < path["routing_ns"] < path["delay_ns"]
    assert path["cells"][0] == path["from"] and path["cells"][-1] == path["to"] and len(path["cells"]) >= 2
    bit = (project / "impl" / "tiny_top.bit").read_bytes()
    assert bit.startswith(b"\xff\x00Part: LFE5U-85F-6CABGA381\x00") and bytes.fromhex("41113043") in bit[:64]
    assert f"clock {pnr['clock_mhz']:g} MHz (lowered from 250 MHz)" in built.out
    report = run_cli("report", str(project))
    assert f"clock {pnr['clock_mhz']:g} MHz" in report.out and "lowered from 250 MHz by --allow-slow" in report.out
    assert f"nextpnr's critical path: `{path['from']}` -> `{path['to']}`, {path['delay_ns']:g} ns" in report.out


# ----------------------------------------------------------------------------- the RTL core's cycles
@pytest.mark.parametrize("shape", [
    {},                                                                             # H = 64, two layers
    {"hidden": 48, "layers": 1, "intermediate_size": 96},                            # K = 48: the mean by division
    {"hidden": 32, "layers": 1, "intermediate_size": 64},                            # the scale outlasts the codes
], ids=["h64", "h48", "h32"])
def test_the_model_of_the_rtl_core_matches_its_measured_stage_cycles(tmp_path, shape):
    """perf.rtl_core_stages against the core's own sequencer, stage by stage (one token in
    Verilator): exact for each stage (the model was measured so), and so the total (the issue asks 5%)."""
    from hlsgen.hardware import perf
    from hlsgen.tools import serial_sim
    hardware = dict(ULX3S, parallelism={"pe": 4, "simd": 8, "lm_head_pe": 4, "lm_head_simd": 8})
    config = write_config(tmp_path, "stages", model=shape, hardware=hardware)
    project = build.build(spec_mod.load(config)).out.resolve()
    measured = serial_sim.stage_cycles(project)
    model = perf.rtl_core_stages(plan_of(project))
    assert len(measured["per_pc"]) == len(model)
    for (name, cycles), got in zip(model, measured["per_pc"]):
        assert cycles == got, f"{name}: model {cycles}, measured {got}"
    # the bench counts the start cycle too; the whole cosim's cycles per token do not
    assert perf.rtl_core_cycles_per_token(plan_of(project)) == measured["total"] - 1
