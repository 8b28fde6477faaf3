"""Board files: every shipped file passes the schema and gives what issue 5 asks of it; broken
files are refused with the file, the key and what is allowed."""

from __future__ import annotations

import pytest
import yaml

from hlsgen.hardware import boards
from hlsgen.errors import HlsgenError
from hlsgen.resources import BOARDS_DIR

SHIPPED = {"u280", "u55c", "u250", "zcu104", "kv260", "pynq_z2"}


def test_the_six_boards_ship():
    assert SHIPPED <= set(boards.names())


@pytest.mark.parametrize("key", boards.names())
def test_shipped_board_file_is_valid_and_complete(key):
    board = boards.Board.load(key)
    assert board.part and board.clock_mhz > 0
    assert set(board.resources) == set(boards.ECP5_RESOURCES if board.flow == "ecp5" else boards.RESOURCES)
    assert all(board.memory) and all(m.count >= 1 and m.channel_gbps(board.clock_mhz) > 0 for m in board.memory)
    assert board.program.methods
    if board.flow == "alveo":
        assert board.platform.startswith(f"xilinx_{key}_")
        assert board.resources["uram"] > 0 and "xbutil" in board.program.methods
    elif board.flow == "ecp5":       # the open-tool board: tests/test_open_board.py
        assert board.ecp5 and board.program.methods == ("openfpgaloader",)
    else:
        assert board.board_part.count(":") == 3
        assert len(board.ps.slaves) == board.memory[0].count == len(board.ps.slave_enable)
        assert board.program.methods[0] == "pynq"


def test_memory_channels_match_the_data_sheets():
    hbm = boards.Board.load("u280").memory_of("hbm")
    assert (hbm.count, hbm.mb_each, hbm.count * hbm.gbps_each) == (32, 256, 460)
    assert boards.Board.load("u55c").memory_of("hbm").mb_each == 512
    assert boards.Board.load("u250").memory_of("ddr").count == 4
    assert boards.Board.load("pynq_z2").program.openfpgaloader_board == "pynq_z2"


def broken(tmp_path, key: str, edit) -> str:
    """Load a copy of boards/<key>.yaml after edit(data); returns the error message."""
    data = yaml.safe_load((BOARDS_DIR / f"{key}.yaml").read_text())
    edit(data)
    path = tmp_path / f"{key}.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HlsgenError) as error:
        boards.load(path)
    return str(error.value)


def drop(key):
    return lambda data: data.pop(key)


@pytest.mark.parametrize("key, edit, expected", [
    ("u280", drop("part"), "boards/u280.yaml.part: missing (allowed: letters, digits and _ . : -"),
    ("u280", drop("platform"), "boards/u280.yaml.platform: missing"),
    ("zcu104", drop("board_part"), "boards/zcu104.yaml.board_part: missing"),
    ("zcu104", drop("ps"), "boards/zcu104.yaml.ps: missing (allowed: a mapping)"),
    ("u280", lambda d: d.update(flow="versal"), "boards/u280.yaml.flow: 'versal' is not allowed (allowed: alveo, zynq, ecp5)"),
    ("u280", lambda d: d["resources"].pop("dsp"), "boards/u280.yaml.resources.dsp: missing"),
    ("u280", lambda d: d["resources"].update(lut=-1), "resources.lut: -1 is out of range (allowed: integers >= 0)"),
    ("u280", lambda d: d["memory"][0].update(count=0), "memory[0].count: 0 is out of range (allowed: integers >= 1)"),
    ("u280", lambda d: d["memory"][0].update(gbps_each="fast"), "memory[0].gbps_each: 'fast' is not a finite number"),
    ("u280", lambda d: d["memory"][0].update(kind="sram"), "memory[0].kind: 'sram' is not allowed (allowed: hbm, ddr)"),
    ("u280", lambda d: d["memory"][0].pop("mb_each"), "give exactly one of mb_each (per channel) and mb_total"),
    ("u280", lambda d: d.update(colour="red"), "boards/u280.yaml.colour: unknown key"),
    ("u280", lambda d: d["program"].update(methods=["openfpgaloader"]), "program.methods: ['openfpgaloader'] is not allowed"),
    ("zcu104", lambda d: d["ps"]["slaves"].pop(), "ps.slaves: 3 entries for 4 memory channels"),
    ("zcu104", lambda d: d["program"].update(methods=["openfpgaloader"]),
     "program.openfpgaloader_board: missing (allowed: required with the method openfpgaloader)"),
    ("u250", lambda d: d.update(board_part="x:y:part0:1.0"), "board_part and ps are Zynq keys"),
])
def test_broken_board_file_is_refused_with_the_key(tmp_path, key, edit, expected):
    # The copy is not a shipped board: its errors name it by its path.
    assert expected.removeprefix("boards/") in broken(tmp_path, key, edit)
