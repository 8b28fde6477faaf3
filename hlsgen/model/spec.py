"""Config file -> frozen, validated Spec.

Every error names the YAML path, the bad value and what is allowed, and is raised as one
HlsgenError before anything is written.  A config may also be a Hugging Face MMfreeLM model
directory, or `model:` may point at its config.json.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hlsgen.errors import HlsgenError, did_you_mean
from hlsgen.schema import Problems, Section, show
from hlsgen.model.numerics import FixedFormat, NumericsSpec, product_bits
from hlsgen import resources

# \A and \Z, not ^ and $: `$` also matches before a trailing newline ("tiny_top\n").
IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_IDENTIFIER = 64
# The name becomes a C++ function, namespace and file name prefix, and a Tcl/Vitis top name.
CXX_KEYWORDS = frozenset("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t
    class compl concept const consteval constexpr constinit const_cast continue co_await co_return
    co_yield decltype default delete do double dynamic_cast else enum explicit export extern false
    float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr operator
    or or_eq private protected public register reinterpret_cast requires return short signed sizeof
    static static_assert static_cast struct switch template this thread_local throw true try typedef
    typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq
    final override import module""".split())
RESERVED_NAMES = frozenset({"main"})
RESERVED_PREFIXES = ("__", "ap_", "hls", "xil")    # the compiler's and the Xilinx libraries' own
WEIGHT_PLACES = ("onchip", "ddr", "hbm")
PACKINGS = ("2bit", "5trit")   # weight codes: four 2-bit codes per byte, or five trits per byte


# ----------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class ModelSpec:
    vocab: int
    hidden: int
    layers: int
    heads: int = 1
    expand_ratio: int = 1
    hidden_ratio: int = 4
    intermediate_size: int | None = None
    rms_norm_eps: float = 1e-6
    use_lower_bound: bool = True

    @property
    def inner(self) -> int:
        """D, the MLGRU width."""
        return self.hidden * self.expand_ratio

    @property
    def intermediate(self) -> int:
        """I, the GLU width (MODEL_SPEC.md rule when intermediate_size is null)."""
        if self.intermediate_size is not None:
            return self.intermediate_size
        return 256 * math.ceil(int(self.hidden * self.hidden_ratio * 2 / 3) / 256)

    def projection_shapes(self) -> dict[str, tuple[int, int]]:
        """[out, in] of every ternary projection kind."""
        H, D, I, V = self.hidden, self.inner, self.intermediate, self.vocab
        return {"i": (D, H), "f": (D, H), "g": (D, H), "o": (H, D),
                "gate": (2 * I, H), "down": (H, I), "lm_head": (V, H)}


@dataclass(frozen=True)
class WeightsSpec:
    path: Path | None = None     # HF directory, .safetensors or .npz
    seed: int | None = None      # random weights instead
    sha256: str | None = None    # the checkpoint's digest (checkpoint.digest), checked when it is read


@dataclass(frozen=True)
class Parallelism:
    pe: int = 1        # output rows computed in parallel
    simd: int = 1      # input columns consumed per cycle
    lm_head_pe: int = 1
    lm_head_simd: int = 1
    # The quantiser's lanes per cycle (None: simd): only the MVU's first row fold of a single
    # token waits on it, so it can be narrower than the MVU.
    quantiser_simd: int | None = None
    lm_head_quantiser_simd: int | None = None


@dataclass(frozen=True)
class HardwareSpec:
    board: str = "u280"
    clock_mhz: float | None = None      # None: the board's default
    parallelism: Parallelism = Parallelism()
    weights: str = "onchip"
    packing: str = "2bit"               # PACKINGS
    batch: int = 1                      # tokens per pass over the weights (MAX_BATCH)


@dataclass(frozen=True)
class TestbenchSpec:
    """The token sequence the generated testbench checks: a prompt, greedy decode steps fed back,
    then a reset and a second prompt (so the state reset is checked too)."""
    prompt_tokens: int = 5
    decode_steps: int = 5
    second_prompt_tokens: int = 3
    seed: int = 2024


@dataclass(frozen=True)
class ProjectSpec:
    name: str = "mmfree_top"
    output: Path = Path("out")
    testbench: TestbenchSpec = TestbenchSpec()


@dataclass(frozen=True)
class Spec:
    model: ModelSpec
    weights: WeightsSpec
    numerics: NumericsSpec
    hardware: HardwareSpec
    project: ProjectSpec
    source: Path | None   # the file or directory this spec was read from (None: a dict)

    def digest(self) -> str:
        """Content hash of everything that shapes the generated project: not where it is written
        (project.output), and a board file by its content, so that the config copied into a
        project (hlsgen_config.yaml) has the digest of the one it was built from, wherever it is."""
        def plain(obj):
            if dataclasses.is_dataclass(obj):
                return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            return str(obj) if isinstance(obj, Path) else obj
        body = {k: plain(getattr(self, k)) for k in ("model", "weights", "numerics", "hardware", "project")}
        del body["project"]["output"], body["weights"]["sha256"]
        if body["hardware"]["board"].endswith(BOARD_FILE_SUFFIXES):
            body["hardware"]["board"] = hashlib.sha256(Path(body["hardware"]["board"]).read_bytes()).hexdigest()
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def as_config(self, board: str | None = None, weights_sha256: str | None = None) -> dict:
        """This spec as a complete config (every default spelled out) that load() reads back to the
        same digest: what a project keeps as hlsgen_config.yaml, with its output `.` (the project
        itself), `board` as the project names its board, and the weights by path and digest."""
        def plain(obj):
            if dataclasses.is_dataclass(obj):
                return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                        if getattr(obj, f.name) is not None}
            return obj
        w = self.weights
        weights = ({"random": {"seed": w.seed}} if w.seed is not None
                   else {"path": str(w.path), **({"sha256": weights_sha256} if weights_sha256 else {})})
        hardware = plain(self.hardware)
        hardware["board"] = board or self.hardware.board
        project = plain(self.project)
        project["output"] = "."
        return {"model": plain(self.model), "weights": weights, "numerics": plain(self.numerics),
                "hardware": hardware, "project": project}


# ----------------------------------------------------------------------------- reading values
# One validator for configs and board files (hlsgen/schema.py): every problem of a file at once.
# (The old private names stay, for the code that reads sections with them.)
_Section = Section
_show = show


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# ----------------------------------------------------------------------------- sections
def _model_from_hf_config(path: Path, where: str, problems: Problems) -> ModelSpec:
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise HlsgenError(f"{where}: {path} does not exist (allowed: an HF config.json of model_type hgrn_bit)") from None
    except (OSError, ValueError, RecursionError) as exc:     # ValueError: bad JSON or not UTF-8
        raise HlsgenError(f"{where}: {path} is not readable JSON ({str(exc)[:160] or type(exc).__name__})") from None
    if not isinstance(cfg, dict):
        raise HlsgenError(f"{where}: {path} holds a JSON {type(cfg).__name__}, not an object (allowed: an HF "
                          f"config.json of model_type hgrn_bit)")
    if cfg.get("model_type") != "hgrn_bit":
        raise HlsgenError(f"{where}: {path} has model_type {cfg.get('model_type')!r} (allowed: 'hgrn_bit')")
    for flag in ("use_short_conv", "tie_word_embeddings"):
        if cfg.get(flag):
            raise HlsgenError(f"{where}: {path} sets {flag}: true (allowed: false; MMfreeLM checkpoints use false)")
    mapping = {"vocab": "vocab_size", "hidden": "hidden_size", "layers": "num_hidden_layers",
               "heads": "num_heads", "expand_ratio": "expand_ratio", "hidden_ratio": "hidden_ratio",
               "intermediate_size": "intermediate_size", "rms_norm_eps": "rms_norm_eps",
               "use_lower_bound": "use_lower_bound"}
    data = {ours: cfg[theirs] for ours, theirs in mapping.items() if cfg.get(theirs) is not None}
    return _model(_Section(data, f"{where} ({path.name})", problems))


def _model(sec: _Section) -> ModelSpec:
    m = ModelSpec(
        vocab=sec.int("vocab", maximum=1 << 20),
        hidden=sec.int("hidden", maximum=1 << 14),
        layers=sec.int("layers", maximum=1024),
        heads=sec.int("heads", 1),
        expand_ratio=sec.int("expand_ratio", 1, maximum=8),
        hidden_ratio=sec.int("hidden_ratio", 4, maximum=64),
        intermediate_size=sec.int("intermediate_size", maximum=1 << 15, optional=True),
        rms_norm_eps=sec.float("rms_norm_eps", 1e-6),
        use_lower_bound=sec.bool("use_lower_bound", True),
    )
    sec.check()
    if m.inner % m.heads:
        raise HlsgenError(f"{sec.where('heads')}: {m.heads} does not divide hidden*expand_ratio {m.inner} "
                          f"(allowed: divisors of {m.inner})")
    if max(m.inner, m.intermediate) > 1 << 15:
        raise HlsgenError(f"{sec.where('intermediate_size')}: {m.intermediate} is too wide (allowed: <= 32768)")
    return m


def _weights(sec: _Section, base: Path) -> WeightsSpec:
    path, random = sec.raw("path"), sec.raw("random")
    digest = sec.raw("sha256")
    if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        sec.fail(f"{sec.where('sha256')}: {_show(digest)} is not a digest (allowed: 64 lowercase hex digits, the "
                 f"sha256 that `hlsgen build` wrote into the project's hlsgen_config.yaml)")
    sec.check()
    if (path is None) == (random is None):
        raise HlsgenError(f"{sec.path}: give exactly one of 'path' (HF directory, .safetensors or .npz) "
                          f"or 'random: {{seed: N}}'")
    if random is not None:
        rnd = sec.sub("random")
        seed = rnd.int("seed", 0, minimum=0)
        rnd.check()
        return WeightsSpec(seed=seed)
    if not isinstance(path, str) or not path:
        raise HlsgenError(f"{sec.where('path')}: {_show(path)} is not a path")
    resolved = _resolve(base / path, sec.where("path"))
    if not resolved.exists():
        raise HlsgenError(f"{sec.where('path')}: {resolved} does not exist (allowed: an HF model directory, "
                          f".safetensors or .npz)")
    return WeightsSpec(path=resolved, sha256=digest)


def _resolve(path: Path, where: str) -> Path:
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:     # a symlink loop (RuntimeError before Python 3.13)
        raise HlsgenError(f"{where}: {path} cannot be resolved ({exc}) (allowed: a path without symlink loops)") from None


def _format(sec: _Section, key: str, default: FixedFormat, max_width: int) -> FixedFormat:
    s = sec.sub(key)
    width = s.int("width", default.width, minimum=2, maximum=max_width)
    frac = s.int("frac", default.frac, minimum=0, maximum=width - 2)
    s.finish()
    return FixedFormat(width, frac)


def _numerics(sec: _Section) -> NumericsSpec:
    d = NumericsSpec()
    n = NumericsSpec(
        # 24-bit activations keep every sum of squares (2*width + log2 K bits) inside int64.
        act=_format(sec, "act", d.act, 24),
        gamma=_format(sec, "gamma", d.gamma, 24),
        mix=_format(sec, "mix", d.mix, 24),
        state=_format(sec, "state", d.state, 40),
        sigmoid_frac=sec.int("sigmoid_frac", d.sigmoid_frac, minimum=8, maximum=24),
        sigmoid_range=sec.choice("sigmoid_range", d.sigmoid_range, (4, 8, 16, 32)),
        sigmoid_step_bits=sec.int("sigmoid_step_bits", d.sigmoid_step_bits, minimum=2, maximum=10),
        scale_frac=sec.int("scale_frac", d.scale_frac, minimum=8, maximum=32),
        scale_width=sec.int("scale_width", d.scale_width, minimum=16, maximum=40),
        beta_frac=sec.int("beta_frac", d.beta_frac, minimum=8, maximum=40),
        rsqrt_guard=sec.int("rsqrt_guard", d.rsqrt_guard, minimum=0, maximum=16),
    )
    sec.check()
    if n.sigmoid_step_bits > n.act.frac:
        # The sigmoid table is indexed by the top bits of an act value's fraction.
        raise HlsgenError(f"{sec.where('sigmoid_step_bits')}: {n.sigmoid_step_bits} exceeds numerics.act.frac "
                          f"{n.act.frac} (allowed: <= {n.act.frac})")
    if n.state.frac < n.act.frac:
        raise HlsgenError(f"{sec.where('state.frac')}: {n.state.frac} is below numerics.act.frac {n.act.frac} "
                          f"(allowed: >= {n.act.frac})")
    for product, bits in product_bits(n).items():
        if bits > 62:
            raise HlsgenError(f"{sec.path}: the product {product} needs {bits} bits with these formats "
                              f"(allowed: at most 62, so the datapath fits 64-bit integers; narrow a format)")
    return n


LANES_PER_WORD = 256   # two-bit lanes in one 512-bit weight word: one weight port's worth
MAX_LANES = 16384      # 64 weight ports
# Tokens that share one pass over the weights: a prompt block of one sequence (prefill) or the
# next token of each of `batch` sequences.  They cross the top's m_axi ports in one 512-bit word
# of 16 int32 slots, hence at most 16.
MAX_BATCH = 16


def stripes_for(lanes: int) -> int:
    """Weight ports a fold of `lanes` streams from: a word's fraction below 256 lanes, else a word each."""
    return max(1, lanes // LANES_PER_WORD)


def stripes_agree(layer_lanes: int, head_lanes: int) -> bool:
    """Every kind's lane words share the stripe buffers, one 512-bit slice per port, so beyond one
    port the layers and the lm_head stream the same number of stripes."""
    return max(layer_lanes, head_lanes) <= LANES_PER_WORD or layer_lanes == head_lanes


def _parallelism(sec: _Section, model: ModelSpec) -> Parallelism:
    p = Parallelism(pe=sec.int("pe", 1, maximum=MAX_LANES), simd=sec.int("simd", 1, maximum=MAX_LANES),
                    lm_head_pe=sec.int("lm_head_pe", 1, maximum=MAX_LANES),
                    lm_head_simd=sec.int("lm_head_simd", 1, maximum=MAX_LANES),
                    quantiser_simd=sec.int("quantiser_simd", optional=True),
                    lm_head_quantiser_simd=sec.int("lm_head_quantiser_simd", optional=True))
    sec.check()
    if model is None:
        return p            # the model section is wrong: nothing to check the folding against
    # Named per dimension, not per value: when widths coincide (D == H) the message must still
    # name the dimension the user set.
    dims = {"model.hidden": model.hidden, "hidden*expand_ratio": model.inner,
            "the intermediate size": model.intermediate, "2*intermediate": 2 * model.intermediate,
            "model.vocab": model.vocab}
    # The layer PE is also the lanes of the GLU, which takes the fused gate/up output half by half.
    checks = [("pe", p.pe, ("hidden*expand_ratio", "model.hidden", "the intermediate size", "2*intermediate")),
              ("simd", p.simd, ("model.hidden", "hidden*expand_ratio", "the intermediate size")),
              ("lm_head_pe", p.lm_head_pe, ("model.vocab",)),
              ("lm_head_simd", p.lm_head_simd, ("model.hidden",))]
    for key, value, labels in checks:
        widths = [dims[label] for label in labels]
        for label, width in zip(labels, widths):
            if width % value:
                common = sorted(set.intersection(*(set(_divisors(w)) for w in widths)))
                raise HlsgenError(f"{sec.where(key)}: {value} does not divide {label} {width} "
                                  f"(allowed: common divisors of {', '.join(map(str, sorted(set(widths))))}: "
                                  f"{', '.join(map(str, common))})")
    for pe_key, simd_key in (("pe", "simd"), ("lm_head_pe", "lm_head_simd")):
        lanes = getattr(p, pe_key) * getattr(p, simd_key)
        # Weights arrive as 512-bit words of 2-bit codes: a fold takes a whole fraction of one word,
        # or (beyond 256 lanes) whole words from several ports side by side.
        if lanes & (lanes - 1) or lanes > MAX_LANES:
            raise HlsgenError(f"{sec.where(pe_key)}: {pe_key}*{simd_key} = {lanes} is not a power of two "
                              f"<= {MAX_LANES} (allowed: 1, 2, 4, ..., {MAX_LANES} lanes; 256 per 512-bit word of "
                              f"2-bit codes)")
    layer_lanes, head_lanes = p.pe * p.simd, p.lm_head_pe * p.lm_head_simd
    if not stripes_agree(layer_lanes, head_lanes):
        raise HlsgenError(f"{sec.where('lm_head_pe')}: lm_head_pe*lm_head_simd = {head_lanes} but pe*simd = "
                          f"{layer_lanes}; beyond 256 lanes the weights are striped over ports and every projection "
                          f"streams the same number of stripes (allowed: equal lane counts, or both <= 256)")
    # simd is a power of two here (pe*simd is), so its divisors are the powers of two up to it.
    for key, simd_key in (("quantiser_simd", "simd"), ("lm_head_quantiser_simd", "lm_head_simd")):
        value, simd = getattr(p, key), getattr(p, simd_key)
        if value is not None and simd % value:
            raise HlsgenError(f"{sec.where(key)}: {value} does not divide {simd_key} {simd} (allowed: "
                              f"{', '.join(str(d) for d in _divisors(simd))})")
    return p


def board_names() -> list[str]:
    return sorted(p.stem for p in resources.boards().glob("*.yaml"))


BOARD_FILE_SUFFIXES = (".yaml", ".yml")


def _board(sec: _Section, base: Path) -> str:
    """A shipped board's name, or the absolute path of a board file (hardware/boards.py reads it
    with the same schema as the shipped ones)."""
    shipped = board_names()
    value = sec.raw("board", "u280")
    if isinstance(value, str) and value in shipped:
        return value
    allowed = f"allowed: {', '.join(shipped)}, or the path of a board file ending in .yaml, relative to this config"
    if isinstance(value, str) and value.endswith(BOARD_FILE_SUFFIXES):
        path = (base / value).resolve()
        if path.is_file():
            return str(path)
        return sec.fail(f"{sec.where('board')}: {_show(value)}: no such board file {path} ({allowed})", "u280")
    return sec.fail(f"{sec.where('board')}: {_show(value)} is not a known board ({allowed})"
                    + did_you_mean(value, shipped), "u280")


def _hardware(sec: _Section, model: ModelSpec | None, base: Path) -> HardwareSpec:
    board = _board(sec, base)
    clock = sec.float("clock_mhz", None, optional=True)
    if clock is not None and clock > 1000:
        clock = sec.fail(f"{sec.where('clock_mhz')}: {float(clock)} is out of range (allowed: 0 < clock_mhz <= 1000)")
    clock = float(clock) if clock is not None else None
    weights = sec.choice("weights", "onchip", WEIGHT_PLACES)
    packing = sec.choice("packing", "2bit", PACKINGS)
    batch = sec.int("batch", 1, maximum=MAX_BATCH)
    parallelism = Parallelism()
    with sec.problems.collecting():     # its own problems, after the rest of the section is read
        parallelism = _parallelism(sec.sub("parallelism"), model)
    sec.check()
    return HardwareSpec(board=board, clock_mhz=clock, parallelism=parallelism, weights=weights, packing=packing,
                        batch=batch)


def _identifier(sec: _Section, key: str, default: str) -> str:
    """A name that becomes a C++ function and namespace, file names and a Tcl top."""
    name = sec.raw(key, default)
    why = None
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        why = "is not a letter or '_' followed by letters, digits or '_'"
    elif len(name) > MAX_IDENTIFIER:
        why = f"is {len(name)} characters long"
    elif name in CXX_KEYWORDS:
        why = "is a C++ keyword"
    elif name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES) or re.match(r"_[A-Z]", name):
        why = "is a reserved name"
    if why:
        return sec.fail(f"{sec.where(key)}: {_show(name)} is not a usable C/Tcl identifier: it {why} (allowed: a letter "
                          f"or '_', then letters, digits or '_', at most {MAX_IDENTIFIER} characters; not a C++ "
                          f"keyword, not main, not starting with ap_, hls, xil, __ or _ and a capital)", default)
    return name


def _project(sec: _Section, base: Path) -> ProjectSpec:
    name = _identifier(sec, "name", "mmfree_top")
    output = sec.raw("output", f"out/{name}")
    if not isinstance(output, str) or not output or "\0" in output:
        sec.fail(f"{sec.where('output')}: {_show(output)} is not a path")
    tb = sec.sub("testbench")
    d = TestbenchSpec()
    testbench = TestbenchSpec(prompt_tokens=tb.int("prompt_tokens", d.prompt_tokens, maximum=4096),
                              decode_steps=tb.int("decode_steps", d.decode_steps, minimum=0, maximum=4096),
                              second_prompt_tokens=tb.int("second_prompt_tokens", d.second_prompt_tokens,
                                                          minimum=0, maximum=4096),
                              seed=tb.int("seed", d.seed, minimum=0))
    sec.check()
    return ProjectSpec(name=name, output=_resolve(base / output, sec.where("output")), testbench=testbench)


# ----------------------------------------------------------------------------- entry point
def _read(source: Path) -> tuple[dict | None, Path]:
    """The raw config of a YAML file or an HF model directory, and the directory its paths are relative to."""
    if source.is_dir():
        config = source / "config.json"
        if not config.is_file():
            raise HlsgenError(f"{source}: directory has no config.json (allowed: a YAML config or an HF "
                              f"MMfreeLM model directory)")
        return {"model": "config.json", "weights": {"path": "."},
                "project": {"output": str(Path.cwd() / "out" / "mmfree_top")}}, source
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise HlsgenError(f"{source}: no such file (allowed: a YAML config or an HF model directory)") from None
    except OSError as exc:
        raise HlsgenError(f"{source}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise HlsgenError(f"{source}: not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}; allowed: a YAML config in UTF-8)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise HlsgenError(f"{source}: not valid YAML{at} ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise HlsgenError(f"{source}: not a usable YAML config (nested too deeply)") from None
    return data, _resolve(source, str(source)).parent


def with_overrides(data: dict, overrides: dict) -> dict:
    """`data` with dotted keys set: {"hardware.parallelism.pe": 8} sets data["hardware"]["parallelism"]["pe"]."""
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        keys = str(dotted).split(".")
        if not all(keys):
            raise HlsgenError(f"override {dotted!r}: not a dotted key (allowed: e.g. hardware.parallelism.pe)")
        node = data
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise HlsgenError(f"override {dotted!r}: {'.'.join(keys[:depth + 1])} is {_show(child)}, not a "
                                  f"mapping (allowed: keys under a section, e.g. hardware.parallelism.pe)")
            node = child
        node[keys[-1]] = value
    return data


def load(source: str | Path | dict, overrides: dict | None = None, base: Path | None = None) -> Spec:
    """Read a YAML config, an HF model directory or a config dict into a validated Spec.

    Every problem of the config is reported at once (schema.ConfigErrors, one message each), the
    unknown keys first.  `overrides`: dotted keys set on top of the config before it is checked.
    A dict's relative paths are relative to `base` (default: the current directory)."""
    try:
        return _load(source, overrides, base)
    except OSError as exc:      # an unreadable directory or file met anywhere while reading the inputs
        raise HlsgenError(f"{exc.filename or source}: cannot be read ({exc.strerror or exc})") from None


def _load(source, overrides, base) -> Spec:
    if isinstance(source, dict):
        data, base, source = source, Path(base or Path.cwd()).resolve(), None
    else:
        source = Path(source)
        data, base = _read(source)
    if data is not None and not isinstance(data, dict):
        raise HlsgenError(f"{source}: the top level is {type(data).__name__} {_show(data)} "
                          f"(allowed: a mapping with sections model, weights, numerics, hardware, project)")
    if overrides:
        data = with_overrides(data or {}, overrides)
    problems = Problems()
    root = _Section(data, "", problems)
    model = weights = numerics = hardware = project = None
    with problems.collecting():
        model_value = root.raw("model")
        if isinstance(model_value, str):
            model = _model_from_hf_config(base / model_value, "model", problems)
        else:
            model = _model(root.sub("model"))
    with problems.collecting():
        weights = _weights(root.sub("weights"), base)
    with problems.collecting():
        numerics = _numerics(root.sub("numerics"))
    with problems.collecting():
        hardware = _hardware(root.sub("hardware"), model, base)
    with problems.collecting():
        project = _project(root.sub("project"), base)
    root.finish()
    problems.raise_if_any()
    return Spec(model=model, weights=weights, numerics=numerics, hardware=hardware, project=project, source=source)
