"""The shipped trained example (examples/tiny_lm): it loads, it generates the same text through the
golden fixed model and the C-simulated accelerator, and the fixed datapath costs little quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import needs_tool
from hlsgen.model import checkpoint
from hlsgen.model import golden
from hlsgen.model import quality
from hlsgen.tools import generate as gen
from hlsgen.model import spec as spec_mod
from hlsgen.cli import main
from hlsgen.errors import HlsgenError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIG = EXAMPLES / "tiny_lm.yaml"
PROMPT = "def "


@pytest.fixture(scope="module")
def spec():
    return spec_mod.load(CONFIG)


@pytest.fixture(scope="module")
def tiny_weights(spec):
    return checkpoint.load(spec)


def test_the_example_loads_as_a_small_byte_level_checkpoint(spec, tiny_weights):
    directory = spec.weights.path
    assert json.loads((directory / "config.json").read_text())["model_type"] == "hgrn_bit"
    assert spec.model.vocab == gen.BYTE_VOCAB
    assert (directory / "model.safetensors").stat().st_size <= 5 << 20
    assert len(tiny_weights.layers) == spec.model.layers
    split = json.loads((directory / "split.json").read_text())
    assert split["held_out"] and not set(split["held_out"]) & set(split["train"])


def test_the_example_predicts_held_out_text_far_better_than_chance(spec, tiny_weights):
    split = json.loads((spec.weights.path / "split.json").read_text())
    windows = quality.windows(quality.read_files(split["held_out"]), 65, 2)
    loss = quality.cross_entropy(golden.Model(spec.model, tiny_weights, "float"), windows)
    assert loss < 0.5 * np.log(spec.model.vocab)          # chance is ln 256 nats per byte


def test_fixed_point_perplexity_is_within_one_percent_of_float(spec, tiny_weights):
    split = json.loads((spec.weights.path / "split.json").read_text())
    windows = quality.windows(quality.read_files(split["held_out"]), 65, 4)      # 256 positions
    c = quality.compare(golden.Model(spec.model, tiny_weights, "float"),
                        golden.Model(spec.model, tiny_weights, "fixed", spec.numerics), windows)
    assert c.positions == 256
    assert c.ppl_fixed <= 1.01 * c.ppl_float, c
    assert c.saturations == {}


def _generated(capsys, *args, config=CONFIG) -> str:
    code = main(["generate", str(config), "--prompt", PROMPT, "--max-new-tokens", "12", *map(str, args)])
    out = capsys.readouterr().out
    assert code == 0
    return out


def with_batch(tmp_path, batch: int) -> Path:
    """The example with hardware.batch set, its paths made absolute."""
    config = yaml.safe_load(CONFIG.read_text())
    config["model"] = str(EXAMPLES / config["model"])
    config["weights"]["path"] = str(EXAMPLES / config["weights"]["path"])
    config["hardware"]["batch"] = batch
    path = tmp_path / f"tiny_lm_batch{batch}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# batch 3: the 4-byte prompt is prefilled as a block of 3 and a block of 1.
@needs_tool("g++")
@pytest.mark.parametrize("batch", [1, 3])
def test_csim_generates_the_golden_fixed_text(capsys, tmp_path, monkeypatch, batch):
    monkeypatch.setenv("HLSGEN_CACHE", str(tmp_path / "cache"))
    config = CONFIG if batch == 1 else with_batch(tmp_path, batch)
    for sampling in ((), ("--temperature", 0.8, "--seed", 3)):
        golden_text = _generated(capsys, "--numerics", "fixed", *sampling)
        csim_text = _generated(capsys, "--backend", "csim", "-o", tmp_path / "top", *sampling, config=config)
        assert csim_text == golden_text
        assert golden_text.startswith(PROMPT) and len(golden_text.encode()) > len(PROMPT) + 1


def test_sampling_is_reproducible_and_greedy_by_default(capsys):
    sampled = [_generated(capsys, "--temperature", 1.0, "--seed", seed) for seed in (1, 1, 2)]
    assert sampled[0] == sampled[1] != sampled[2]
    assert _generated(capsys) == _generated(capsys, "--temperature", 0)


def test_generate_rejects_float_csim_other_vocabularies_and_bad_temperatures(capsys):
    assert main(["generate", str(CONFIG), "--prompt", "x", "--backend", "csim", "--numerics", "float"]) == 2
    assert "--numerics: float is not available with --backend csim" in capsys.readouterr().err
    with pytest.raises(HlsgenError, match="not a byte-level vocabulary"):
        gen.encode("x", 32000)
    with pytest.raises(HlsgenError, match="empty"):
        gen.encode("", 256)
    with pytest.raises(HlsgenError, match="--temperature"):
        gen.Sampler(-1.0)
