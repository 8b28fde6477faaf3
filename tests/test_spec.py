"""Every error path of the config loader (hlsgen/model/spec.py), and the CLI's handling of them."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hlsgen.hardware import planner
from hlsgen.model import spec
from hlsgen.cli import main, parameter_count
from hlsgen.errors import HlsgenError

REPO = Path(__file__).resolve().parent.parent
DELETE = object()

BASE = {
    "model": {"vocab": 256, "hidden": 64, "layers": 2, "intermediate_size": 128},
    "weights": {"random": {"seed": 0}},
    "hardware": {"board": "u280", "weights": "onchip", "parallelism": {"pe": 4, "simd": 8}},
    "project": {"name": "tiny_top", "output": "out/tiny_top"},
}


def changed(config: dict, dotted: str, value) -> dict:
    """A copy of `config` with the value at `a.b.c` replaced (or removed with DELETE)."""
    config = copy.deepcopy(config)
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return config


def write_yaml(directory: Path, config, name="config.yaml") -> Path:
    path = directory / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def load_error(directory: Path, config) -> str:
    with pytest.raises(HlsgenError) as info:
        spec.load(write_yaml(directory, config))
    message = str(info.value)
    assert "\n" not in message
    return message


def write_hf_config(directory: Path, **overrides) -> Path:
    config = {"model_type": "hgrn_bit", "vocab_size": 256, "hidden_size": 64, "num_hidden_layers": 2,
              "num_heads": 1, "expand_ratio": 1, "hidden_ratio": 4, "intermediate_size": None,
              "rms_norm_eps": 1e-6, "use_lower_bound": True, "use_short_conv": False,
              "tie_word_embeddings": False, **overrides}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


# ----------------------------------------------------------------------------- valid input
def test_base_config_loads_with_defaults(tmp_path):
    s = spec.load(write_yaml(tmp_path, BASE))
    assert (s.model.hidden, s.model.inner, s.model.intermediate, s.model.layers) == (64, 64, 128, 2)
    assert s.weights.seed == 0 and s.weights.path is None
    assert s.hardware.parallelism.pe == 4 and s.hardware.parallelism.simd == 8
    assert s.hardware.clock_mhz is None
    assert s.numerics == spec.NumericsSpec()
    assert s.project.output == (tmp_path / "out" / "tiny_top").resolve()


def test_shipped_example_is_valid():
    s = spec.load(REPO / "examples" / "tiny.yaml")
    assert (s.model.vocab, s.model.hidden, s.model.layers, s.model.intermediate) == (256, 64, 2, 128)
    assert s.project.name == "tiny_top"
    assert s.project.output == (REPO / "out" / "tiny_top").resolve()


def test_intermediate_size_defaults_to_the_reference_rule(tmp_path):
    s = spec.load(write_yaml(tmp_path, changed(changed(BASE, "model.intermediate_size", DELETE),
                                                "model.hidden", 1024)))
    assert s.model.intermediate == 2816      # 256 * ceil(int(1024 * 4 * 2/3) / 256), the 370M value


@pytest.mark.parametrize("hidden, layers, intermediate, expected", [
    (1024, 24, 2816, 374_108_160), (2048, 24, 5632, 1_364_779_008), (2560, 32, 6912, 2_702_357_504)])
def test_parameter_count_matches_released_models(hidden, layers, intermediate, expected):
    model = spec.ModelSpec(vocab=32000, hidden=hidden, layers=layers, intermediate_size=intermediate)
    assert parameter_count(model) == expected


def test_digest_follows_content(tmp_path):
    a = spec.load(write_yaml(tmp_path, BASE, "a.yaml"))
    b = spec.load(write_yaml(tmp_path, BASE, "b.yaml"))
    c = spec.load(write_yaml(tmp_path, changed(BASE, "weights.random.seed", 1), "c.yaml"))
    assert a.digest() == b.digest() != c.digest()


# ----------------------------------------------------------------------------- error paths
@pytest.mark.parametrize("dotted, value, expected", [
    # unknown keys, with a hint
    ("modle", {"vocab": 1}, ["modle: unknown key", "did you mean 'model'?"]),
    ("model.hiden", 64, ["model.hiden: unknown key", "did you mean 'hidden'?"]),
    ("hardware.parallelism.smd", 8, ["hardware.parallelism.smd: unknown key", "did you mean 'simd'?"]),
    ("numerics.act.fraction", 12, ["numerics.act.fraction: unknown key", "did you mean 'frac'?"]),
    ("weights.random.sede", 1, ["weights.random.sede: unknown key", "did you mean 'seed'?"]),
    ("project.nmae", "x", ["project.nmae: unknown key", "did you mean 'name'?"]),
    # wrong types
    ("model.hidden", "sixty-four", ["model.hidden: 'sixty-four' is not an integer"]),
    ("model.layers", True, ["model.layers: True is not an integer"]),
    ("model.vocab", 256.0, ["model.vocab: 256.0 is not an integer"]),
    ("model.rms_norm_eps", "tiny", ["model.rms_norm_eps: 'tiny' is not a finite number"]),
    ("model.use_lower_bound", 1, ["model.use_lower_bound: 1 is not a boolean", "allowed: true, false"]),
    ("model", [1, 2], ["model: expected a mapping, got [1, 2]"]),
    ("hardware.parallelism", 4, ["hardware.parallelism: expected a mapping, got 4"]),
    ("weights.path", 5, ["weights: give exactly one of"]),       # both given
    ("hardware.clock_mhz", "fast", ["hardware.clock_mhz: 'fast' is not a finite number"]),
    ("project.output", 7, ["project.output: 7 is not a path"]),
    # out of range / missing
    ("model.layers", 0, ["model.layers: 0 is out of range", "allowed: integers >= 1"]),
    ("model.vocab", 1 << 21, [f"model.vocab: {1 << 21} is out of range", f"<= {1 << 20}"]),
    ("model.vocab", DELETE, ["model.vocab: missing"]),
    ("model.rms_norm_eps", 0, ["model.rms_norm_eps: 0 is out of range", "allowed: numbers > 0"]),
    ("model.heads", 3, ["model.heads: 3 does not divide hidden*expand_ratio 64"]),
    ("model.intermediate_size", 40000, ["model.intermediate_size: 40000 is out of range"]),
    ("numerics.act.width", 30, ["numerics.act.width: 30 is out of range", "<= 24"]),
    ("numerics.act.frac", 23, ["numerics.act.frac: 23 is out of range", "<= 22"]),
    ("numerics.state.frac", 4, ["numerics.state.frac: 4 is below numerics.act.frac 12"]),
    ("numerics.act", {"width": 8, "frac": 5}, ["numerics.sigmoid_step_bits: 7 exceeds numerics.act.frac 5"]),
    ("numerics.sigmoid_range", 5, ["numerics.sigmoid_range: 5 is not allowed", "allowed: 4, 8, 16, 32"]),
    ("hardware.clock_mhz", 2000, ["hardware.clock_mhz: 2000.0 is out of range"]),
    ("hardware.clock_mhz", -5, ["hardware.clock_mhz: -5 is out of range"]),
    ("weights.random.seed", -1, ["weights.random.seed: -1 is out of range", ">= 0"]),
    ("hardware.parallelism.pe", 3, ["hardware.parallelism.pe: 3 does not divide", "allowed: common divisors"]),
    ("hardware.parallelism.lm_head_pe", 3, ["hardware.parallelism.lm_head_pe: 3 does not divide model.vocab 256"]),
    ("hardware.parallelism.simd", 32768, ["hardware.parallelism.simd: 32768 is out of range"]),
    # choices
    ("hardware.board", "u281", ["hardware.board: 'u281' is not a known board", "u280", "did you mean 'u280'?"]),
    ("hardware.weights", "sram", ["hardware.weights: 'sram' is not allowed", "allowed: onchip, ddr, hbm"]),
    ("hardware.packing", "4trit", ["hardware.packing: '4trit' is not allowed", "allowed: 2bit, 5trit"]),
    ("project.name", "1top", ["project.name: '1top' is not a usable C/Tcl identifier"]),
    ("project.name", "my-top", ["project.name: 'my-top' is not a usable"]),
    ("project.name", "ap_top", ["project.name: 'ap_top' is not a usable", "not starting with ap_"]),
    ("project.name", "x" * 65, ["is not a usable C/Tcl identifier: it is 65 characters long", "at most 64 characters"]),
    ("weights", DELETE, ["weights: give exactly one of 'path'", "random: {seed: N}"]),
    ("weights", {}, ["weights: give exactly one of 'path'"]),
    ("weights", {"path": 5}, ["weights.path: 5 is not a path"]),
])
def test_error_names_path_and_value(tmp_path, dotted, value, expected):
    config = changed(BASE, dotted, value)
    if dotted == "weights.path":
        config = changed(config, "weights.random", {"seed": 0})
    message = load_error(tmp_path, config)
    for part in expected:
        assert part in message


@pytest.mark.parametrize("name, why", [
    ("tiny_top\n", "is not a letter or '_' followed"),        # `$` would match before the newline
    ("tiny top", "is not a letter or '_' followed"), ("", "is not a letter or '_' followed"), ("tóp", "is not a letter or '_' followed"),
    ("top\x00", "is not a letter or '_' followed"), (7, "is not a letter or '_' followed"), ("int", "is a C++ keyword"),
    ("namespace", "is a C++ keyword"), ("co_await", "is a C++ keyword"), ("main", "is a reserved name"),
    ("__top", "is a reserved name"), ("_Top", "is a reserved name"), ("hls_top", "is a reserved name"),
    ("t" * 65, "is 65 characters long")])
def test_project_names_that_are_not_usable_identifiers(tmp_path, name, why):
    message = load_error(tmp_path, changed(BASE, "project.name", name))
    assert message.startswith(f"project.name: {name!r} is not a usable C/Tcl identifier: it {why}"
                              if isinstance(name, str) else f"project.name: {name} is not a usable")
    assert "at most 64 characters; not a C++ keyword, not main" in message


@pytest.mark.parametrize("name", ["t" * 64, "_top", "top_1", "T", "main_top", "integer", "Int"])
def test_project_names_at_the_edges_of_the_rules_are_accepted(tmp_path, name):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(changed(BASE, "project.name", name)))
    assert spec.load(path).project.name == name


def test_simd_that_does_not_divide_hidden(tmp_path):
    config = changed(changed(BASE, "model.hidden", 1000), "model.intermediate_size", 1024)
    message = load_error(tmp_path, changed(config, "hardware.parallelism.simd", 48))
    assert message.startswith("hardware.parallelism.simd: 48 does not divide model.hidden 1000 (allowed: ")
    assert message.endswith(": 1, 2, 4, 8)")


@pytest.mark.parametrize("key, value, expected", [
    ("quantiser_simd", 3, "hardware.parallelism.quantiser_simd: 3 does not divide simd 8 (allowed: 1, 2, 4, 8)"),
    ("quantiser_simd", 16, "hardware.parallelism.quantiser_simd: 16 does not divide simd 8 (allowed: 1, 2, 4, 8)"),
    ("quantiser_simd", 0, "hardware.parallelism.quantiser_simd: 0 is out of range (allowed: integers >= 1)"),
    ("lm_head_quantiser_simd", 2, "hardware.parallelism.lm_head_quantiser_simd: 2 does not divide lm_head_simd 1 "
                                  "(allowed: 1)"),
    ("quantiser_simd", "four", "hardware.parallelism.quantiser_simd: 'four' is not an integer"),
])
def test_quantiser_simd_must_divide_its_simd(tmp_path, key, value, expected):
    assert load_error(tmp_path, changed(BASE, f"hardware.parallelism.{key}", value)) == expected


def test_quantiser_simd_defaults_to_simd_and_reaches_the_plan(tmp_path):
    p = spec.load(write_yaml(tmp_path, BASE)).hardware.parallelism
    assert p.quantiser_simd is None and p.lm_head_quantiser_simd is None
    assert {b.qsimd for b in planner.plan(spec.load(write_yaml(tmp_path, BASE))).bitlinears} == {8, 1}
    narrow = changed(changed(BASE, "hardware.parallelism.quantiser_simd", 2), "hardware.parallelism.lm_head_simd", 4)
    narrow = changed(narrow, "hardware.parallelism.lm_head_quantiser_simd", 1)
    plan = planner.plan(spec.load(write_yaml(tmp_path, narrow)))
    assert {b.kind: (b.simd, b.qsimd) for b in plan.bitlinears} == {
        **{k: (8, 2) for k in ("i", "f", "g", "o", "gate", "down")}, "lm_head": (4, 1)}


def test_lanes_must_be_a_power_of_two(tmp_path):
    config = changed(changed(BASE, "model.hidden", 96), "model.intermediate_size", 192)
    config = changed(changed(config, "model.vocab", 96), "hardware.parallelism", {"pe": 3, "simd": 1})
    message = load_error(tmp_path, config)
    assert message.startswith("hardware.parallelism.pe: pe*simd = 3 is not a power of two")


def test_missing_file(tmp_path):
    with pytest.raises(HlsgenError, match=r"nope\.yaml: no such file"):
        spec.load(tmp_path / "nope.yaml")


def test_bad_yaml_names_line_and_column(tmp_path):
    message = load_error(tmp_path, "model:\n  vocab: [1, 2\nweights: {}\n")
    assert "config.yaml: not valid YAML at line" in message and "column" in message


@pytest.mark.parametrize("text, shown", [("- 1\n- 2\n", "list [1, 2]"), ("hello\n", "str 'hello'")])
def test_top_level_must_be_a_mapping(tmp_path, text, shown):
    message = load_error(tmp_path, text)
    assert f"config.yaml: the top level is {shown}" in message


def test_empty_file_reports_every_missing_value(tmp_path):
    with pytest.raises(HlsgenError) as info:
        spec.load(write_yaml(tmp_path, ""))
    assert str(info.value).splitlines() == [
        "model.vocab: missing (allowed: an integer >= 1)", "model.hidden: missing (allowed: an integer >= 1)",
        "model.layers: missing (allowed: an integer >= 1)",
        "weights: give exactly one of 'path' (HF directory, .safetensors or .npz) or 'random: {seed: N}'"]


# ----------------------------------------------------------------------------- HF inputs
def test_model_from_hf_config_json(tmp_path):
    write_hf_config(tmp_path / "ckpt", vocab_size=512, hidden_size=128)
    s = spec.load(write_yaml(tmp_path, changed(BASE, "model", "ckpt/config.json")))
    assert (s.model.vocab, s.model.hidden, s.model.layers, s.model.intermediate_size) == (512, 128, 2, None)
    assert s.model.intermediate == 512      # 256 * ceil(int(128 * 4 * 2/3) / 256) = 256 * ceil(341 / 256)


@pytest.mark.parametrize("overrides, expected", [
    ({"model_type": "llama"}, "has model_type 'llama' (allowed: 'hgrn_bit')"),
    ({"use_short_conv": True}, "sets use_short_conv: true"),
    ({"tie_word_embeddings": True}, "sets tie_word_embeddings: true"),
    ({"hidden_size": 0}, "model (config.json).hidden: 0 is out of range"),
    ({"num_heads": 5}, "model (config.json).heads: 5 does not divide"),
])
def test_bad_hf_config(tmp_path, overrides, expected):
    write_hf_config(tmp_path / "ckpt", **overrides)
    assert expected in load_error(tmp_path, changed(BASE, "model", "ckpt/config.json"))


def test_hf_config_missing_or_not_json(tmp_path):
    assert "does not exist" in load_error(tmp_path, changed(BASE, "model", "nowhere/config.json"))
    (tmp_path / "broken.json").write_text("{not json")
    assert "is not readable JSON" in load_error(tmp_path, changed(BASE, "model", "broken.json"))


def test_hf_directory_as_source(tmp_path):
    directory = tmp_path / "MMfreeLM-tiny"
    write_hf_config(directory)
    s = spec.load(directory)
    assert (s.model.vocab, s.model.hidden, s.model.layers) == (256, 64, 2)
    assert s.weights.path == directory.resolve() and s.weights.seed is None
    assert s.source == directory


def test_directory_without_config_json(tmp_path):
    with pytest.raises(HlsgenError, match="directory has no config.json"):
        spec.load(tmp_path)


def test_hf_directory_with_wrong_model_type(tmp_path):
    write_hf_config(tmp_path / "m", model_type="bitnet")
    with pytest.raises(HlsgenError, match="has model_type 'bitnet'"):
        spec.load(tmp_path / "m")


# ----------------------------------------------------------------------------- the CLI on bad input
def test_cli_validate_bad_config_exits_2_with_one_line(tmp_path):
    write_yaml(tmp_path, changed(BASE, "hardware.board", "u281"), "bad.yaml")
    before = sorted(tmp_path.rglob("*"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "hlsgen.cli", "validate", "bad.yaml"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: hardware.board: 'u281' is not a known board")
    assert "Traceback" not in run.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_cli_validate_prints_a_summary(capsys):
    assert main(["validate", str(REPO / "examples" / "tiny.yaml")]) == 0
    out = capsys.readouterr().out
    for part in ("V=256 H=64 D=64 I=128 L=2", "parameters   116,224", "random, seed 0",
                 "u280", "weights onchip", "pe=4 simd=8", "tiny_top"):
        assert part in out


def test_cli_validate_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "missing.yaml: no such file" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, example", [
    (["--help"], "hlsgen validate examples/tiny.yaml"),
    (["validate", "--help"], "hlsgen validate examples/tiny.yaml"),
    (["golden", "--help"], "hlsgen golden examples/tiny.yaml --ids 1,2,3"),
])
def test_every_help_shows_an_example(argv, example, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert example in capsys.readouterr().out


def test_readme_config_block_is_valid_and_shows_the_defaults(tmp_path):
    readme = (REPO / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    s = spec.load(write_yaml(tmp_path, block))
    assert s.numerics == spec.NumericsSpec()
    assert s.model == spec.load(REPO / "examples" / "tiny.yaml").model
    assert (s.hardware.parallelism.lm_head_pe, s.hardware.parallelism.lm_head_simd) == (1, 1)


def test_formats_whose_products_overflow_64_bits_are_refused(tmp_path):
    # state 40 bits x sigmoid 24+1 bits: forget * state needs 39 + 25 = 64 bits.
    config = changed(changed(BASE, "numerics.state", {"width": 40, "frac": 20}), "numerics.sigmoid_frac", 24)
    message = load_error(tmp_path, config)
    assert message.startswith("numerics: the product forget * state needs 64 bits")
    assert "at most 62" in message


def test_default_formats_fit_64_bit_products():
    from hlsgen.model.numerics import product_bits
    assert max(product_bits(spec.NumericsSpec()).values()) <= 62


def test_pe_must_divide_the_intermediate_size(tmp_path):
    """The layer PE is the GLU's lanes over each half of the fused gate/up output: 8 divides
    2I = 24 but not I = 12."""
    config = changed(BASE, "model.intermediate_size", 12)
    message = load_error(tmp_path, changed(config, "hardware.parallelism", {"pe": 8, "simd": 4}))
    assert message.startswith("hardware.parallelism.pe: 8 does not divide the intermediate size 12 (allowed: ")
    assert message.endswith(": 1, 2, 4)")
