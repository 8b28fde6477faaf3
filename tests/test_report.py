"""`hlsgen explore` (budgets, the 2.7B shape) and `hlsgen report` (files, valid PNGs, calibration)."""

import json
import struct
import time
import zlib

import pytest
import yaml

from conftest import run_cli, write_config
from hlsgen.hardware import estimate, explore, perf, planner
from hlsgen.model import spec

SHAPE_2_7B = {"vocab": 32000, "hidden": 2560, "layers": 32, "intermediate_size": 6912}


# The tiny design's smallest folding takes ~3% of the U280's LUTs and ~20% of the KV260's.
@pytest.mark.parametrize("board, budget", [("u280", 0.04), ("u280", 0.1), ("u280", 0.8),
                                           ("kv260", 0.22), ("kv260", 0.4), ("kv260", 0.8)])
def test_explore_respects_every_budget(tmp_path, board, budget):
    s = spec.load(write_config(tmp_path, "c", hardware={"board": board}))
    chosen, front = explore.explore(s, budget)
    assert chosen in front
    for c in front:
        replanned = planner.plan(c.spec)            # the planner's own checks accept it, at its batch
        assert replanned.batch == c.batch and c.perf == perf.estimate(replanned)
        used = estimate.design_resources(replanned)
        assert used["lut"] <= budget * replanned.board.resources["lut"]
        assert sum(replanned.onchip_bits().values()) <= budget * replanned.board.onchip_bits
    rates = [c.tokens_per_s for c in front]
    assert rates == sorted(rates) and chosen.tokens_per_s >= explore.NEAR_BEST * rates[-1]
    # Batch 1 only is a subset of the search: never faster.
    single, single_front = explore.explore(s, budget, searched=(1,))
    assert {c.batch for c in single_front} == {1} and single_front[-1].tokens_per_s <= rates[-1]


@pytest.mark.parametrize("pin, maximum, expected", [(None, None, (1, 2, 4, 8, 16)), (3, None, (3,)),
                                                    (None, 12, (1, 2, 4, 8, 12)), (None, 1, (1,))])
def test_the_batches_explore_searches(pin, maximum, expected):
    assert explore.batches(pin, maximum) == expected


def table_rows(out: str) -> list[list[str]]:
    """The printed Pareto table's rows, a cell per word (the chosen one's `*` dropped)."""
    lines = out.splitlines()[2:]
    return [line.replace("* ", "").split() for line in lines[:next(i for i, x in enumerate(lines) if x.startswith("chosen"))]]


def test_explore_batch_pins_the_batch(tmp_path):
    out = tmp_path / "hw.yaml"
    result = run_cli("explore", write_config(tmp_path, "c"), "--board", "kv260", "--batch", "4", "--write", out)
    assert result.code == 0, result.err
    rows = table_rows(result.out)
    assert rows and all(r[explore.HEADER.index("batch")] == "4" for r in rows)
    assert "chosen (*): batch 4 at 100 MHz:" in result.out
    hardware = yaml.safe_load(out.read_text())["hardware"]
    assert hardware["batch"] == 4
    assert planner.plan(spec.load(write_config(tmp_path, "chosen", hardware=hardware))).batch == 4
    result = run_cli("explore", write_config(tmp_path, "c"), "--board", "kv260", "--max-batch", "2")
    assert result.code == 0 and "batch 1, 2:" in result.out.splitlines()[0]


@pytest.mark.parametrize("argv, message", [(["--batch", "0"], "--batch: 0 is out of range (allowed: 1 to 16)"),
                                           (["--batch", "17"], "--batch: 17 is out of range (allowed: 1 to 16)"),
                                           (["--max-batch", "0"], "--max-batch: 0 is out of range (allowed: 1 to 16)"),
                                           (["--batch", "2", "--max-batch", "4"], "--batch and --max-batch: give one")])
def test_bad_batch_options_are_one_line_errors(tmp_path, argv, message):
    result = run_cli("explore", write_config(tmp_path, "c"), *argv)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: " + message) and result.err.count("\n") == 1


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
    assert "packing" in result.out.splitlines()[1] and "batch" in result.out.splitlines()[1]
    assert "* onchip" in result.out and "not searched" not in result.out
    hardware = yaml.safe_load(out.read_text())["hardware"]
    assert hardware["board"] == "kv260" and hardware["packing"] in ("2bit", "5trit") and 1 <= hardware["batch"] <= 16
    plan = planner.plan(spec.load(write_config(tmp_path, "chosen", hardware=hardware)))
    p = hardware["parallelism"]
    assert p["quantiser_simd"] == plan.bitlinear("i").qsimd
    assert p["lm_head_quantiser_simd"] == plan.bitlinear("lm_head").qsimd
    assert "quantiser simd" in result.out.splitlines()[1]


def test_explore_searches_both_packings_at_every_placement(tmp_path, monkeypatch):
    """Every (placement, packing) pair is planned, and the chosen design's packing is what gets
    planned for real: a 5trit choice streams the packed words."""
    planned = set()
    real_candidate = explore.candidate

    def spy(s, place, layer, head, packing=None, batch=None):
        planned.add((place, packing))
        return real_candidate(s, place, layer, head, packing, batch)

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
    # A measured call of twice the model's cycles (perf.mvu_alone_cycles, the pipeline's latency included).
    (project / "report" / "cosim.json").write_text(json.dumps(
        {"kinds": {"gate": {"measured_cycles": 2 * perf.mvu_alone_cycles(b, 1), "passed": True}}}))
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


def test_report_of_a_batched_design_gives_both_rates(tmp_path):
    """Batch 4 on HBM: decode of 4 sequences together and each, prefill in blocks of 4, one
    sequence alone, the ceiling at batch 4 and at 1; the roofline marks the design at batch 4."""
    config = write_config(tmp_path, "b", hardware={"weights": "hbm", "batch": 4})
    s = spec.load(config)
    project = tmp_path / "b"
    project.mkdir()
    (project / "hlsgen_manifest.json").write_text(json.dumps({"source": str(config), "spec_digest": s.digest(), "top": "b", "files": {}}))
    (project / "hlsgen_config.yaml").write_text(yaml.safe_dump(s.as_config()))     # what report reads
    assert run_cli("report", project).code == 0
    data = json.loads((project / "report" / "report.json").read_text())
    p, plan = data["performance"], planner.plan(s)
    e, one = perf.estimate(plan, 4), perf.estimate(plan, 1)
    assert p["batch"] == 4
    assert p["decode_tokens_per_s"] == pytest.approx(4 * p["per_sequence_tokens_per_s"]) == pytest.approx(
        p["prefill_tokens_per_s"]) == pytest.approx(e.decode_tokens_per_s)
    assert p["single_sequence"]["decode_tokens_per_s"] == pytest.approx(one.decode_tokens_per_s)
    assert p["ceiling_tokens_per_s"] == pytest.approx(e.ceiling_tokens_per_s)
    assert p["ceiling_tokens_per_s"] > 3 * p["single_sequence"]["ceiling_tokens_per_s"]
    assert e.cycles_per_call == p["cycles_per_call"] == sum(
        sum(cycles) for cycles in data["cycles"]["per_layer"].values()) + data["cycles"]["outside_layers"]
    here = next(q for q in data["roofline"] if q["lanes"] == 4 * 8)
    assert here["tokens_per_s"] == pytest.approx(p["decode_tokens_per_s"])
    text = (project / "report" / "report.md").read_text()
    assert "decode, 4 sequences" in text and "prefill" in text and "one sequence alone" in text
    assert "bandwidth ceiling at batch 4" in text
