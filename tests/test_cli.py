"""`hlsgen golden` end to end (the `validate` command is tested with the spec, in test_spec.py)."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from hlsgen.model import checkpoint
from hlsgen.model import golden
from hlsgen.model import spec
from hlsgen.model import weights
from hlsgen.cli import main, parse_ids, top_k
from hlsgen.errors import HlsgenError

REPO = Path(__file__).resolve().parent.parent
TINY_YAML = REPO / "examples" / "tiny.yaml"


def run_ok(argv, capsys) -> str:
    assert main([str(a) for a in argv]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def run_error(argv, capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def reference_logits(source, ids, mode="float") -> np.ndarray:
    s = spec.load(source)
    model = golden.Model(s.model, checkpoint.load(s), mode, s.numerics)
    return model.to_float(model.prefill(ids)[0]).astype(np.float32)


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_golden_prints_top_tokens_per_position(mode, capsys):
    out = run_ok(["golden", TINY_YAML, "--ids", "1,2,3", "--numerics", mode, "--top", "3"], capsys)
    logits = reference_logits(TINY_YAML, [1, 2, 3], mode)
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    assert len(rows) == 3
    for pos, (row, expected) in enumerate(zip(rows, top_k(logits, 3))):
        assert row[:2] == [str(pos), str([1, 2, 3][pos])]
        assert [int(item.split(":")[0]) for item in row[2:]] == expected.tolist()
    assert ("saturations: none" in out) == (mode == "fixed")


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_golden_save_writes_float32_logits(tmp_path, mode, capsys):
    ids = [5, 0, 255, 17]
    for flag, name in (([], "prefill.npy"), (["--decode"], "decode.npy")):
        run_ok(["golden", TINY_YAML, "--ids", "5, 0,255,17", "--numerics", mode, "--save", tmp_path / name,
                *flag], capsys)
    prefill, decode = np.load(tmp_path / "prefill.npy"), np.load(tmp_path / "decode.npy")
    assert prefill.dtype == np.float32 and prefill.shape == (4, 256)
    assert np.array_equal(prefill, decode)
    assert np.array_equal(prefill, reference_logits(TINY_YAML, ids, mode))


def test_golden_reports_saturations(tmp_path, capsys):
    config = yaml.safe_load(TINY_YAML.read_text())
    config["numerics"] = {"act": {"width": 10, "frac": 7}}
    path = tmp_path / "narrow.yaml"
    path.write_text(yaml.safe_dump(config))
    out = run_ok(["golden", path, "--ids", "1,2,3,4,5,6,7,8", "--numerics", "fixed"], capsys)
    line = next(line for line in out.splitlines() if line.startswith("saturations: "))
    assert line != "saturations: none"
    counts = dict(item.rsplit(" ", 1) for item in line.removeprefix("saturations: ").split(", "))
    assert all(int(n) > 0 for n in counts.values())


def test_golden_on_an_hf_directory_equals_the_yaml_run(tmp_path, capsys):
    s = spec.load(TINY_YAML)
    checkpoint.save_hf(tmp_path / "hf", s.model, weights.random_latent(s.model, s.weights.seed))
    run_ok(["golden", tmp_path / "hf", "--ids", "1,2,3", "--save", tmp_path / "hf.npy"], capsys)
    run_ok(["golden", TINY_YAML, "--ids", "1,2,3", "--save", tmp_path / "yaml.npy"], capsys)
    assert np.array_equal(np.load(tmp_path / "hf.npy"), np.load(tmp_path / "yaml.npy"))


@pytest.mark.parametrize("ids, expected", [
    ("1,x,3", "--ids: 'x' is not an integer"),
    ("1,256", "--ids: 256 is out of range (allowed: comma-separated integers in [0, 256))"),
    ("-1", "--ids: -1 is out of range"),
    ("1,,2", "--ids: '' is not an integer"),
    (" , ", "--ids: ' , ' holds no token ids"),
    ("1.5", "--ids: '1.5' is not an integer"),
])
def test_golden_rejects_bad_ids_and_writes_nothing(tmp_path, ids, expected, capsys):
    line = run_error(["golden", TINY_YAML, "--ids", ids, "--save", tmp_path / "out.npy"], capsys)
    assert expected in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, expected", [
    (["--top", "0"], "--top: 0 is out of range (allowed: 1 to model.vocab 256)"),
    (["--top", "257"], "--top: 257 is out of range"),
    (["--save", "/nonexistent-dir/out.npy"], "--save: directory /nonexistent-dir does not exist"),
])
def test_golden_rejects_bad_options(argv, expected, capsys):
    assert expected in run_error(["golden", TINY_YAML, "--ids", "1", *argv], capsys)


def test_golden_on_a_missing_checkpoint(tmp_path, capsys):
    config = yaml.safe_load(TINY_YAML.read_text())
    config["weights"] = {"path": "missing.safetensors"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert "missing.safetensors does not exist" in run_error(["golden", path, "--ids", "1"], capsys)


def test_parse_ids():
    assert parse_ids("1,2, 3", vocab=4) == [1, 2, 3]
    assert parse_ids("0", vocab=1) == [0]
    with pytest.raises(HlsgenError, match="--ids"):
        parse_ids("4", vocab=4)


def test_top_k_orders_by_logit_then_index():
    logits = np.array([[0.5, 2.0, 2.0, -1.0]], np.float32)
    assert top_k(logits, 3).tolist() == [[1, 2, 0]]
