"""The model's parameters after import: full-precision norms and embeddings, ternary codes.

Checkpoints store latent full-precision projection weights; they are ternarised once, here,
exactly as BitLinear does at run time (MODEL_SPEC.md, step 3), and only the codes are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hlsgen.model.spec import ModelSpec

PROJECTIONS_ATTN = ("i", "f", "g", "o")
PROJECTIONS_MLP = ("gate", "down")


@dataclass(eq=False)
class Projection:
    """One BitLinear: ternary codes, the tensor's weight scale s_w, and its own RMSNorm weight."""
    codes: np.ndarray      # int8 [out, in], values in {-1, 0, 1}
    scale: np.float32      # s_w = 1 / max(mean|W|, 1e-5), fp32 as the reference computes it
    norm: np.ndarray       # fp32 [in]
    _codes_f32: np.ndarray | None = field(default=None, repr=False)

    @property
    def codes_f32(self) -> np.ndarray:
        """Codes as float32 [in, out] for BLAS.

        Exact: every partial sum of int8 x ternary terms is an integer below 127 * 2**15 < 2**24.
        """
        if self._codes_f32 is None:
            self._codes_f32 = np.ascontiguousarray(self.codes.T, dtype=np.float32)
        return self._codes_f32


@dataclass(eq=False)
class Layer:
    attn_norm: np.ndarray          # [H]
    i: Projection                  # [D, H]
    f: Projection                  # [D, H]
    g: Projection                  # [D, H]
    o: Projection                  # [H, D]
    g_norm: np.ndarray             # [D]
    mlp_norm: np.ndarray           # [H]
    gate: Projection               # [2I, H]; the first half is the gate, the second the up projection
    down: Projection               # [H, I]


@dataclass(eq=False)
class Weights:
    embeddings: np.ndarray         # fp32 [V, H]
    lower_bounds: np.ndarray       # fp32 [L, D]: lb = cumsum(softmax(P)) - softmax(P)[0], lb[0] = 0
    layers: list[Layer]
    final_norm: np.ndarray         # [H]
    lm_head: Projection            # [V, H]

    def of_kind(self, kind: str) -> list[Projection]:
        """The projections of one kind in hardware order: one per layer, or the single lm_head."""
        if kind == "lm_head":
            return [self.lm_head]
        return [getattr(layer, kind) for layer in self.layers]

    def projections(self):
        """(name, Projection) for every ternary tensor, in checkpoint order."""
        for l, layer in enumerate(self.layers):
            for kind in PROJECTIONS_ATTN + PROJECTIONS_MLP:
                yield f"layers.{l}.{kind}", getattr(layer, kind)
        yield "lm_head", self.lm_head


def ternarize(latent: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Absmean ternary quantisation with one scale per tensor; weights round half to even."""
    w = np.asarray(latent, dtype=np.float32)
    mean_abs = np.float32(np.mean(np.abs(w), dtype=np.float32))
    scale = np.float32(1.0) / np.maximum(mean_abs, np.float32(1e-5))
    scaled = w * scale                      # the one full-size temporary; the rest works in place
    np.rint(scaled, out=scaled)
    np.clip(scaled, -1, 1, out=scaled)
    return scaled.astype(np.int8), scale


def lower_bounds(raw: np.ndarray) -> np.ndarray:
    """lb = cumsum(softmax(P over layers)) - softmax(P)[0]; independent of the input."""
    p = np.asarray(raw, dtype=np.float32)
    e = np.exp(p - p.max(axis=0, keepdims=True))
    sm = e / e.sum(axis=0, keepdims=True)
    return (np.cumsum(sm, axis=0) - sm[0]).astype(np.float32)


def random_latent(model: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """A random checkpoint under MODEL_SPEC.md key names (initialiser-like scales, fp32).

    Norm weights and lower bounds are perturbed away from their trivial init values so that
    every parameter matters in tests.
    """
    rng = np.random.default_rng(seed)
    H, D, I, V, L = model.hidden, model.inner, model.intermediate, model.vocab, model.layers

    def normal(*shape, std=0.02):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def norm(n):
        return (1.0 + rng.standard_normal(n) * 0.1).astype(np.float32)

    t = {"model.embeddings.weight": normal(V, H, std=1.0), "model.lower_bounds": normal(L, D, std=1.0)}
    for l in range(L):
        p = f"model.layers.{l}."
        t[p + "attn_norm.weight"] = norm(H)
        for name, (rows, cols) in (("i", (D, H)), ("f", (D, H)), ("g", (D, H)), ("o", (H, D))):
            t[p + f"attn.{name}_proj.weight"] = normal(rows, cols)
            t[p + f"attn.{name}_proj.norm.weight"] = norm(cols)
        t[p + "attn.g_norm.weight"] = norm(D)
        t[p + "mlp_norm.weight"] = norm(H)
        t[p + "mlp.gate_proj.weight"] = normal(2 * I, H)
        t[p + "mlp.gate_proj.norm.weight"] = norm(H)
        t[p + "mlp.down_proj.weight"] = normal(H, I)
        t[p + "mlp.down_proj.norm.weight"] = norm(I)
    t["model.norm.weight"] = norm(H)
    t["lm_head.weight"] = normal(V, H)
    t["lm_head.norm.weight"] = norm(H)
    return t


def expected_shapes(model: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every checkpoint key and its shape (MODEL_SPEC.md, 'Checkpoint format')."""
    H, D, I, V, L = model.hidden, model.inner, model.intermediate, model.vocab, model.layers
    shapes = {"model.embeddings.weight": (V, H), "model.norm.weight": (H,),
              "lm_head.weight": (V, H), "lm_head.norm.weight": (H,)}
    if model.use_lower_bound:
        shapes["model.lower_bounds"] = (L, D)
    for l in range(L):
        p = f"model.layers.{l}."
        shapes[p + "attn_norm.weight"] = (H,)
        for name, (rows, cols) in (("i", (D, H)), ("f", (D, H)), ("g", (D, H)), ("o", (H, D))):
            shapes[p + f"attn.{name}_proj.weight"] = (rows, cols)
            shapes[p + f"attn.{name}_proj.norm.weight"] = (cols,)
        shapes[p + "attn.g_norm.weight"] = (D,)
        shapes[p + "mlp_norm.weight"] = (H,)
        shapes[p + "mlp.gate_proj.weight"] = (2 * I, H)
        shapes[p + "mlp.gate_proj.norm.weight"] = (H,)
        shapes[p + "mlp.down_proj.weight"] = (H, I)
        shapes[p + "mlp.down_proj.norm.weight"] = (I,)
    return shapes


def from_tensors(model: ModelSpec, get) -> Weights:
    """Assemble Weights from a tensor getter `get(key) -> fp32 array` (already shape-checked).

    Projections are ternarised as they are read, so only one latent tensor is alive at a time.
    """
    def proj(prefix):
        codes, scale = ternarize(get(prefix + ".weight"))
        return Projection(codes=codes, scale=scale, norm=get(prefix + ".norm.weight"))

    layers = []
    for l in range(model.layers):
        p = f"model.layers.{l}."
        layers.append(Layer(attn_norm=get(p + "attn_norm.weight"),
                            i=proj(p + "attn.i_proj"), f=proj(p + "attn.f_proj"),
                            g=proj(p + "attn.g_proj"), o=proj(p + "attn.o_proj"),
                            g_norm=get(p + "attn.g_norm.weight"), mlp_norm=get(p + "mlp_norm.weight"),
                            gate=proj(p + "mlp.gate_proj"), down=proj(p + "mlp.down_proj")))
    if model.use_lower_bound:
        lb = lower_bounds(get("model.lower_bounds"))
    else:
        lb = np.zeros((model.layers, model.inner), np.float32)
    return Weights(embeddings=get("model.embeddings.weight"), lower_bounds=lb, layers=layers,
                   final_norm=get("model.norm.weight"), lm_head=proj("lm_head"))


def random_weights(model: ModelSpec, seed: int) -> Weights:
    tensors = random_latent(model, seed)
    return from_tensors(model, tensors.__getitem__)
