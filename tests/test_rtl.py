"""The generated RTL of the matrix-vector units: lint, packing order, golden vectors, port names,
and the refusal of foldings that do not divide (no simulator build here; see test_cosim.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import run_cli, write_config

from hlsgen.project import calls as calls_mod
from hlsgen.tools import cosim
from hlsgen.hardware import planner
from hlsgen.project import rtl
from hlsgen.errors import HlsgenError
from hlsgen.project.words import weight_words


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Three foldings (PE=1/SIMD=1, a 64-column matrix in one fold, the example's), off-chip weights,
    and batches of 3 and 4."""
    root = tmp_path_factory.mktemp("rtl")
    made = {}
    for name, hardware in {"p1s1": {"parallelism": {"pe": 1, "simd": 1}},
                           "p2s64": {"parallelism": {"pe": 2, "simd": 64}},
                           "p4s8": {"parallelism": {"pe": 4, "simd": 8}},
                           "p4s8_hbm": {"parallelism": {"pe": 4, "simd": 8}, "weights": "hbm"},
                           "p1s1_b3": {"parallelism": {"pe": 1, "simd": 1}, "batch": 3},
                           "p4s8_b4_hbm": {"parallelism": {"pe": 4, "simd": 8}, "weights": "hbm", "batch": 4}}.items():
        config = write_config(root, name, hardware=hardware)
        assert run_cli("build", config).code == 0
        made[name] = root / name
    return made


def test_every_module_is_lint_clean(projects):
    """The MVU modules; the ECP5 ROMs (<module>_rom.v, DP16KD instances that only Yosys's ECP5
    library defines) are checked by tests/test_ecp5_timing.py."""
    for project in projects.values():
        for verilog in sorted((project / "rtl").glob("*.v")):
            if not verilog.name.endswith("_rom.v"):
                assert cosim.lint(verilog) == "", verilog


def vitis_ports(entry: dict) -> set[str]:
    """The port names Vitis HLS gives the equivalent top (VENDOR_FLOW.md section 3)."""
    ports = {"ap_clk", "ap_rst_n", "ap_start", "ap_done", "ap_idle", "ap_ready"}
    streams = ["codes", "sums"] + (["weights"] if entry["weight_stream"] else [])
    ports |= {f"{s}_{signal}" for s in streams for signal in ("TDATA", "TVALID", "TREADY")}
    return ports | ({"layer"} if entry["has_layer"] else set()) | ({"n_tokens"} if entry["plan"]["batch"] > 1 else set())


def test_ports_follow_the_vitis_names(projects):
    for project in projects.values():
        index = json.loads((project / rtl.COSIM_INDEX).read_text())
        for entry in index["kinds"].values():
            text = (project / entry["verilog"]).read_text()
            start = text.index(f"module {entry['module']}")
            header = text[start:text.index(");", start)]
            ports = set(re.findall(r"(?:input|output)\s+wire\s+(?:\[[^\]]+\]\s*)?(\w+)", header))
            assert ports == vitis_ports(entry), entry["module"]
            # TDATA is whole bytes, as Vitis rounds it up.
            assert all(int(w) % 8 == 0 for w in re.findall(r"\[(\d+)-1:0\] \w+_TDATA", header))


def test_rom_image_is_the_hls_rom_in_mvu_order(projects):
    """Lane (nf, sf), bit pair pe*SIMD + s, holds code[nf*PE + pe, sf*SIMD + s] (01 = +1, 11 = -1)."""
    rng = np.random.default_rng(3)
    for pe, simd, rows, cols in ((1, 1, 8, 4), (2, 2, 4, 8), (4, 8, 8, 16), (16, 16, 32, 32)):
        codes = rng.integers(-1, 2, size=(rows, cols)).astype(np.int8)
        b = planner.BitLinearPlan(kind="i", rows=rows, cols=cols, pe=pe, simd=simd, matrices=1, in_width=24,
                                  y_width=44, sumsq_width=50, root_width=64, beta_width=33, num_width=80,
                                  acc_width=planner.bits_for(127 * cols) + 1,
                                  words_per_matrix=-(-rows * cols * 2 // 512), offchip=False)
        lanes = rtl.matrix_lanes(weight_words(codes, b), b.lane_bits, b.cycles_per_matrix)
        step = 0
        for nf in range(rows // pe):
            for sf in range(cols // simd):
                for p in range(pe):
                    for s in range(simd):
                        field = (lanes[step] >> (2 * (p * simd + s))) & 3
                        assert field == {0: 0, 1: 1, -1: 3}[int(codes[nf * pe + p, sf * simd + s])]
                step += 1


def test_mem_files_hold_every_matrix(projects):
    index = json.loads((projects["p4s8"] / rtl.COSIM_INDEX).read_text())
    for entry in index["kinds"].values():
        lines = (projects["p4s8"] / entry["mem"]).read_text().split()
        assert len(lines) == entry["matrices"] * entry["cycles_per_matrix"]
        assert {len(line) for line in lines} == {-(-entry["lane_bits"] // 4)}


def test_golden_vectors_are_the_traced_codes_times_the_matrix(projects):
    """Every BitLinear of every token: the golden model's `.q` codes, and their exact products."""
    from hlsgen.model import checkpoint, spec

    project = projects["p4s8"]
    weights = checkpoint.load(spec.load(project.parent / "p4s8.yaml"))
    index = json.loads((project / rtl.COSIM_INDEX).read_text())
    tokens = calls_mod.read_calls(project / "tb/data/calls.bin")[:, 0].sum()
    for kind, entry in index["kinds"].items():
        v = rtl.read_vectors(project, entry)
        assert len(v.layers) == tokens * entry["matrices"]
        assert np.abs(v.codes).max() <= 127 and np.any(v.codes)
        for layer, codes, expected in zip(v.layers, v.codes, v.expected):
            w = weights.lm_head.codes if kind == "lm_head" else getattr(weights.layers[layer], kind).codes
            np.testing.assert_array_equal(expected, w.astype(np.int64) @ codes.astype(np.int64))


def test_acc_width_is_the_plan_s(projects):
    """The module's accumulators and the HLS config come from one BitLinearPlan."""
    project = projects["p2s64"]
    index = json.loads((project / rtl.COSIM_INDEX).read_text())
    config = (project / "src" / "tiny_top_config.h").read_text()
    for entry in index["kinds"].values():
        text = (project / entry["verilog"]).read_text()
        assert f"localparam integer ACC_W = {entry['acc_width']};" in text
        assert f"acc_width = {entry['acc_width']};" in config


def test_batch_one_prints_the_single_token_unit(projects):
    """Only a batched plan gets the n_tokens port, the load phase and the accumulator chain."""
    for name, project in projects.items():
        for verilog in (project / "rtl").glob("*_mvu_*.v"):     # the MVUs (rtl/*_core*.v: test_rtl_core.py)
            text = verilog.read_text()
            assert ("n_tokens" in text) == ("_b" in name) and ("acc_rotated" in text) == ("_b" in name), verilog


def test_calls_follow_the_testbench_and_share_a_matrix(projects):
    """Vectors run token by token, layer by layer; each testbench call of n tokens is a call per matrix."""
    assert rtl.mvu_calls(2, [3, 1], 8) == [[0, 2, 4], [1, 3, 5], [6], [7]]
    assert rtl.mvu_calls(2, [3, 1], 3) == [[0, 2], [1]]         # --max-vectors cuts calls short
    project = projects["p4s8_b4_hbm"]
    entry = json.loads((project / rtl.COSIM_INDEX).read_text())["kinds"]["i"]
    layers = rtl.read_vectors(project, entry).layers
    tokens = calls_mod.read_calls(project / "tb/data/calls.bin")[:, 0]
    calls = rtl.mvu_calls(entry["matrices"], tokens, len(layers))
    assert sorted(i for c in calls for i in c) == list(range(len(layers)))
    assert all(len({int(layers[i]) for i in c}) == 1 and len(c) <= 4 for c in calls)
    assert max(len(c) for c in calls) == 4


def test_planner_refuses_a_folding_that_does_not_divide():
    with pytest.raises(HlsgenError, match=r"the down projection \[64 x 96\]: simd 64 does not divide its 96 columns"):
        planner.check_folding("down", 64, 96, 4, 64)
    with pytest.raises(HlsgenError, match="pe 3 does not divide its 64 rows.*power of two"):
        planner.check_folding("i", 64, 64, 3, 8)


def test_spec_refuses_it_first(tmp_path):
    config = write_config(tmp_path, "bad", hardware={"parallelism": {"pe": 4, "simd": 48}})
    result = run_cli("build", config)
    assert result.code == 2 and "does not divide" in result.err
