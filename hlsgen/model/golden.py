"""The NumPy golden model: one flow of the MatMul-free LM, with two kinds of arithmetic.

- `FloatArith` computes MODEL_SPEC.md in fp32, as the reference does.
- `FixedArith` computes what the hardware computes, bit for bit (hlsgen/model/numerics.py).

`Model.forward(ids, state)` runs a block of tokens and returns the new recurrent state, so a
full-sequence pass and token-by-token decoding are the same code and give identical results.
Every named intermediate tensor can be captured with a `Trace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hlsgen.model import numerics as nx
from hlsgen.model.numerics import NumericsSpec
from hlsgen.model.spec import ModelSpec
from hlsgen.model.weights import Projection, Weights

MODES = ("float", "fixed")


class Trace:
    """Collects named intermediates, [T, ...] per call, concatenated over calls (tokens)."""

    def __init__(self):
        self.tensors: dict[str, list[np.ndarray]] = {}

    def __call__(self, name: str, value: np.ndarray) -> np.ndarray:
        self.tensors.setdefault(name, []).append(np.array(value))
        return value

    def get(self, name: str) -> np.ndarray:
        return np.concatenate(self.tensors[name], axis=0)

    def names(self) -> list[str]:
        return list(self.tensors)


def _no_trace(name, value):
    return value


# ----------------------------------------------------------------------------- float arithmetic
def round_half_away(x):
    """Round half away from zero, exactly (floor(|x| + 0.5) can round up at 0.5 - ulp)."""
    whole = np.trunc(x)
    return np.where(np.abs(x - whole) == 0.5, whole + np.sign(x), np.rint(x))


def _sigmoid(x):
    return np.float32(1) / (np.float32(1) + np.exp(-x))


class FloatArith:
    """fp32, exactly as MODEL_SPEC.md; weights upcast, activations round half away from zero."""

    def __init__(self, model: ModelSpec):
        self.eps = np.float32(model.rms_norm_eps)

    def embed(self, table, ids):
        return table[ids].astype(np.float32)

    def rmsnorm(self, x, weight):
        rstd = np.float32(1) / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps)
        return (x * rstd) * weight

    def norm(self, x, weight):
        return self.rmsnorm(x, weight)

    def bitlinear(self, x, proj: Projection, trace, name):
        y = self.rmsnorm(x, proj.norm)
        s_x = np.float32(127) / np.maximum(np.max(np.abs(y), axis=-1, keepdims=True), np.float32(1e-5))
        q = np.clip(round_half_away(y * s_x), -128, 127)
        trace(name + ".q", q.astype(np.int32))
        acc = q.astype(np.float32) @ proj.codes_f32          # exact integers (see Projection)
        return trace(name, acc / (s_x * proj.scale))

    def mlgru(self, i, f, g, lb, g_norm, state):
        f = _sigmoid(f)
        f = lb + (np.float32(1) - lb) * f
        c = i * _sigmoid(i) * (np.float32(1) - f)
        out = np.empty_like(g)
        for t in range(i.shape[0]):
            state = f[t] * state + c[t]
            out[t] = state
        o = self.rmsnorm(g, g_norm) * (out * _sigmoid(out))
        return o, state, out

    def glu(self, gate, up):
        return up * (gate * _sigmoid(gate))

    def residual(self, h, delta, name):
        return h + delta

    def zero_state(self, width):
        return np.zeros(width, np.float32)

    def logits(self, x):
        return x.astype(np.float32)


# ----------------------------------------------------------------------------- fixed arithmetic
class FixedArith:
    """The hardware datapath; every rounding and saturation is defined in hlsgen/model/numerics.py."""

    def __init__(self, model: ModelSpec, n: NumericsSpec):
        self.n = n
        self.sigmoid = nx.SigmoidTable.build(n)
        self.one = 1 << n.sigmoid_frac
        self.saturations = nx.Saturations()

    def act(self, name, x):
        return self.saturations.clamp(name, x, self.n.act.width)

    def mix(self, name, x):
        return self.saturations.clamp(name, x, self.n.mix.width)

    def embed(self, table, ids):
        # A constant table: clamped once at build time (the build reports it), not per lookup.
        return nx.clamp_constant(nx.to_fixed(table[ids], self.n.act.frac), self.n.act.width)

    def gamma(self, weight):
        return nx.clamp_constant(nx.to_fixed(weight, self.n.gamma.frac), self.n.gamma.width)

    def norm(self, x, weight):
        return self.act("norm", nx.rshift_round(x * self.gamma(weight), self.n.gamma.frac))

    def bitlinear(self, v, proj: Projection, trace, name):
        n = self.n
        y = v * self.gamma(proj.norm)
        q = nx.ternary_codes(y)
        trace(name + ".q", q.astype(np.int32))
        acc = (q.astype(np.float32) @ proj.codes_f32).astype(np.int64)   # exact integers
        beta = nx.beta_fixed(proj.scale, n)
        m = np.max(np.abs(y), axis=-1)
        sumsq = np.sum(v * v, axis=-1)
        scale = np.array([nx.output_scale(int(mt), int(st), v.shape[-1], beta, n)
                          for mt, st in zip(m, sumsq)], dtype=object)
        scale = self.saturations.clamp("scale", scale, n.scale_width, signed=False).astype(np.int64)
        trace(name + ".scale", scale)
        return trace(name, self.act("bitlinear", nx.rshift_round(acc * scale[:, None], n.scale_frac)))

    def mlgru(self, i, f, g, lb, g_norm, state):
        n, one, sig, q = self.n, self.one, self.sigmoid, self.n.sigmoid_frac
        F, S = n.act.frac, n.state.frac
        f_lb = nx.to_fixed(lb, q)
        f_lb = f_lb + nx.rshift_round((one - f_lb) * sig(f), q)
        c = nx.rshift_round(nx.rshift_round(i * sig(i), F + q - S) * (one - f_lb), q)
        out = np.empty_like(g)
        for t in range(i.shape[0]):
            state = self.saturations.clamp("state", nx.rshift_round(f_lb[t] * state, q) + c[t], n.state.width)
            out[t] = state
        silu_s = nx.rshift_round(out * sig(nx.rshift_round(out, S - F)), q)
        gg = self.act("g_norm", nx.rshift_round(g * self.gamma(g_norm), n.gamma.frac))
        o = self.mix("mlgru_out", nx.rshift_round(gg * silu_s, F + S - n.mix.frac))
        return o, state, out

    def glu(self, gate, up):
        n = self.n
        silu = nx.rshift_round(gate * self.sigmoid(gate), n.act.frac + n.sigmoid_frac - n.mix.frac)
        return self.mix("glu", nx.rshift_round(up * silu, n.act.frac))

    def residual(self, h, delta, name):
        return self.act(name, h + delta)

    def zero_state(self, width):
        return np.zeros(width, np.int64)

    def logits(self, x):
        return x.astype(np.float64) / (1 << self.n.act.frac)


# ----------------------------------------------------------------------------- the model
@dataclass
class Model:
    """The golden model for one checkpoint and one kind of arithmetic."""
    spec: ModelSpec
    weights: Weights
    mode: str = "float"
    numerics: NumericsSpec = field(default_factory=NumericsSpec)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} (allowed: {', '.join(MODES)})")
        self.arith = FloatArith(self.spec) if self.mode == "float" else FixedArith(self.spec, self.numerics)

    def initial_state(self) -> list[np.ndarray]:
        return [self.arith.zero_state(self.spec.inner) for _ in range(self.spec.layers)]

    def forward(self, ids, state, trace=_no_trace):
        """Run tokens `ids` from `state`. Returns (raw logits [T, V], new state).

        Raw logits are fp32 in float mode and integers (act.frac fraction bits) in fixed mode.
        """
        a, w = self.arith, self.weights
        ids = np.asarray(ids, dtype=np.int64)
        h = trace("embedding", a.embed(w.embeddings, ids))
        new_state = []
        for l, layer in enumerate(w.layers):
            p = f"layer{l}."
            x = a.norm(h, layer.attn_norm)
            i = a.bitlinear(x, layer.i, trace, p + "attn.i")
            f = a.bitlinear(x, layer.f, trace, p + "attn.f")
            g = a.bitlinear(x, layer.g, trace, p + "attn.g")
            o, s, states = a.mlgru(i, f, g, w.lower_bounds[l], layer.g_norm, state[l])
            trace(p + "attn.state", states)
            trace(p + "attn.mlgru_out", o)
            new_state.append(s)
            r = trace(p + "attn.residual", a.residual(h, a.bitlinear(o, layer.o, trace, p + "attn.o"), "residual"))
            gu = a.bitlinear(a.norm(r, layer.mlp_norm), layer.gate, trace, p + "mlp.gate")
            half = self.spec.intermediate
            z = trace(p + "mlp.glu", a.glu(gu[:, :half], gu[:, half:]))
            h = trace(p + "mlp.residual", a.residual(r, a.bitlinear(z, layer.down, trace, p + "mlp.down"), "residual"))
        logits = a.bitlinear(a.norm(h, w.final_norm), w.lm_head, trace, "lm_head")
        return logits, new_state

    def prefill(self, ids, trace=_no_trace):
        """The whole sequence in one pass from the zero state: (raw logits [T, V], final state)."""
        return self.forward(ids, self.initial_state(), trace)

    def decode(self, ids, trace=_no_trace):
        """The same tokens one at a time, carrying the recurrent state: (raw logits [T, V], state)."""
        state, rows = self.initial_state(), []
        for token in np.asarray(ids, dtype=np.int64):
            logits, state = self.forward([token], state, trace)
            rows.append(logits)
        return np.concatenate(rows, axis=0), state

    def generate(self, prompt, max_new_tokens: int):
        """Greedy decoding: prefill the prompt, then feed back the argmax (first index on ties)."""
        logits, state = self.prefill(prompt)
        tokens = []
        for _ in range(max_new_tokens):
            token = int(np.argmax(logits[-1]))
            tokens.append(token)
            logits, state = self.forward([token], state)
        return tokens

    def to_float(self, raw_logits) -> np.ndarray:
        return self.arith.logits(raw_logits)
