"""Configs and board files through the one validator (hlsgen/schema.py): every problem of a file in
one run, unknown keys first, each on its own `error:` line; a board file given by path, checked by
the shipped boards' schema with strict patterns on every string that reaches Tcl, make, a shell
or C++; and the config a project keeps (hlsgen_config.yaml) that report and csim read."""

from __future__ import annotations

import json
from pathlib import Path
import shutil

import pytest
import yaml
from conftest import run_cli, write_config

from hlsgen import resources
from hlsgen.errors import HlsgenError
from hlsgen.project.render import project_spec


def test_every_config_error_in_one_run_unknown_keys_first(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"vocab": 256, "hiden": 64, "layers": 2, "intermediate_size": 128},
        "weights": {"random": {"seed": -1}},
        "hardware": {"board": "u281", "weights": "sram", "batch": 99},
        "project": {"name": "1top", "colour": "red"}}))
    run = run_cli("validate", path)
    assert run.code == 2 and run.out == ""
    lines = run.err.splitlines()
    assert all(line.startswith("error: ") for line in lines)
    assert [line.split(":")[1].strip() for line in lines] == [
        "model.hiden", "project.colour",                                    # unknown keys first
        "model.hidden", "weights.random.seed", "hardware.board", "hardware.weights", "hardware.batch", "project.name"]
    assert "did you mean 'hidden'?" in lines[0]


def board_file(tmp_path, key="my_card", base="u280", **changes):
    data = yaml.safe_load((resources.boards() / f"{base}.yaml").read_text())
    for dotted, value in changes.items():
        node, *path = dotted.split("__")
        target = data
        for part in [node, *path][:-1]:
            target = target[part]
        target[[node, *path][-1]] = value
    path = tmp_path / f"{key}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_board_file_given_by_path_travels_with_the_project(tmp_path):
    board = board_file(tmp_path / "boards", name="My U280 card")
    config = write_config(tmp_path, "tiny", hardware={"board": "boards/my_card.yaml"})
    assert run_cli("validate", config).code == 0
    assert run_cli("build", config).code == 0
    project = tmp_path / "tiny"
    assert (project / "hlsgen_board.yaml").read_bytes() == board.read_bytes()
    assert yaml.safe_load((project / "hlsgen_config.yaml").read_text())["hardware"]["board"] == "hlsgen_board.yaml"
    moved = tmp_path / "elsewhere" / "tiny"
    shutil.move(project, moved)
    shutil.rmtree(tmp_path / "boards")                 # the original board file is gone
    assert project_spec(moved).digest() == json.loads((moved / "hlsgen_manifest.json").read_text())["spec_digest"]
    run = run_cli("bitstream", moved, "--dry-run")
    assert run.code == 0 and "xilinx_u280_gen3x16_xdma_1_202211_1" in run.out, run.err
    assert run_cli("report", moved).code == 0


def test_a_missing_board_file_names_the_path(tmp_path):
    run = run_cli("validate", write_config(tmp_path, "tiny", hardware={"board": "nowhere.yaml"}))
    assert run.code == 2
    assert run.err.startswith(f"error: hardware.board: 'nowhere.yaml': no such board file {tmp_path / 'nowhere.yaml'}")


@pytest.mark.parametrize("base, changes, key", [
    ("u280", {"part": "xcu280; rm -rf /"}, "part"),
    ("u280", {"part": "xcu280 -tclargs"}, "part"),
    ("u280", {"platform": "$(id)"}, "platform"),
    ("u280", {"platform": "plat\nform"}, "platform"),
    ("u280", {"name": 'U280 """ + evil'}, "name"),
    ("u280", {"name": "U280 {x}"}, "name"),
    ("u280", {"memory": [{"kind": "hbm", "bank": "HBM]; exit", "count": 32, "gbps_each": 14.375, "mb_each": 256}]},
     "memory[0].bank"),
    ("zcu104", {"board_part": "xilinx.com:zcu104:part0:1.1 ]"}, "board_part"),
    ("zcu104", {"ps__slaves": ["S_AXI_HP0_FPD", "S_AXI_HP1_FPD", "S_AXI_HP2_FPD", "S_AXI_HP3[0]"]}, "ps.slaves"),
    ("zcu104", {"ps__slave_enable": ["A", "B", "C", "D `x`"]}, "ps.slave_enable"),
    ("zcu104", {"ps__master": "M_AXI_HPM0_FPD\\"}, "ps.master"),
    ("zcu104", {"ps__clock": "pl_clk0 $x"}, "ps.clock"),
    ("zcu104", {"ps__ip": "zynq_ultra_ps_e}"}, "ps.ip"),
    ("zcu104", {"ps__automation": 'apply_board_preset "1"} ; exec id ; {'}, "ps.automation"),
    ("zcu104", {"ps__properties": {"PSU__USE__M_AXI_GP1": "0 [exec id]"}}, "ps.properties.PSU__USE__M_AXI_GP1"),
    ("zcu104", {"ps__properties": {"A B": 0}}, "ps.properties.A B"),
    ("zcu104", {"program__hw_device": "xczu7* ; id"}, "program.hw_device"),
    ("pynq_z2", {"program__openfpgaloader_board": "pynq_z2 --write-flash"}, "program.openfpgaloader_board"),
])
def test_board_file_strings_that_reach_tools_are_strict(tmp_path, base, changes, key):
    board_file(tmp_path, "card", base, **changes)
    run = run_cli("validate", write_config(tmp_path, "tiny", hardware={"board": "card.yaml"}))
    assert run.code == 2 and run.out == ""
    assert run.err.startswith(f"error: {tmp_path / 'card.yaml'}.{key}: "), run.err
    assert "is not allowed (allowed: " in run.err.splitlines()[0]


def test_a_board_file_name_is_a_plain_word(tmp_path):
    board_file(tmp_path, "my card", "u280")
    run = run_cli("validate", write_config(tmp_path, "tiny", hardware={"board": "my card.yaml"}))
    assert run.code == 2 and "the file name 'my card' is not a board name" in run.err


def test_every_board_file_error_in_one_run(tmp_path):
    path = board_file(tmp_path, "card", "u280", part="a b", clock_mhz=-1, colour="red")
    data = yaml.safe_load(path.read_text())
    del data["resources"]["dsp"]
    path.write_text(yaml.safe_dump(data))
    run = run_cli("validate", write_config(tmp_path, "tiny", hardware={"board": "card.yaml"}))
    keys = [line.split(": ")[1].removeprefix(f"{path}.") for line in run.err.splitlines()]
    assert run.code == 2 and keys == ["colour", "resources.dsp", "part", "clock_mhz"], run.err


def test_spec_load_takes_a_dict_and_dotted_overrides(tmp_path):
    from hlsgen.model import spec
    from conftest import TINY
    s = spec.load(TINY, overrides={"hardware.parallelism.pe": 8, "project.output": str(tmp_path / "p")})
    assert s.hardware.parallelism.pe == 8 and s.project.output == tmp_path / "p" and s.source is None
    with pytest.raises(Exception) as info:
        spec.load(TINY, overrides={"hardware.parallelism.pee": 8})
    assert str(info.value).startswith("hardware.parallelism.pee: unknown key")


def test_the_project_config_names_the_weights_by_digest(tmp_path):
    from hlsgen.model import checkpoint, spec
    repo = Path(__file__).resolve().parent.parent
    original = spec.load(repo / "examples" / "tiny_lm.yaml")
    config = original.as_config(weights_sha256=checkpoint.digest(original))
    assert config["weights"] == {"path": str(repo / "examples" / "tiny_lm"), "sha256": checkpoint.digest(original)}
    again = spec.load(config, base=tmp_path)
    assert again.digest() == original.digest()
    checkpoint.load(again)                                          # the same weights: read
    config["weights"]["sha256"] = "0" * 64
    with pytest.raises(HlsgenError, match=r"^weights.sha256: the checkpoint at .* has digest [0-9a-f]{64}, not 0{64}"):
        checkpoint.load(spec.load(config, base=tmp_path))


def test_unknown_keys_are_found_in_nested_mappings_too(tmp_path):
    config = write_config(tmp_path, "tiny", weights={"random": {"seed": 0, "sed": 1}},
                          numerics={"act": {"width": 24, "frak": 12}}, project={"testbench": {"prompt_token": 3}},
                          hardware={"parallelism": {"pe": 4, "simd": 8, "sim": 2}})
    run = run_cli("validate", config)
    assert run.code == 2
    assert [line.split(":")[1].strip() for line in run.err.splitlines()] == [
        "weights.random.sed", "numerics.act.frak", "hardware.parallelism.sim", "project.testbench.prompt_token"]
