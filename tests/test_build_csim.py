"""`hlsgen build` + `hlsgen csim` end to end.

Bit-exact PASS on-chip and over m_axi, the warm cache, the divergence report, incremental and
atomic writes, the banner and the manifest, and the designs the tool must refuse.

Each cold csim compile takes ~15 s, so the module compiles only three projects (plus one
tampered header); everything else reuses their cached binaries.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import CliRun, record_edits, require_tool, run_cli, write_config
from hlsgen.hardware import planner
from hlsgen.project import build
from hlsgen.project import calls as calls_mod
from hlsgen.model import spec as spec_mod
from hlsgen.errors import HlsgenError
from hlsgen.project.render import RenderedProject
from hlsgen.version import BANNER

pytestmark = pytest.mark.usefixtures("hlsgen_cache")

CONFIGS = {
    # examples/tiny.yaml: on-chip ROMs, PE 4 x SIMD 8, a 1 x 1 lm_head.
    "tiny": {},
    # Weights over m_axi, 512 lanes: every lane word striped over two ports (tb/data/w0.bin, w1.bin).
    "hbm": {"hardware": {"weights": "hbm",
                         "parallelism": {"pe": 16, "simd": 32, "lm_head_pe": 8, "lm_head_simd": 64}}},
    # The same model from DDR on another board: same kernel sources, so csim reuses the binary.
    "ddr_u250": {"hardware": {"board": "u250", "weights": "ddr",
                              "parallelism": {"pe": 16, "simd": 32, "lm_head_pe": 8, "lm_head_simd": 64}}},
    # The hbm design with 5 trits per byte: two stripes of packed codes, decoded by the streamer.
    "hbm_5trit": {"hardware": {"weights": "hbm", "packing": "5trit",
                               "parallelism": {"pe": 16, "simd": 32, "lm_head_pe": 8, "lm_head_simd": 64}}},
    # One weight port, folds narrower than a word (several lanes per 512-bit word).
    "ddr_narrow": {"hardware": {"weights": "ddr",
                                "parallelism": {"pe": 8, "simd": 4, "lm_head_pe": 4, "lm_head_simd": 16}}},
    # Batched: calls of up to 3 tokens on one pass over the weights (prompt blocks, then three
    # sequences side by side, each in a state slot of its own), two stripes of 5-trit codes.
    "hbm_batch3": {"hardware": {"weights": "hbm", "packing": "5trit", "batch": 3,
                                "parallelism": {"pe": 16, "simd": 32, "lm_head_pe": 8, "lm_head_simd": 64}}},
    # The same on chip, batch 2.
    "onchip_batch2": {"hardware": {"batch": 2}},
    # Quantisers narrower than their MVUs (codes packets over 4 and 16 cycles) over m_axi, two
    # stripes, calls of up to 2 tokens: the layers' quantiser 8 lanes of 32, the lm_head's 4 of 64.
    "hbm_qsimd": {"hardware": {"weights": "hbm", "batch": 2,
                               "parallelism": {"pe": 16, "simd": 32, "lm_head_pe": 8, "lm_head_simd": 64,
                                               "quantiser_simd": 8, "lm_head_quantiser_simd": 4}}},
    # The lm_head on the layers' folding: one engine runs all seven kinds from its one call site.
    "one_engine": {"hardware": {"batch": 2, "parallelism": {"pe": 4, "simd": 8, "lm_head_pe": 4, "lm_head_simd": 8}}},
    # 4 layers, vocab 1000; H = 40 makes every matrix end inside a 512-bit word (padding).
    "four_layers": {"model": {"vocab": 1000, "hidden": 40, "layers": 4, "intermediate_size": 64},
                    "hardware": {"parallelism": {"pe": 2, "simd": 8, "lm_head_pe": 8, "lm_head_simd": 4}},
                    "project": {"name": "lm4_top"}},
}


class Simulations:
    """Builds and simulates each config once per module, on first use."""

    def __init__(self, root: Path):
        self.root = root
        self.runs: dict[str, tuple[Path, CliRun]] = {}

    def __call__(self, name: str) -> tuple[Path, CliRun]:
        if name not in self.runs:
            config = write_config(self.root, name, **CONFIGS[name])
            project = self.root / name
            # `csim CONFIG` builds first: that path of the CLI is covered here too.
            self.runs[name] = (project, run_cli("csim", config, "-o", project))
        return self.runs[name]


@pytest.fixture(scope="module")
def simulate(tmp_path_factory, hlsgen_cache):
    require_tool("g++")
    return Simulations(tmp_path_factory.mktemp("e2e"))


def project_bytes(project: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's content and modification time, by relpath."""
    return {p.relative_to(project).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(project.rglob("*")) if p.is_file()}


def cache_entries(cache: Path) -> set[str]:
    return {p.name for p in (cache / "csim").iterdir()} if (cache / "csim").is_dir() else set()


def leftovers(project: Path) -> list[Path]:
    return sorted(p for p in project.parent.glob(project.name + ".hlsgen-*") if not p.name.endswith("-lock"))


# ----------------------------------------------------------------------------- bit-exact csim
@pytest.mark.parametrize("name", list(CONFIGS))
def test_csim_is_bit_exact(simulate, name):
    project, run = simulate(name)
    assert run.code == 0, run.out + run.err
    assert "PASS: bit-exact with the golden fixed-point model" in run.out
    tokens = calls_mod.read_calls(project / "tb" / "data" / "calls.bin")[:, 0].sum()
    vocab = CONFIGS[name].get("model", {}).get("vocab", 256)
    assert f"checked {tokens} tokens x {vocab} logits: 0 mismatches" in run.out
    manifest = json.loads((project / "hlsgen_manifest.json").read_text())
    assert f"{len(manifest['files']) + 1} files, {len(manifest['files']) + 1} changed" in run.out


@pytest.mark.parametrize("name, stripes", [("hbm", 2), ("hbm_5trit", 2), ("ddr_narrow", 1)])
def test_offchip_weights_are_testbench_data(simulate, name, stripes):
    project, run = simulate(name)
    assert run.code == 0 and "PASS" in run.out, run.out
    plan = planner.plan(spec_mod.load(project.parent / f"{name}.yaml"))
    assert plan.stripes == stripes
    words = sum(b.words for b in plan.bitlinears)
    for s in range(stripes):
        assert (project / "tb" / "data" / f"w{s}.bin").stat().st_size == words * 64
        assert f"const hlsgen::weight_word_t* w{s}" in (project / "src" / "tiny_top.h").read_text()
    assert not (project / "tb" / "data" / f"w{stripes}.bin").exists()
    assert "ROM_" not in (project / "src" / "tiny_top_weights.h").read_text()


def test_second_csim_uses_the_cached_binary(simulate, hlsgen_cache):
    project, _ = simulate("tiny")
    entries = cache_entries(hlsgen_cache)
    again = run_cli("csim", project)
    assert again.code == 0 and "cached binary" in again.out and "PASS" in again.out
    assert cache_entries(hlsgen_cache) == entries


# ----------------------------------------------------------------------------- divergence report
def tampered_copy(project: Path, destination: Path) -> Path:
    copy = destination / project.name
    shutil.copytree(project, copy)
    return copy


def set_first_gamma(weights_header: Path, table: str, value: int) -> None:
    """Replace layer 0's first entry of GAMMA_<table> in the generated constant header."""
    text = weights_header.read_text()
    pattern = re.compile(rf"(GAMMA_{table}\[\d+\]\[\d+\] = \{{\n\{{)(-?\d+)")
    assert pattern.search(text), f"GAMMA_{table} not found"
    weights_header.write_text(pattern.sub(lambda m: m.group(1) + str(value), text, count=1))


def test_tampered_norm_weight_is_named_as_the_first_divergence(simulate, tmp_path):
    project = tampered_copy(simulate("tiny")[0], tmp_path)
    set_first_gamma(project / "src" / "tiny_top_weights.h", "LAYER", 100_000)   # row 0: layer 0 of i; ~24.4, far above any gamma
    record_edits(project)
    run = run_cli("csim", project)
    assert run.code == 1
    assert re.search(r"FAIL: first divergence: token 0, tensor layer0\.attn\.i\.(q|scale)\[\d+\]: "
                     r"csim -?\d+, golden -?\d+", run.out), run.out


def test_tampered_expected_logit_fails_with_no_intermediate_differing(simulate, tmp_path, hlsgen_cache):
    project = tampered_copy(simulate("tiny")[0], tmp_path)
    logits_file = project / "tb" / "data" / "expected_logits.bin"
    logits = np.fromfile(logits_file, "<i4")
    logits[300] += 1
    logits.tofile(logits_file)
    record_edits(project)
    entries = cache_entries(hlsgen_cache)
    run = run_cli("csim", project)
    assert run.code == 1
    assert "cached binary" in run.out and cache_entries(hlsgen_cache) == entries   # data is not compiled in
    assert "MISMATCH call 1 token 1 logit 44" in run.out
    assert "first divergence: no intermediate tensor differs" in run.out


@pytest.mark.parametrize("kind, stripe, layer, tensor", [("i", 0, 0, "layer0.attn.i"), ("down", 1, 1, "layer1.mlp.down")])
def test_tampered_offchip_word_names_its_layer_and_projection(simulate, tmp_path, kind, stripe, layer, tensor):
    original, _ = simulate("hbm")
    project = tampered_copy(original, tmp_path)
    b = planner.plan(spec_mod.load(original.parent / "hbm.yaml")).bitlinear(kind)
    port = project / "tb" / "data" / f"w{stripe}.bin"
    words = np.fromfile(port, np.uint8).reshape(-1, 64)
    words[b.base_word + layer * b.words_per_matrix] ^= 0x55       # every 2-bit code of the word changes value
    words.tofile(port)
    record_edits(project)
    run = run_cli("csim", project)
    assert run.code == 1
    assert re.search(rf"first divergence: token 0, tensor {re.escape(tensor)}\[\d+\]", run.out), run.out


# ----------------------------------------------------------------------------- report/csim.json
def csim_record(project: Path) -> dict:
    return json.loads((project / "report" / "csim.json").read_text())


def report_of(project: Path) -> tuple[dict, str]:
    """`hlsgen report`: its csim entry and its markdown."""
    assert run_cli("report", project).code == 0
    return (json.loads((project / "report" / "report.json").read_text())["csim"],
            (project / "report" / "report.md").read_text())


def test_csim_records_its_result_and_the_report_reads_it(simulate):
    project, _ = simulate("tiny")
    record = csim_record(project)
    tokens = calls_mod.read_calls(project / "tb" / "data" / "calls.bin")[:, 0].sum()
    manifest = json.loads((project / "hlsgen_manifest.json").read_text())
    assert record["passed"] and (record["tokens"], record["vocab"]) == (tokens, 256)
    assert record["values_compared"] == tokens * 257 and record["mismatches"] == record["max_logit_difference"] == 0
    assert record["saturations"] == record["golden_saturations"] == manifest["golden_saturations"]
    assert record["first_divergence"] is None and record["error"] is None
    assert record["compiler"]["version"] and (Path(record["ap_types"]) / "ap_int.h").is_file()
    assert record["seconds"]["wall"] >= record["seconds"]["run"] > 0
    entry, text = report_of(project)
    assert entry == {**record, "stale": False}
    assert f"- csim: PASS: {tokens * 257:,} values ({tokens} tokens x (256 logits + the next token)), " \
           f"0 mismatches, max logit difference 0" in text


def test_a_failed_csim_replaces_the_recorded_pass(simulate, tmp_path):
    project = tampered_copy(simulate("tiny")[0], tmp_path)     # with the original's PASS record
    assert csim_record(project)["passed"]
    logits_file = project / "tb" / "data" / "expected_logits.bin"
    logits = np.fromfile(logits_file, "<i4")
    logits[300] -= 3
    logits.tofile(logits_file)
    record_edits(project)
    assert run_cli("csim", project).code == 1
    record = csim_record(project)
    assert not record["passed"] and record["mismatches"] == 1 and record["max_logit_difference"] == 3
    assert record["first_mismatch"].startswith("MISMATCH call 1 token 1 logit 44")
    assert record["first_divergence"].startswith("no intermediate tensor differs")
    _, text = report_of(project)
    assert "- csim: FAIL: " in text and "1 mismatches, max logit difference 3; first divergence: no intermediate" in text
    assert "rebuilt since" not in text
    # A rebuild changes the manifest: the record is then of an earlier build, and says so.
    manifest = project / "hlsgen_manifest.json"
    manifest.write_text(manifest.read_text() + " ")
    entry, text = report_of(project)
    assert entry["stale"] and "the project was rebuilt since" in text


def test_a_csim_that_does_not_compile_is_recorded_as_failed(simulate, tmp_path, monkeypatch):
    project = tampered_copy(simulate("tiny")[0], tmp_path)
    monkeypatch.setenv("CXX", "false")          # a "compiler" that fails at once
    run = run_cli("csim", project)
    assert run.code == 2 and "g++ failed" in run.err
    record = csim_record(project)
    assert not record["passed"] and record["tokens"] is None and "g++ failed" in record["error"]
    _, text = report_of(project)
    assert "- csim: FAIL, the testbench did not finish: csim: g++ failed" in text


# ----------------------------------------------------------------------------- incremental writes
AGES_AGO = 1_000_000_000      # files are back-dated, so any rewrite shows in the mtime


def build_tiny(directory: Path, **sections) -> build.BuildResult:
    return build.build(spec_mod.load(write_config(directory, "tiny", **sections)))


def backdate(project: Path) -> None:
    for path in project.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(AGES_AGO, AGES_AGO))


def test_rebuild_without_change_rewrites_nothing(tmp_path):
    first = build_tiny(tmp_path)
    assert len(first.changed) == first.files
    backdate(first.out)
    before = project_bytes(first.out)
    run = run_cli("build", tmp_path / "tiny.yaml")
    assert run.code == 0 and f"{first.files} files, 0 changed" in run.out
    assert project_bytes(first.out) == before
    assert leftovers(first.out) == []


def test_config_change_rewrites_only_the_affected_files(tmp_path):
    project = build_tiny(tmp_path).out
    backdate(project)
    before = project_bytes(project)
    result = build_tiny(tmp_path, hardware={"clock_mhz": 250})
    after = project_bytes(project)
    assert set(after) == set(before)
    rewritten = {rel for rel in after if after[rel][1] != AGES_AGO}
    assert set(result.changed) == rewritten == {rel for rel in after if after[rel][0] != before[rel][0]}
    assert {"hls/run_hls.tcl", "hls/hls_config.cfg", "hlsgen_manifest.json"} <= rewritten
    assert not any(rel.startswith(("src/", "tb/")) for rel in rewritten)     # the clock is not in the C++


# ----------------------------------------------------------------------------- atomic writes
def test_failure_while_staging_leaves_the_previous_project_intact(tmp_path, monkeypatch):
    project = build_tiny(tmp_path).out
    before = project_bytes(project)
    real_write, writes = Path.write_bytes, []

    def write_then_fail(self, data):
        writes.append(self)
        if len(writes) == 2:
            raise OSError("disk full (simulated)")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_then_fail)
    with pytest.raises(HlsgenError, match="simulated"):
        build_tiny(tmp_path, hardware={"clock_mhz": 250})
    monkeypatch.undo()
    assert writes[0].relative_to(project.parent).parts[0].startswith(project.name + ".hlsgen-new-")   # staging had begun
    assert project_bytes(project) == before
    assert leftovers(project) == []
    assert "hls/run_hls.tcl" in build_tiny(tmp_path, hardware={"clock_mhz": 250}).changed   # nothing half-applied


def test_failed_build_before_writing_leaves_the_previous_project_intact(tmp_path):
    project = build_tiny(tmp_path).out
    before = project_bytes(project)
    run = run_cli("build", write_config(tmp_path, "tiny", weights={"random": None, "path": "missing.safetensors"}))
    assert run.code == 2 and "missing.safetensors does not exist" in run.err
    assert project_bytes(project) == before
    assert leftovers(project) == []


def test_interrupted_swap_is_recovered_by_the_next_write(tmp_path):
    project = build_tiny(tmp_path).out
    before = project_bytes(project)
    # Crash between the two renames: the old tree is parked, the new one never arrived ...
    project.rename(project.with_name(project.name + ".hlsgen-old"))
    # ... and a later crash left a half-staged tree.
    stage = project.with_name(project.name + ".hlsgen-new")
    stage.mkdir()
    (stage / "half_written.h").write_text("// partial")
    assert build_tiny(tmp_path).changed == []     # the parked tree came back, identical
    assert project_bytes(project) == before
    assert leftovers(project) == []


def test_rendered_project_write_returns_the_changed_relpaths(tmp_path):
    files = RenderedProject({"a.txt": "one\n", "sub/b.bin": b"\x00\x01"})
    assert files.write(tmp_path / "p") == ["a.txt", "sub/b.bin"]
    files["a.txt"] = "two\n"
    assert files.write(tmp_path / "p") == ["a.txt"]
    assert (tmp_path / "p" / "a.txt").read_text() == "two\n"


# ----------------------------------------------------------------------------- banner and manifest
COMMENT_OPENERS = {".cpp": "// ", ".h": "// ", ".v": "// ", ".tcl": "# ", ".cfg": "# ", ".mk": "# ", ".py": "# ",
                   "Makefile": "# ", ".md": "<!-- ", ".yaml": "# "}
DATA_SUFFIXES = (".bin", ".mem")      # raw vectors and $readmemh images


@pytest.mark.parametrize("name", ["tiny", "hbm"])
def test_every_text_file_opens_with_the_banner_as_a_comment(tmp_path, name):
    project = build.build(spec_mod.load(write_config(tmp_path, name, **CONFIGS[name]))).out
    for path in project.rglob("*"):
        if not path.is_file() or path.suffix in DATA_SUFFIXES:
            continue
        rel = path.relative_to(project)
        if rel.parts[:2] == ("src", "ap_types"):      # hls4ml's headers, copied as they are
            continue
        if path.suffix == ".json":      # JSON has no comments: a field says it
            assert json.loads(path.read_text()).get("generated_by") == BANNER, rel
            continue
        lines = path.read_text().splitlines()
        first = lines[1] if lines[0].startswith("#!") else lines[0]
        opener = COMMENT_OPENERS.get(path.suffix or path.name)
        assert opener, f"{rel}: a new kind of file; add its comment syntax to COMMENT_OPENERS"
        assert first.startswith(opener + BANNER), f"{rel}: {first!r}"


def test_manifest_digests_match_the_files_on_disk(simulate):
    project, _ = simulate("four_layers")
    manifest = json.loads((project / "hlsgen_manifest.json").read_text())
    on_disk = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    # report/csim.json is the csim run's record, not a generated file.
    assert set(manifest["files"]) == on_disk - {"hlsgen_manifest.json", "report/csim.json"}
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((project / rel).read_bytes()).hexdigest() == digest, rel
    assert manifest["top"] == "lm4_top"
    assert manifest["spec_digest"] == spec_mod.load(project.parent / "four_layers.yaml").digest()


# ----------------------------------------------------------------------------- refusals
def ternary_megabytes(model: spec_mod.ModelSpec) -> float:
    """Packed ternary weights, each matrix padded to whole 512-bit words, in MB."""
    bits = 0
    for kind, (rows, cols) in model.projection_shapes().items():
        matrices = 1 if kind == "lm_head" else model.layers
        bits += matrices * math.ceil(rows * cols * 2 / 512) * 512
    return bits / 8e6


def test_design_too_large_for_the_chip_is_refused_with_the_numbers(tmp_path):
    config = write_config(tmp_path, "big", model={"hidden": 256, "layers": 4, "intermediate_size": 1024},
                          hardware={"board": "pynq_z2"})
    run = run_cli("build", config)
    assert run.code == 2 and run.out == ""
    found = re.fullmatch(r"error: hardware\.weights: onchip needs ([\d.]+) MB on chip \((.*)\) but pynq_z2 has "
                         r"([\d.]+) MB of BRAM\+URAM \(allowed: weights: ddr\)\n", run.err)
    assert found, run.err
    need, parts, have = float(found[1]), dict(part.rsplit(" ", 2)[:2] for part in found[2].split(", ")), float(found[3])
    assert float(parts["ternary weights"]) == round(ternary_megabytes(spec_mod.load(config).model), 2)
    assert need == pytest.approx(sum(map(float, parts.values())), abs=0.03)
    assert have == round(140 * 36 * 1024 / 8e6, 2)      # boards/pynq_z2.yaml: 140 BRAM36, no URAM
    assert need > have
    assert not (tmp_path / "big").exists()


def test_hbm_on_a_board_without_hbm_is_refused(tmp_path):
    run = run_cli("build", write_config(tmp_path, "nohbm", hardware={"board": "u250", "weights": "hbm"}))
    assert run.code == 2
    assert "error: hardware.weights: 'hbm' is not available on u250 (allowed: onchip, ddr)" in run.err
    assert not (tmp_path / "nohbm").exists()


def test_vitis_csim_without_vitis_hls_names_the_tool_and_the_command(tmp_path, monkeypatch):
    project = build_tiny(tmp_path).out
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    run = run_cli("csim", project, "--tool", "vitis")
    assert run.code == 2
    assert "vitis_hls is not on PATH" in run.err
    assert f"cd {project.resolve()} && vitis_hls -f hls/run_hls.tcl -tclargs csim" in run.err


def test_files_the_new_build_no_longer_generates_are_removed(tmp_path):
    project = build.build(spec_mod.load(write_config(tmp_path, "tiny", **CONFIGS["hbm"]))).out
    ports = sorted(p.relative_to(project).as_posix() for p in (project / "tb" / "data").glob("w*.bin"))
    assert ports
    (project / "tb" / "csim.exe").write_bytes(b"built by make: not hlsgen's to delete")
    result = build_tiny(tmp_path)                                   # the same model, weights on chip
    assert set(ports) <= set(result.changed)
    assert not any((project / rel).exists() for rel in ports)
    assert (project / "tb" / "csim.exe").exists()
    manifest = json.loads((project / "hlsgen_manifest.json").read_text())
    on_disk = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert on_disk == set(manifest["files"]) | {"hlsgen_manifest.json", "tb/csim.exe"}
