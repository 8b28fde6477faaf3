"""Checkpoint import and export, and the packed formats of ternary codes.

Import reads Hugging Face style checkpoints (MODEL_SPEC.md, 'Checkpoint format'): an HF
directory with model.safetensors or shards plus model.safetensors.index.json, a single
.safetensors file, or an .npz file. Safetensors are parsed here rather than with the
`safetensors` package because numpy has no bfloat16. Each tensor is memory-mapped on its own
and converted to fp32 when it is needed, so an import holds one latent tensor at a time and
never the whole checkpoint. Pickled formats are refused: unpickling runs arbitrary code.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hlsgen.model import weights
from hlsgen.errors import HlsgenError, did_you_mean
from hlsgen.model.spec import ModelSpec

# safetensors dtype name -> little-endian storage dtype; bf16 is stored as its raw 16 bits.
STORAGE = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F64": np.dtype("<f8")}
READABLE = ("BF16", "F16", "F32", "F64")
WRITABLE = ("BF16", "F16", "F32")
# Item sizes of every safetensors dtype, so headers of files with other tensors still validate.
ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
            "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8, "C64": 8}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
ALLOWED_SOURCES = ("an HF directory with model.safetensors or model.safetensors.index.json, "
                   "a .safetensors file, or an .npz file")
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
MAX_HEADER = 100 << 20    # the safetensors package's own limit


def _key_error(key: str, file, what: str, hint: str = "") -> HlsgenError:
    return HlsgenError(f"checkpoint key {key}: {what} in {file}{hint}")


def _dims(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


# ----------------------------------------------------------------------------- import
def digest(spec) -> str | None:
    """sha256 over the checkpoint files the model's tensors come from (names and bytes, in name
    order); None for random weights.  A project's hlsgen_config.yaml names its weights by it."""
    if spec.weights.seed is not None:
        return None
    source = open_checkpoint(spec.weights.path)
    files = {source.file_of(key) for key in weights.expected_shapes(spec.model)}
    files |= {source.index} if hasattr(source, "index") else set()
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def load(spec) -> weights.Weights:
    """The model's Weights from spec.weights: random (seeded) or read from a checkpoint (checked
    against weights.sha256 when the config names a digest)."""
    if spec.weights.seed is not None:
        return weights.random_weights(spec.model, spec.weights.seed)
    try:
        return _load(spec)
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:   # a file damaged past its header
        raise HlsgenError(f"weights.path: {spec.weights.path} cannot be read ({exc}) (allowed: an intact "
                          f"checkpoint; download or export it again)") from None


def _load(spec) -> weights.Weights:
    if spec.weights.sha256 is not None and (found := digest(spec)) != spec.weights.sha256:
        raise HlsgenError(f"weights.sha256: the checkpoint at {spec.weights.path} has digest {found}, not "
                          f"{spec.weights.sha256} (allowed: the weights the project was built from; rebuild it "
                          f"with `hlsgen build` to use these)")
    source = open_checkpoint(spec.weights.path)
    shapes = weights.expected_shapes(spec.model)
    # Every key, shape and dtype is checked before the (slow) import starts.
    for key, shape in shapes.items():
        _check_entry(source, key, shape)

    def get(key):
        tensor = source.read(key)
        bad = tensor.size - np.count_nonzero(np.isfinite(tensor))
        if bad:
            raise _key_error(key, source.file_of(key), f"contains {bad} NaN/Inf values (allowed: finite numbers)")
        return tensor

    return weights.from_tensors(spec.model, get)


@dataclass(frozen=True)
class Entry:
    """Where one tensor lives and what it holds."""
    file: Path
    dtype: str                  # safetensors dtype name
    shape: tuple[int, ...]
    offset: int = 0             # absolute byte offset in the file (safetensors only)


def _check_entry(source, key: str, expected: tuple[int, ...]) -> None:
    entry = source.entry(key)
    if entry.shape != tuple(expected):
        raise _key_error(key, entry.file, f"shape {_dims(entry.shape)} (expected {_dims(expected)})")
    if entry.dtype not in READABLE:
        raise _key_error(key, entry.file, f"dtype {entry.dtype} (allowed: {', '.join(READABLE)})")


def open_checkpoint(path: Path):
    """A tensor source for any accepted checkpoint path; pickles and unknown files are refused.

    A source has entry(key) -> Entry (raising if the key is missing), file_of(key), and
    read(key) -> a new fp32 array, which assumes the entry's dtype is one of READABLE.
    """
    path = Path(path)
    if not path.exists():
        raise HlsgenError(f"weights.path: {path} does not exist (allowed: {ALLOWED_SOURCES})")
    if path.is_dir():
        if (path / SINGLE_FILE).is_file():
            return _SafetensorsFile(path / SINGLE_FILE)
        if (path / INDEX_FILE).is_file():
            return _ShardedSafetensors(path / INDEX_FILE)
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise _pickle_error(path / pickles[0])
        raise HlsgenError(f"weights.path: directory {path} has neither {SINGLE_FILE} nor {INDEX_FILE} "
                          f"(allowed: {ALLOWED_SOURCES})")
    if path.suffix == ".safetensors":
        return _SafetensorsFile(path)
    if path.suffix == ".npz":
        return _NpzFile(path)
    if path.suffix in PICKLE_SUFFIXES:
        raise _pickle_error(path)
    raise HlsgenError(f"weights.path: {path} has an unknown format (allowed: {ALLOWED_SOURCES})")


def _pickle_error(path: Path) -> HlsgenError:
    return HlsgenError(
        f"weights.path: {path} is a pickled PyTorch checkpoint; hlsgen never loads pickles because "
        f"unpickling can run arbitrary code (allowed: {ALLOWED_SOURCES}). Convert it to safetensors in an "
        f"environment you trust, e.g. safetensors.torch.save_file(torch.load(path, weights_only=True), "
        f"'model.safetensors')")


class _SafetensorsFile:
    """One .safetensors file: a validated header, and tensors memory-mapped one at a time."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.entries = _read_header(self.path)
        except OSError as exc:
            raise HlsgenError(f"{self.path}: cannot be read ({exc.strerror})") from None

    def file_of(self, key: str) -> Path:
        return self.path

    def entry(self, key: str) -> Entry:
        if key not in self.entries:
            raise _key_error(key, self.path, "missing", did_you_mean(key, self.entries))
        return self.entries[key]

    def read(self, key: str) -> np.ndarray:
        entry = self.entry(key)
        # A map of this tensor only; it is unmapped when `raw` goes, so resident pages stay bounded.
        raw = np.memmap(self.path, dtype=STORAGE[entry.dtype], mode="r", offset=entry.offset, shape=entry.shape)
        return _to_f32(raw, entry.dtype)


def _to_f32(raw: np.ndarray, dtype: str) -> np.ndarray:
    """A new native fp32 array from stored values (never a view of the file)."""
    if dtype == "BF16":
        bits = raw.astype(np.uint32)
        bits <<= 16           # bf16 is the top half of an fp32
        return bits.view(np.float32)
    return raw.astype(np.float32)


def _read_header(path: Path) -> dict[str, Entry]:
    """Parse and validate a safetensors header: 8-byte LE length, JSON, then the data section."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise HlsgenError(f"{path}: corrupt safetensors file: {size} bytes, shorter than the 8-byte header length")
        length = int.from_bytes(prefix, "little")
        if length > min(size - 8, MAX_HEADER):
            raise HlsgenError(f"{path}: corrupt safetensors header: header length {length} exceeds the file "
                              f"size {size} (or the {MAX_HEADER}-byte limit)")
        text = f.read(length)
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HlsgenError(f"{path}: corrupt safetensors header: not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise HlsgenError(f"{path}: corrupt safetensors header: expected a JSON object of tensors")
    header.pop("__metadata__", None)
    start = 8 + length
    return {key: _header_entry(path, key, info, start, size - start) for key, info in header.items()}


def _header_entry(path: Path, key: str, info, start: int, data_size: int) -> Entry:
    def corrupt(what):
        return _key_error(key, path, f"corrupt safetensors header: {what}")

    if not isinstance(info, dict):
        raise corrupt("entry is not an object with dtype, shape and data_offsets")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in ITEMSIZE:
        raise corrupt(f"unknown dtype {dtype!r} (allowed: {', '.join(ITEMSIZE)})")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise corrupt(f"shape {shape!r} is not a list of non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size):
        raise corrupt(f"data_offsets {offsets!r} are not [begin, end] within the {data_size}-byte data section")
    nbytes = math.prod(shape) * ITEMSIZE[dtype]
    if offsets[1] - offsets[0] != nbytes:
        raise corrupt(f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes, but {dtype} "
                      f"{_dims(shape)} needs {nbytes}")
    return Entry(path, dtype, tuple(shape), start + offsets[0])


class _ShardedSafetensors:
    """Shards listed by model.safetensors.index.json; each shard is opened when first needed."""

    def __init__(self, index: Path):
        self.index = Path(index)
        try:
            data = json.loads(self.index.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HlsgenError(f"{self.index}: not a readable JSON index ({exc})") from None
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise HlsgenError(f"{self.index}: no 'weight_map' object mapping checkpoint keys to shard files")
        self.weight_map = weight_map
        self.shards: dict[str, _SafetensorsFile] = {}

    def file_of(self, key: str) -> Path:
        return self.index.parent / self.weight_map[key]

    def _locate(self, key: str) -> _SafetensorsFile:
        if key not in self.weight_map:
            raise _key_error(key, self.index, "missing", did_you_mean(key, self.weight_map))
        name = self.weight_map[key]
        if name not in self.shards:
            if not self.file_of(key).is_file():
                raise _key_error(key, self.index, f"its shard {name} does not exist")
            self.shards[name] = _SafetensorsFile(self.file_of(key))
        return self.shards[name]

    def entry(self, key: str) -> Entry:
        return self._locate(key).entry(key)

    def read(self, key: str) -> np.ndarray:
        return self._locate(key).read(key)


class _NpzFile:
    """An .npz archive, read lazily one key at a time; object arrays (pickles) are refused."""
    DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64"}

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.archive = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise HlsgenError(f"{self.path}: not a readable .npz archive ({exc})") from None
        if not isinstance(self.archive, np.lib.npyio.NpzFile):
            raise HlsgenError(f"{self.path}: holds a single array, not an .npz archive of named tensors")

    def file_of(self, key: str) -> Path:
        return self.path

    def entry(self, key: str) -> Entry:
        if key not in self.archive.files:
            raise _key_error(key, self.path, "missing", did_you_mean(key, self.archive.files))
        shape, dtype = self._header(key)
        return Entry(self.path, self.DTYPES.get(dtype, f"numpy {dtype}"), tuple(shape))

    def _header(self, key: str):
        """Shape and dtype from the member's .npy header, without reading its data."""
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        with self.archive.zip.open(key + ".npy") as member:
            reader = readers.get(np.lib.format.read_magic(member))
            if reader is not None:
                shape, _, dtype = reader(member)
                return shape, dtype
        return self.archive[key].shape, self.archive[key].dtype    # format 3.0: rare, exotic dtypes

    def read(self, key: str) -> np.ndarray:
        return np.asarray(self.archive[key], dtype=np.float32)


# ----------------------------------------------------------------------------- export
def bf16_bits(x: np.ndarray) -> np.ndarray:
    """fp32 -> bf16 bit patterns (uint16), rounding to nearest, ties to even; NaNs stay NaN."""
    f = np.asarray(x, dtype=np.float32)
    bits = f.view(np.uint32)
    # Adding 0x7FFF plus the lowest kept bit rounds half to even; carries into the exponent are
    # correct (up to infinity). Only NaN patterns could wrap, so they are handled apart.
    rounded = ((bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16).astype(np.uint16)
    nan = np.isnan(f)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
    return rounded


def _stored(tensor: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return bf16_bits(tensor)
    return np.ascontiguousarray(tensor, dtype=STORAGE[dtype])


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], get, dtype: str = "F32") -> int:
    """Write a safetensors file tensor by tensor: the header comes from `shapes`, the data from
    `get(key)`, so only one tensor needs to exist at a time. Returns the data size in bytes."""
    _check_writable(dtype)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for key, shape in shapes.items():
        nbytes = math.prod(shape) * ITEMSIZE[dtype]
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)     # keeps the data section 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for key, shape in shapes.items():
            data = _stored(get(key), dtype)
            if data.shape != tuple(shape):
                raise HlsgenError(f"checkpoint key {key}: got shape {_dims(data.shape)}, header says "
                                  f"{_dims(shape)} while writing {path}")
            f.write(memoryview(data).cast("B"))
    return offset


def _check_writable(dtype: str) -> None:
    if dtype not in WRITABLE:
        raise HlsgenError(f"checkpoint dtype {dtype!r} is not writable (allowed: {', '.join(WRITABLE)})")


def write_config(directory: Path, model: ModelSpec) -> None:
    """config.json of an HF MMfreeLM (hgrn_bit) model directory."""
    config = {"model_type": "hgrn_bit", "vocab_size": model.vocab, "hidden_size": model.hidden,
              "num_hidden_layers": model.layers, "num_heads": model.heads,
              "expand_ratio": model.expand_ratio, "hidden_ratio": model.hidden_ratio,
              "intermediate_size": model.intermediate_size, "rms_norm_eps": model.rms_norm_eps,
              "use_lower_bound": model.use_lower_bound, "use_short_conv": False,
              "tie_word_embeddings": False}
    (Path(directory) / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def save_hf(directory, model_spec: ModelSpec, tensors: dict[str, np.ndarray], dtype: str = "F32",
            shards: int = 1) -> Path:
    """Write an HF model directory: config.json plus model.safetensors, or `shards` shard files
    and model.safetensors.index.json. Returns the directory."""
    directory = Path(directory)
    _check_writable(dtype)
    if not 1 <= shards <= max(len(tensors), 1):
        raise HlsgenError(f"shards: {shards} is out of range (allowed: 1 to the number of tensors, {len(tensors)})")
    directory.mkdir(parents=True, exist_ok=True)
    write_config(directory, model_spec)
    shapes = {key: tuple(np.shape(t)) for key, t in tensors.items()}
    if shards == 1:
        write_safetensors(directory / SINGLE_FILE, shapes, tensors.__getitem__, dtype)
        return directory
    keys, weight_map, total = list(shapes), {}, 0
    bounds = [round(n * len(keys) / shards) for n in range(shards + 1)]
    for n in range(shards):
        name = f"model-{n + 1:05d}-of-{shards:05d}.safetensors"
        part = keys[bounds[n]:bounds[n + 1]]
        total += write_safetensors(directory / name, {k: shapes[k] for k in part}, tensors.__getitem__, dtype)
        weight_map.update(dict.fromkeys(part, name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return directory


# ----------------------------------------------------------------------------- packed codes
# A format stores `per_byte` codes per byte as digits of `base`: byte = sum(digit_k * base**k),
# where digit = the low two bits of (code + zero_digit): two's complement for 2-bit codes
# (-1 -> 0b11), code + 1 for trits.
@dataclass(frozen=True)
class _Format:
    name: str
    per_byte: int
    base: int
    zero_digit: int

    @functools.cached_property
    def table(self) -> np.ndarray:
        """Byte -> its codes, one row of 4 or 8 int8 (padded), viewed as one uint32/uint64 so
        that unpacking is a single 1-D gather. 2 marks a digit (or byte) that is not a code."""
        width = 4 if self.per_byte <= 4 else 8
        code_of_digit = np.full(4, 2, np.int8)
        code_of_digit[(np.arange(-1, 2) + self.zero_digit) & 3] = (-1, 0, 1)
        digits = (np.arange(256)[:, None] // self.base ** np.arange(self.per_byte)) % self.base
        rows = np.zeros((256, width), np.int8)
        rows[:, :self.per_byte] = code_of_digit[digits]
        rows[np.arange(256) >= self.base ** self.per_byte, :self.per_byte] = 2
        return rows.view(f"<u{width}").reshape(256)


TWO_BIT = _Format("2-bit", per_byte=4, base=4, zero_digit=0)
FIVE_TRIT = _Format("5-trit", per_byte=5, base=3, zero_digit=1)


def _codes(codes) -> np.ndarray:
    """Flat int8 view (C order) of ternary codes, checked to lie in {-1, 0, 1}."""
    flat = np.asarray(codes).reshape(-1)
    if flat.dtype.kind not in "iu":
        raise HlsgenError(f"ternary codes: dtype {flat.dtype} (allowed: integer arrays with values -1, 0, 1)")
    if flat.size and (flat.min() < -1 or flat.max() > 1):
        k = int(np.flatnonzero((flat < -1) | (flat > 1))[0])
        raise HlsgenError(f"ternary codes: element {k} is {flat[k]} (allowed: -1, 0, 1)")
    return flat.astype(np.int8, copy=False)


def _pack(codes, fmt: _Format) -> np.ndarray:
    c = _codes(codes)
    digits = np.full(-(-c.size // fmt.per_byte) * fmt.per_byte, fmt.zero_digit, np.uint8)
    digits[:c.size] = (c + np.int8(fmt.zero_digit)).view(np.uint8) & 3
    digits = digits.reshape(-1, fmt.per_byte)
    packed = np.zeros(len(digits), np.uint8)
    for k in range(fmt.per_byte):     # a loop over digit places, not over codes
        packed += digits[:, k] * np.uint8(fmt.base ** k)
    return packed


def _unpack(packed, count: int, fmt: _Format) -> np.ndarray:
    p = np.asarray(packed)
    if p.dtype != np.uint8 or p.ndim != 1:
        raise HlsgenError(f"packed {fmt.name} codes: {p.dtype} array of shape {_dims(p.shape)} "
                          f"(allowed: a 1-D uint8 array)")
    need = -(-count // fmt.per_byte)
    if count < 0 or p.size < need:
        raise HlsgenError(f"packed {fmt.name} codes: {p.size} bytes cannot hold {count} codes "
                          f"(allowed: at least {need} bytes)")
    rows = fmt.table[p[:need]].view(np.int8).reshape(-1, fmt.table.itemsize)
    codes = rows[:, :fmt.per_byte].reshape(-1)[:count]
    if codes.size and codes.max() > 1:
        k = int(np.argmax(codes > 1))
        byte = k // fmt.per_byte
        raise HlsgenError(f"packed {fmt.name} codes: code {k} in byte {byte} (0x{int(p[byte]):02x}) is not "
                          f"a valid code (allowed: {_allowed(fmt)})")
    return codes


def _allowed(fmt: _Format) -> str:
    if fmt is TWO_BIT:
        return "2-bit fields 0b00 = 0, 0b01 = +1, 0b11 = -1; 0b10 is unused"
    return f"bytes 0 to {fmt.base ** fmt.per_byte - 1}"


def pack_2bit(codes) -> np.ndarray:
    """Ternary codes -> uint8, four 2-bit two's-complement codes per byte, code k at bits 2(k%4).."""
    return _pack(codes, TWO_BIT)


def unpack_2bit(packed, count: int) -> np.ndarray:
    return _unpack(packed, count, TWO_BIT)


def pack_5trit(codes) -> np.ndarray:
    """Ternary codes -> uint8, five codes per byte: byte = sum((c_k + 1) * 3**k)."""
    return _pack(codes, FIVE_TRIT)


def unpack_5trit(packed, count: int) -> np.ndarray:
    return _unpack(packed, count, FIVE_TRIT)
