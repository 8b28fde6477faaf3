"""Checkpoint import (safetensors F32/F16/BF16, shards, npz), its errors, and code packing."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hlsgen.model import checkpoint
from hlsgen.model import spec as speclib
from hlsgen.model import weights
from hlsgen.errors import HlsgenError
from hlsgen.model.spec import ModelSpec

MODEL = ModelSpec(vocab=50, hidden=16, layers=2, intermediate_size=32)
PROJ_KEYS = {"i": "attn.i_proj", "f": "attn.f_proj", "g": "attn.g_proj", "o": "attn.o_proj",
             "gate": "mlp.gate_proj", "down": "mlp.down_proj"}


@pytest.fixture
def latent():
    return weights.random_latent(MODEL, seed=7)


def load_from(tmp_path, weights_path, model=MODEL):
    """checkpoint.load through a real YAML config, as the CLI does."""
    config = tmp_path / "hlsgen.yaml"
    config.write_text(
        f"model: {{vocab: {model.vocab}, hidden: {model.hidden}, layers: {model.layers}, "
        f"intermediate_size: {model.intermediate_size}}}\n"
        f"weights: {{path: {json.dumps(str(weights_path))}}}\n"
        "hardware: {board: u280}\n")
    return checkpoint.load(speclib.load(config))


# ----------------------------------------------------------------------------- rounding oracles
def f16_round(x):
    return x.astype(np.float16).astype(np.float32)


def bf16_round(x):
    """Round fp32 to bf16 (8 significant bits, half to even) via frexp, not bit tricks."""
    mantissa, exponent = np.frexp(x.astype(np.float64))
    return np.ldexp(np.rint(mantissa * 256), exponent - 8).astype(np.float32)


ROUND = {"F32": lambda x: x, "F16": f16_round, "BF16": bf16_round}


def assert_imported(w, tensors):
    """Every imported tensor equals what ternarize / lower_bounds give on `tensors`."""
    def check_proj(proj, prefix):
        codes, scale = weights.ternarize(tensors[prefix + ".weight"])
        assert proj.codes.dtype == np.int8
        np.testing.assert_array_equal(proj.codes, codes)
        assert proj.scale == scale
        np.testing.assert_array_equal(proj.norm, tensors[prefix + ".norm.weight"])

    for l, layer in enumerate(w.layers):
        p = f"model.layers.{l}."
        for kind, key in PROJ_KEYS.items():
            check_proj(getattr(layer, kind), p + key)
        for field, key in (("attn_norm", "attn_norm"), ("g_norm", "attn.g_norm"), ("mlp_norm", "mlp_norm")):
            np.testing.assert_array_equal(getattr(layer, field), tensors[p + key + ".weight"])
    check_proj(w.lm_head, "lm_head")
    np.testing.assert_array_equal(w.embeddings, tensors["model.embeddings.weight"])
    np.testing.assert_array_equal(w.final_norm, tensors["model.norm.weight"])
    np.testing.assert_array_equal(w.lower_bounds, weights.lower_bounds(tensors["model.lower_bounds"]))
    assert w.embeddings.dtype == np.float32


# ----------------------------------------------------------------------------- import
@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_hf_directory_imports_exactly(tmp_path, latent, dtype, shards):
    directory = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent, dtype=dtype, shards=shards)
    if shards > 1:
        assert not (directory / "model.safetensors").exists()
        assert len(set(json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"].values())) == 3
    rounded = {k: ROUND[dtype](v) for k, v in latent.items()}
    if dtype != "F32":   # the rounding must matter, or this test would not test it
        assert not np.array_equal(rounded["model.embeddings.weight"], latent["model.embeddings.weight"])
    assert_imported(load_from(tmp_path, directory), rounded)


def test_single_safetensors_file(tmp_path, latent):
    directory = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent, dtype="BF16")
    assert_imported(load_from(tmp_path, directory / "model.safetensors"), {k: bf16_round(v) for k, v in latent.items()})


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_npz(tmp_path, latent, dtype):
    tensors = {k: v.astype(dtype) for k, v in latent.items()}
    np.savez(tmp_path / "ckpt.npz", **tensors)
    assert_imported(load_from(tmp_path, tmp_path / "ckpt.npz"), {k: v.astype(np.float32) for k, v in tensors.items()})


def test_written_files_are_standard(tmp_path, latent):
    """The official safetensors reader and hlsgen's spec reader accept what save_hf writes."""
    import safetensors.numpy
    directory = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent, dtype="F16")
    back = safetensors.numpy.load_file(directory / "model.safetensors")
    assert back.keys() == latent.keys()
    np.testing.assert_array_equal(back["lm_head.weight"], latent["lm_head.weight"].astype(np.float16))
    assert speclib.load(directory).model == MODEL


def test_random_weights_need_no_checkpoint(tmp_path):
    config = tmp_path / "hlsgen.yaml"
    config.write_text("model: {vocab: 50, hidden: 16, layers: 2, intermediate_size: 32}\n"
                      "weights: {random: {seed: 3}}\n")
    w = checkpoint.load(speclib.load(config))
    assert_imported(w, weights.random_latent(MODEL, 3))


def test_lower_bounds_optional_without_use_lower_bound(tmp_path, latent):
    model = ModelSpec(vocab=50, hidden=16, layers=2, intermediate_size=32, use_lower_bound=False)
    del latent["model.lower_bounds"]
    directory = checkpoint.save_hf(tmp_path / "ckpt", model, latent)
    w = checkpoint.load(speclib.load(directory))
    assert not w.lower_bounds.any()


def test_bf16_rounding_matches_oracle():
    rng = np.random.default_rng(0)
    bits = rng.integers(0x00800000, 0x7F000000, 20000, dtype=np.uint32)    # normal numbers
    bits[::4] = (bits[::4] & 0xFFFF0000) | 0x8000                            # exact ties
    bits[1::4] |= 0x80000000                                                 # negatives
    x = bits.view(np.float32)
    got = (checkpoint.bf16_bits(x).astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(got, bf16_round(x))
    assert np.isnan((checkpoint.bf16_bits(np.float32([np.nan])).astype(np.uint32) << 16).view(np.float32)).all()


# ----------------------------------------------------------------------------- import errors
def expect_error(tmp_path, source, *fragments):
    with pytest.raises(HlsgenError) as info:
        load_from(tmp_path, source)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert str(fragment) in message, message
    return message


@pytest.mark.parametrize("shards", [1, 3])
def test_missing_key(tmp_path, latent, shards):
    del latent["lm_head.weight"]
    directory = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent, shards=shards)
    where = directory / ("model.safetensors" if shards == 1 else "model.safetensors.index.json")
    expect_error(tmp_path, directory, "checkpoint key lm_head.weight: missing", where)


def test_missing_key_npz(tmp_path, latent):
    del latent["model.norm.weight"]
    np.savez(tmp_path / "ckpt.npz", **latent)
    expect_error(tmp_path, tmp_path / "ckpt.npz", "checkpoint key model.norm.weight: missing", tmp_path / "ckpt.npz")


def test_missing_shard(tmp_path, latent):
    directory = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent, shards=3)
    (directory / "model-00002-of-00003.safetensors").unlink()
    expect_error(tmp_path, directory, "model-00002-of-00003.safetensors does not exist", "checkpoint key")


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_wrong_shape(tmp_path, latent, fmt):
    key = "model.layers.0.attn.i_proj.weight"
    latent[key] = latent[key][:, :8]
    if fmt == "npz":
        source = tmp_path / "ckpt.npz"
        np.savez(source, **latent)
    else:
        source = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent) / "model.safetensors"
    expect_error(tmp_path, source, f"checkpoint key {key}: shape [16, 8] (expected [16, 16])", source)


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("bad", [[np.nan] * 3, [np.inf, -np.inf, np.nan]])
def test_non_finite_values(tmp_path, latent, dtype, bad):
    key = "model.layers.1.mlp.down_proj.weight"
    latent[key][0, :3] = bad
    directory = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent, dtype=dtype)
    expect_error(tmp_path, directory, f"checkpoint key {key}: contains 3 NaN/Inf values", directory / "model.safetensors")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth", "last.ckpt", "w.pkl"])
def test_pickled_file_rejected(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x04not really a pickle")
    expect_error(tmp_path, path, "never loads pickles", "safetensors", path)


def test_directory_with_only_pytorch_bin_rejected(tmp_path, latent):
    directory = tmp_path / "ckpt"
    directory.mkdir()
    checkpoint.write_config(directory, MODEL)
    (directory / "pytorch_model.bin").write_bytes(b"\x80\x04")
    expect_error(tmp_path, directory, "never loads pickles", directory / "pytorch_model.bin")


def test_missing_paths(tmp_path):
    expect_error(tmp_path, tmp_path / "nowhere", "does not exist", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    expect_error(tmp_path, tmp_path / "empty", "has neither model.safetensors nor", tmp_path / "empty")
    (tmp_path / "w.txt").write_text("hi")
    expect_error(tmp_path, tmp_path / "w.txt", "unknown format", tmp_path / "w.txt")


def raw_safetensors(path, header, data=b""):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def lm_head_entry(**override):
    entry = {"dtype": "F32", "shape": [50, 16], "data_offsets": [0, 50 * 16 * 4]}
    return {"lm_head.weight": {**entry, **override}}


@pytest.mark.parametrize("header, data, fragment", [
    (lm_head_entry(data_offsets=[0, 50 * 16 * 4]), b"\0" * 100, "data_offsets [0, 3200] are not [begin, end] within"),
    (lm_head_entry(data_offsets=[0, 16]), b"\0" * 3200, "span 16 bytes, but F32 [50, 16] needs 3200"),
    (lm_head_entry(dtype="F17"), b"\0" * 3200, "unknown dtype 'F17'"),
    (lm_head_entry(shape=[50, -16]), b"\0" * 3200, "is not a list of non-negative integers"),
    ({"lm_head.weight": [1, 2]}, b"", "entry is not an object"),
])
def test_corrupt_header_entries(tmp_path, header, data, fragment):
    path = raw_safetensors(tmp_path / "bad.safetensors", {"__metadata__": {"format": "pt"}, **header}, data)
    expect_error(tmp_path, path, "checkpoint key lm_head.weight: corrupt safetensors header", fragment, path)


def test_corrupt_header_framing(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x05\0\0")
    expect_error(tmp_path, path, "shorter than the 8-byte header length", path)
    path.write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    expect_error(tmp_path, path, "header length 1099511627776 exceeds the file size", path)
    path.write_bytes((4).to_bytes(8, "little") + b"{oops")
    expect_error(tmp_path, path, "not valid JSON", path)
    path.write_bytes((2).to_bytes(8, "little") + b"[]")
    expect_error(tmp_path, path, "expected a JSON object", path)


def test_unsupported_dtype(tmp_path, latent):
    path = checkpoint.save_hf(tmp_path / "ckpt", MODEL, latent) / "model.safetensors"
    # Relabel one F32 entry as I32 (same byte length): a valid file that hlsgen cannot import.
    blob = path.read_bytes()
    length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + length])
    header["model.norm.weight"]["dtype"] = "I32"
    raw_safetensors(path, header, blob[8 + length:])
    expect_error(tmp_path, path, "checkpoint key model.norm.weight: dtype I32 (allowed: BF16, F16, F32", path)


def test_npz_non_float_rejected(tmp_path, latent):
    latent["model.norm.weight"] = np.arange(16)
    latent["lm_head.norm.weight"] = np.array([object()] * 16)
    np.savez(tmp_path / "ckpt.npz", **latent)
    expect_error(tmp_path, tmp_path / "ckpt.npz", "checkpoint key model.norm.weight: dtype numpy int64")
    latent["model.norm.weight"] = np.ones(16, np.float32)
    np.savez(tmp_path / "ckpt.npz", **latent)
    expect_error(tmp_path, tmp_path / "ckpt.npz", "checkpoint key lm_head.norm.weight: dtype numpy object")


# ----------------------------------------------------------------------------- packing
ternary = st.lists(st.sampled_from([-1, 0, 1]), min_size=0, max_size=300).map(lambda v: np.array(v, np.int8))


@settings(max_examples=200)
@given(ternary)
def test_2bit_round_trip(codes):
    packed = checkpoint.pack_2bit(codes)
    assert packed.dtype == np.uint8 and packed.size == math.ceil(codes.size / 4)
    np.testing.assert_array_equal(checkpoint.unpack_2bit(packed, codes.size), codes)
    if codes.size % 4:      # the tail is padded with code 0
        assert packed[-1] >> (2 * (codes.size % 4)) == 0


@settings(max_examples=200)
@given(ternary)
def test_5trit_round_trip(codes):
    packed = checkpoint.pack_5trit(codes)
    assert packed.dtype == np.uint8 and packed.size == math.ceil(codes.size / 5)
    assert packed.size == 0 or packed.max() <= 242
    np.testing.assert_array_equal(checkpoint.unpack_5trit(packed, codes.size), codes)
    if codes.size % 5:      # the tail is padded with code 0, i.e. trit 1
        assert packed[-1] // 3 ** (codes.size % 5) == sum(3 ** k for k in range(5 - codes.size % 5))


def test_known_answers():
    assert checkpoint.pack_2bit(np.int8([1, -1, 0, 1])).tolist() == [0b01_00_11_01]
    assert checkpoint.pack_2bit(np.int8([-1])).tolist() == [0b11]
    assert checkpoint.pack_2bit(np.int8([0, 0, 0, 0, 1])).tolist() == [0, 1]
    assert checkpoint.pack_5trit(np.int8([1, -1, 0, 1, 0])).tolist() == [2 + 0 * 3 + 1 * 9 + 2 * 27 + 1 * 81]
    assert checkpoint.pack_5trit(np.int8([-1])).tolist() == [0 + 3 + 9 + 27 + 81]
    assert checkpoint.pack_5trit(np.int8([1] * 5 + [-1] * 5)).tolist() == [242, 0]


def test_2bit_word_layout():
    """Consecutive bytes read as one little-endian 512-bit word hold code j at bits 2j, 2j+1."""
    codes = np.random.default_rng(1).integers(-1, 2, 256).astype(np.int8)
    word = int.from_bytes(checkpoint.pack_2bit(codes).tobytes(), "little")
    fields = [(word >> (2 * j)) & 3 for j in range(256)]
    assert fields == [{0: 0, 1: 1, -1: 3}[int(c)] for c in codes]


def test_packing_flattens_in_c_order():
    codes = np.int8([[1, 0, -1, 1, 1], [0, -1, -1, 0, 1]])
    for pack, unpack in ((checkpoint.pack_2bit, checkpoint.unpack_2bit),
                         (checkpoint.pack_5trit, checkpoint.unpack_5trit)):
        np.testing.assert_array_equal(unpack(pack(codes), 10), codes.ravel())
        np.testing.assert_array_equal(unpack(pack(codes.T), 10), codes.T.ravel())
        np.testing.assert_array_equal(pack(codes.astype(np.int64)), pack(codes))


@pytest.mark.parametrize("pack", [checkpoint.pack_2bit, checkpoint.pack_5trit])
@pytest.mark.parametrize("bad, fragment", [([0, 2], "element 1 is 2"), ([-2], "element 0 is -2"),
                                           (np.float32([1, 0]), "dtype float32")])
def test_pack_rejects_non_ternary(pack, bad, fragment):
    with pytest.raises(HlsgenError, match=fragment):
        pack(np.asarray(bad))


def test_unpack_rejects_invalid_patterns():
    packed = np.uint8([0b01_01_01_01, 0b00_10_00_00])      # code 6 is the unused pattern 0b10
    assert checkpoint.unpack_2bit(packed, 6).tolist() == [1, 1, 1, 1, 0, 0]
    with pytest.raises(HlsgenError, match="code 6 in byte 1.*0b10 is unused"):
        checkpoint.unpack_2bit(packed, 7)
    with pytest.raises(HlsgenError, match=r"code 5 in byte 1 \(0xf3\).*bytes 0 to 242"):
        checkpoint.unpack_5trit(np.uint8([242, 243]), 6)
    with pytest.raises(HlsgenError, match="cannot hold 9 codes"):
        checkpoint.unpack_2bit(np.uint8([0, 0]), 9)
    with pytest.raises(HlsgenError, match="1-D uint8"):
        checkpoint.unpack_5trit(np.int8([0]), 1)


def test_save_hf_rejects_bad_arguments(tmp_path, latent):
    with pytest.raises(HlsgenError, match="'F64' is not writable"):
        checkpoint.save_hf(tmp_path / "a", MODEL, latent, dtype="F64")
    with pytest.raises(HlsgenError, match="shards: 0 is out of range"):
        checkpoint.save_hf(tmp_path / "b", MODEL, latent, shards=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
