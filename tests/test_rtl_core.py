"""The whole accelerator in RTL (rtl/<top>_core.v): the agreed ports, the program of stages, lint,
the calls as the core's starts, and the whole-model cosim on Verilator: bit-exact on the shipped
model and on random configs (2 layers, H = 64; batch 4 with state slots; H = 48), and a ROM word broken on
purpose is named as the first divergence (token, layer, stage).  Each Verilator build compiles C++
(about a minute cold)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import plan_of, run_cli, write_config

from hlsgen.hardware import perf
from hlsgen.project import calls as calls_mod
from hlsgen.project import rtl_core
from hlsgen.tools import cosim

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys_path_sim = Path(__file__).resolve().parent.parent / "sim"


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("core")
    made = {}
    for name, sections in {"tiny": {},
                           "p1s1_b3": {"hardware": {"parallelism": {"pe": 1, "simd": 1}, "batch": 3}},
                           "p4s8_b4": {"hardware": {"parallelism": {"pe": 4, "simd": 8}, "batch": 4}},
                           "hbm": {"hardware": {"weights": "hbm"}},
                           # K = 48, not a power of two: each quantiser's mean sum of squares goes through the divider
                           "h48": {"model": {"hidden": 48, "layers": 1, "intermediate_size": 96}}}.items():
        assert run_cli("build", write_config(root, name, **sections)).code == 0
        made[name] = root / name
    out = root / "tiny_lm"
    assert run_cli("build", EXAMPLES / "tiny_lm.yaml", "-o", out).code == 0
    made["tiny_lm"] = out
    return made


def index_of(project: Path) -> dict:
    return json.loads((project / rtl_core.WHOLE_INDEX).read_text())


def header_ports(text: str, module: str) -> list[tuple[str, str, str]]:
    """(direction, width, name) of a module's ports, in order."""
    start = text.index(f"module {module} ")
    body = text[text.index(") (", start):text.index(");", start)]
    return re.findall(r"(input|output)\s+(?:wire|reg)\s+(?:signed\s+)?(\[[^\]]+\])?\s*(\w+)", body)


@pytest.mark.parametrize("name, token_w, slot_w", [("tiny", 8, 1), ("p4s8_b4", 8, 2), ("p1s1_b3", 8, 2)])
def test_the_core_has_the_agreed_ports(projects, name, token_w, slot_w):
    project = projects[name]
    module = index_of(project)["module"]
    text = (project / "rtl" / f"{module}.v").read_text()
    assert header_ports(text, module) == [
        ("input", "", "clk"), ("input", "", "rst"), ("input", "", "start"),
        ("input", f"[{token_w}-1:0]", "token"), ("input", f"[{slot_w}-1:0]", "slot"), ("input", "", "reset_state"),
        ("output", "", "idle"), ("output", "", "done"), ("output", f"[{token_w}-1:0]", "next_token"),
        ("output", "", "logit_valid"), ("output", "[24-1:0]", "logit")]
    assert "output reg  signed [24-1:0] logit" in text


def test_the_program_runs_the_model_s_stages(projects):
    stages = index_of(projects["tiny"])["stages"]
    def layer(l, next_norm):
        return ["attn.i/f/g.quantise", "attn.i/f/g+mlgru", "attn.o+residual.quantise",
                f"attn.o+residual+layer{l}.mlp_norm", "mlp.gate.quantise", "mlp.gate+glu",
                "mlp.down+residual.quantise", f"mlp.down+residual+{next_norm}"]
    assert [s["name"] for s in stages] == (["embedding+layer0.attn_norm"] + layer(0, "layer1.attn_norm")
                                           + layer(1, "final_norm") + ["lm_head.quantise", "lm_head"])
    assert [s["layer"] for s in stages] == [-1] + [0] * 8 + [1] * 8 + [-1] * 2
    # Probe lengths: H = 64, D = 64, I = 128, V = 256; a quantiser shows its codes, then its scale;
    # i, f and g's codes and scales each on their slot, one after another; their MVUs feed the
    # MLGRU, which writes x.
    by_name = {s["name"]: s for s in stages}
    assert by_name["attn.i/f/g.quantise"]["lane_offsets"] == [0, 65, 130] and by_name["attn.i/f/g.quantise"]["length"] == 195
    assert by_name["attn.i/f/g+mlgru"]["lane_offsets"] == [0] and by_name["attn.i/f/g+mlgru"]["length"] == 64
    assert by_name["mlp.down+residual.quantise"]["length"] == 129 and by_name["lm_head"]["length"] == 256
    # A stage with a fused norm or GLU shows its x on lane 0 (the norm; the GLU: I values), then its
    # own output on lane 1 (h or r; the gate's 2I rows).
    assert by_name["embedding+layer0.attn_norm"]["lane_offsets"] == [0, 64] and by_name["embedding+layer0.attn_norm"]["length"] == 128
    assert by_name["mlp.down+residual+final_norm"]["lane_offsets"] == [0, 64]
    assert by_name["mlp.gate+glu"]["lane_offsets"] == [0, 128] and by_name["mlp.gate+glu"]["length"] == 128 + 256


def test_the_golden_probe_values_end_in_the_testbench_logits(projects):
    project = projects["tiny"]
    index = index_of(project)
    values = np.fromfile(project / index["expected"], dtype="<i8").reshape(-1, index["values_per_token"])
    head = index["stages"][-1]
    logits = np.fromfile(project / "tb/data/expected_logits.bin", dtype="<i4").reshape(len(values), -1)
    assert np.array_equal(values[:, head["offset"]:head["offset"] + head["length"]], logits)


@pytest.mark.parametrize("name", ["tiny", "p1s1_b3", "p4s8_b4", "tiny_lm"])
def test_the_core_is_lint_clean(projects, name):
    project = projects[name]
    for source in index_of(project)["sources"][:2]:     # the MVUs: tests/test_rtl.py
        assert cosim.lint(project / source) == "", source


def test_weights_off_chip_have_no_core(projects):
    project = projects["hbm"]
    assert not list((project / "rtl").glob("*_core*.v")) and not (project / rtl_core.WHOLE_INDEX).exists()
    result = run_cli("cosim", project, "--whole")
    assert result.code == 2 and "hardware.weights: onchip" in result.err


def test_max_tokens_needs_whole_and_whole_takes_no_kind(projects):
    result = run_cli("cosim", projects["tiny"], "--max-tokens", "2")
    assert result.code == 2 and "--max-tokens" in result.err
    result = run_cli("cosim", projects["tiny"], "--whole", "--kind", "i")
    assert result.code == 2 and result.err.startswith("error: --kind: i with --whole")


def test_calls_become_starts_with_slots_and_resets():
    import sys
    sys.path.insert(0, str(sys_path_sim))
    try:
        from cocotb_whole import TokenStep, token_steps
    finally:
        sys.path.remove(str(sys_path_sim))
    calls = np.array([calls_mod.call_row([5, 6], False, 1), calls_mod.call_row([9], False, 0),
                      calls_mod.call_row([1, 2, 3], True, 0b111), calls_mod.call_row([4, 7], True, 0)], np.int32)
    next_tokens = np.array([0, 9, 0, 0, 0, 0, 4, 0])
    assert token_steps(calls, next_tokens) == [
        TokenStep(5, 0, True, False), TokenStep(6, 0, False, False), TokenStep(9, 0, False, True),
        TokenStep(1, 0, True, False), TokenStep(2, 1, True, False), TokenStep(3, 2, True, False),
        TokenStep(4, 0, False, False), TokenStep(7, 1, False, False)]


# ----------------------------------------------------------------------------- Verilator
def whole_section(project: Path) -> dict:
    return json.loads((project / "report" / "cosim.json").read_text())["whole"]


def test_the_shipped_model_is_bit_exact(projects):
    """examples/tiny_lm: the first 6 tokens (5 of the prompt, 1 decoded), every stage value, logit
    and next token."""
    project = projects["tiny_lm"]
    result = run_cli("cosim", project, "--whole", "--max-tokens", "6")
    assert result.code == 0, result.out + result.err
    assert "PASS" in result.out and "cycles per token: prefill" in result.out
    whole = whole_section(project)
    assert whole["passed"] and whole["tokens"] == 6 and whole["divergence"] is None
    assert whole["decode"] == [False] * 5 + [True]
    # A token's cycles are the model's (perf.rtl_core_stages; tests/test_open_board.py checks it stage by stage).
    assert whole["cycles_per_token"]["decode"] == perf.rtl_core_cycles_per_token(plan_of(project))


@pytest.mark.parametrize("name", ["tiny", "p4s8_b4", "h48"])
def test_random_configs_are_bit_exact_over_every_call(projects, name):
    """Every token of the testbench: prompt, decoded tokens, a reset; with batch 4, sequences side
    by side in four state slots."""
    project = projects[name]
    result = run_cli("cosim", project, "--whole")
    assert result.code == 0, result.out + result.err
    whole = whole_section(project)
    assert whole["passed"] and whole["tokens"] == whole["of"] and any(whole["decode"])
    if name == "p4s8_b4":
        assert set(json.loads((project / "cosim/run/verilator/whole/report.json").read_text())["slots"]) == {0, 1, 2, 3}


@pytest.mark.parametrize("rom, line, bit, stage, layer", [
    ("tiny_top_core_gamma.mem", 0, 18, "embedding+layer0.attn_norm", -1),   # layer 0's attn_norm weight 0, a high bit
    ("tiny_top_mvu_gate.mem", None, 0, "mlp.gate+glu", 1),   # a code of layer 1's gate matrix
    ("tiny_top_core_qgamma1_0.mem", 0, 12, "attn.i/f/g.quantise", 0),   # f's quantiser gamma 0: slot 1's codes
    ("tiny_top_mvu_g.mem", 0, 0, "attn.i/f/g+mlgru", 0),     # a code of layer 0's g matrix: slot 2's rows
])
def test_a_broken_rom_word_is_named_as_the_first_divergence(projects, rom, line, bit, stage, layer):
    """One bit of one ROM word flipped (in place: $readmemh reads it at run time, no rebuild), then
    restored; through cosim.run_whole, below the command's project checks."""
    project = projects["tiny"]
    mem = project / "rtl" / rom
    original = mem.read_text()
    lines = original.splitlines()
    if line is None:     # the first lane word of layer 1's matrix
        line = json.loads((project / "cosim/mvu.json").read_text())["kinds"]["gate"]["cycles_per_matrix"]
    lines[line] = f"{int(lines[line], 16) ^ (1 << bit):0{len(lines[line])}x}"
    try:
        mem.write_text("\n".join(lines) + "\n")
        result = cosim.run_whole(project, cosim.CosimOptions(), max_tokens=1)
    finally:
        mem.write_text(original)
    assert not result.passed
    divergence = result.divergence
    assert (divergence["token"], divergence["layer"], divergence["stage"]) == (0, layer, stage), divergence
    assert divergence["message"].startswith(f"token 0 ({f'layer {layer}, ' if layer >= 0 else ''}stage {stage!r}")
