"""`hlsgen explore` (budgets, the 2.7B shape) and `hlsgen report` (files, valid PNGs, calibration)."""

import json
import struct
import time
import zlib

import pytest
import yaml

from conftest import run_cli, write_config
from hlsgen import estimate, explore, planner, spec

SHAPE_2_7B = {"vocab": 32000, "hidden": 2560, "layers": 32, "intermediate_size": 6912}


# The tiny design's smallest folding takes ~3% of the U280's LUTs and ~20% of the KV260's.
@pytest.mark.parametrize("board, budget", [("u280", 0.04), ("u280", 0.1), ("u280", 0.8),
                                           ("kv260", 0.22), ("kv260", 0.4), ("kv260", 0.8)])
def test_explore_respects_every_budget(tmp_path, board, budget):
    s = spec.load(write_config(tmp_path, "c", hardware={"board": board}))
    chosen, front = explore.explore(s, budget)
    assert chosen in front
    for c in front:
        replanned = planner.plan(c.spec)            # the planner's own checks accept it
        used = estimate.design_resources(replanned)
        assert used["lut"] <= budget * replanned.board.resources["lut"]
        assert sum(replanned.onchip_bits().values()) <= budget * replanned.board.onchip_bits
    rates = [c.tokens_per_s for c in front]
    assert rates == sorted(rates) and chosen.tokens_per_s >= explore.NEAR_BEST * rates[-1]


def test_a_larger_budget_is_never_slower(tmp_path):
    s = spec.load(write_config(tmp_path, "c", hardware={"board": "kv260"}))
    rates = [explore.explore(s, b)[1][-1].tokens_per_s for b in (0.22, 0.3, 0.5, 0.8)]
    assert rates == sorted(rates)


def test_a_tiny_budget_is_a_clear_error(tmp_path):
    result = run_cli("explore", write_config(tmp_path, "c"), "--budget", "0.001")
    assert result.code == 2
    assert "no design of this model fits 0.1% of the LUTs" in result.err and "larger --budget" in result.err


def test_explore_writes_a_hardware_section_the_spec_accepts(tmp_path):
    out = tmp_path / "hw.yaml"
    result = run_cli("explore", write_config(tmp_path, "c"), "--board", "kv260", "--write", out)
    assert result.code == 0, result.err
    assert "not searched: batch" in result.out and "trit" not in result.out.split("not searched:")[1]
    assert "packing" in result.out.splitlines()[1] and "* onchip" in result.out
    hardware = yaml.safe_load(out.read_text())["hardware"]
    assert hardware["board"] == "kv260" and hardware["packing"] in ("2bit", "5trit")
    planner.plan(spec.load(write_config(tmp_path, "chosen", hardware=hardware)))


def test_explore_searches_both_packings_at_every_placement(tmp_path, monkeypatch):
    """Every (placement, packing) pair is planned, and the chosen design's packing is what gets
    planned for real: a 5trit choice streams the packed words."""
    planned = set()
    real_candidate = explore.candidate

    def spy(s, place, layer, head, packing=None):
        planned.add((place, packing))
        return real_candidate(s, place, layer, head, packing)

    monkeypatch.setattr(explore, "candidate", spy)
    s = spec.load(write_config(tmp_path, "c", hardware={"board": "kv260"}))
    chosen, front = explore.explore(s, 0.8)
    assert planned == {(place, packing) for place in ("onchip", "ddr") for packing in ("2bit", "5trit")}
    assert explore.hardware_section(chosen)["packing"] == chosen.plan.bitlinear("i").packing


def test_explore_runs_on_the_2_7b_shape_in_seconds(tmp_path):
    config = write_config(tmp_path, "big", model=SHAPE_2_7B, hardware={"board": "u280", "weights": "ddr"})
    start = time.perf_counter()
    result = run_cli("explore", config)
    seconds = time.perf_counter() - start
    print(f"explore 2.7B on u280: {seconds:.1f} s")
    assert result.code == 0, result.err
    assert "chosen (*)" in result.out and "ceiling" in result.out


# ----------------------------------------------------------------------------- report
def png_header(path):
    """(width, height) from the IHDR of a PNG, after checking the signature and the chunk CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:29]
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(kind + body)
    assert data.endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", body[:8])


@pytest.fixture(scope="module")
def project(tmp_path_factory, hlsgen_cache):
    root = tmp_path_factory.mktemp("report")
    result = run_cli("build", write_config(root, "tiny", hardware={"weights": "hbm"}))
    assert result.code == 0, result.err
    return root / "tiny"


def test_report_writes_markdown_json_and_valid_pngs(project):
    result = run_cli("report", project)
    assert result.code == 0, result.err
    out = project / "report"
    data = json.loads((out / "report.json").read_text())
    assert data["performance"]["ceiling_tokens_per_s"] > data["performance"]["decode_tokens_per_s"] > 0
    assert set(data["cycles"]["per_layer"]) >= {"i", "f", "g", "o", "gate", "down"}
    assert "roofline.png" in (out / "report.md").read_text()
    image = pytest.importorskip("matplotlib.image")
    for name in ("resources.png", "roofline.png", "cycles.png"):
        width, height = png_header(out / name)
        assert image.imread(out / name).shape[:2] == (height, width)


def test_report_states_the_model_error_against_cosim_and_yosys(project):
    b = planner.plan(spec.load(project.parent / "tiny.yaml")).bitlinear("gate")
    (project / "report").mkdir(exist_ok=True)
    (project / "report" / "cosim.json").write_text(json.dumps(
        {"kinds": {"gate": {"measured_cycles": 2 * b.cycles_per_matrix, "passed": True}}}))
    (project / "report" / "synth.json").write_text(json.dumps(
        {"kinds": {"gate": {"yosys": {"lut": 1000, "ff": 500}, "fit_estimate": {"lut": 1100, "ff": 450}}}}))
    assert run_cli("report", project).code == 0
    cal = json.loads((project / "report" / "report.json").read_text())["calibration"]
    assert cal["cosim_cycles"]["gate"]["error"] == pytest.approx(-0.5)
    assert cal["yosys"]["gate"]["lut"]["error"] == pytest.approx(0.1)
    assert cal["yosys"]["gate"]["ff"]["error"] == pytest.approx(-0.1)
    assert "+10.0%" in (project / "report" / "report.md").read_text()


def test_report_of_a_directory_that_is_no_project(tmp_path):
    result = run_cli("report", tmp_path)
    assert result.code == 2 and "hlsgen build" in result.err
