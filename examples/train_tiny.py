"""Train the tiny MatMul-free LM shipped in examples/tiny_lm/ (quantisation-aware, CPU, PyTorch).

    pip install -e .[train]
    nice -n 10 python examples/train_tiny.py            # about 10 minutes on 2 idle cores

The model is written here from MODEL_SPEC.md, not imported from any reference package:
- BitLinear: its own RMSNorm (eps 1e-6), per-token absmax int8 activations rounded half away
  from zero, per-tensor absmean ternary weights rounded half to even, and straight-through
  estimators for both quantisers (the forward pass uses the quantised values, the backward pass
  treats the quantisers as the identity);
- HGRNBit blocks: the MLGRU token mixer with lower bounds, the GLU channel mixer with one fused
  gate_proj (gate first); a ternary lm_head; no bias anywhere.

Corpus: the top-level modules of the Python standard library of the running interpreter (PSF
licence); see hlsgen/model/quality.py for the split. Outputs (config.json, model.safetensors with
MMfreeLM key names and the latent fp32 weights, split.json, train_log.json, loss_curve.png) go
to --out. At the end the exported checkpoint is evaluated with hlsgen's own float golden model on
the same held-out windows, which must reproduce the training eval loss.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

# OpenMP threads that spin while waiting make elementwise ops ~30x slower on a CPU shared with
# other jobs; passive waiting keeps 2 threads useful.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout
from hlsgen.model import checkpoint, golden
from hlsgen.model import quality  # noqa: E402
from hlsgen.model import spec as spec_mod  # noqa: E402

EPS = 1e-6


# ----------------------------------------------------------------------------- the model
def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Exactly as hlsgen.model.golden.round_half_away (floor(|x| + 0.5) misrounds 0.5 - ulp)."""
    whole = torch.trunc(x)
    return torch.where((x - whole).abs() == 0.5, whole + torch.sign(x), torch.round(x))


def ste(x: torch.Tensor, quantised: torch.Tensor) -> torch.Tensor:
    """Forward: `quantised`; backward: the identity (straight-through estimator)."""
    return x + (quantised - x).detach()


class RMSNorm(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


class BitLinear(nn.Module):
    """MODEL_SPEC.md BitLinear; parameter names give the keys <proj>.weight and <proj>.norm.weight."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) * 0.02)
        self.norm = RMSNorm(n_in)

    def forward(self, x):
        y = self.norm(x)
        s_x = 127 / y.abs().amax(-1, keepdim=True).clamp(min=1e-5)
        y = ste(y, round_half_away(y * s_x).clamp(-128, 127) / s_x)
        s_w = 1 / self.weight.abs().mean().clamp(min=1e-5)
        w = ste(self.weight, torch.round(self.weight * s_w).clamp(-1, 1) / s_w)   # round half to even
        return F.linear(y, w)


def recurrence(f: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """s_t = f_t * s_{t-1} + c_t from s_0 = 0, over axis 1 of [B, T, D]. (A chunked closed-form
    scan was tried: on 2 CPU cores it was no faster than this loop at T = 128.)"""
    state, out = torch.zeros_like(c[:, 0]), []
    for t in range(c.shape[1]):
        state = f[:, t] * state + c[:, t]
        out.append(state)
    return torch.stack(out, 1)


class MLGRU(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.i_proj, self.f_proj, self.g_proj = (BitLinear(hidden, inner) for _ in range(3))
        self.o_proj = BitLinear(inner, hidden)
        self.g_norm = RMSNorm(inner)

    def forward(self, x, lb):
        f = lb + (1 - lb) * torch.sigmoid(self.f_proj(x))
        s = recurrence(f, F.silu(self.i_proj(x)) * (1 - f))
        return self.o_proj(self.g_norm(self.g_proj(x)) * F.silu(s))


class GLU(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = BitLinear(hidden, 2 * intermediate)
        self.down_proj = BitLinear(intermediate, hidden)

    def forward(self, x):
        gate, up = self.gate_proj(x).chunk(2, dim=-1)      # the first half is the gate
        return self.down_proj(up * F.silu(gate))


class Block(nn.Module):
    def __init__(self, m: spec_mod.ModelSpec):
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(m.hidden), MLGRU(m.hidden, m.inner)
        self.mlp_norm, self.mlp = RMSNorm(m.hidden), GLU(m.hidden, m.intermediate)

    def forward(self, h, lb):
        r = h + self.attn(self.attn_norm(h), lb)
        return r + self.mlp(self.mlp_norm(r))


class Backbone(nn.Module):
    def __init__(self, m: spec_mod.ModelSpec):
        super().__init__()
        self.embeddings = nn.Embedding(m.vocab, m.hidden)
        nn.init.normal_(self.embeddings.weight, std=0.02)
        self.lower_bounds = nn.Parameter(torch.zeros(m.layers, m.inner))
        self.layers = nn.ModuleList(Block(m) for _ in range(m.layers))
        self.norm = RMSNorm(m.hidden)

    def forward(self, ids):
        sm = torch.softmax(self.lower_bounds, dim=0)
        lb = torch.cumsum(sm, dim=0) - sm[0]                   # lb[0] == 0: layer 0 is unbounded
        h = self.embeddings(ids)
        for layer, bound in zip(self.layers, lb):
            h = layer(h, bound)
        return self.norm(h)


class TinyLM(nn.Module):
    """Module names follow the checkpoint keys: model.*, lm_head.*."""

    def __init__(self, m: spec_mod.ModelSpec):
        super().__init__()
        self.model = Backbone(m)
        self.lm_head = BitLinear(m.hidden, m.vocab)

    def forward(self, ids):
        return self.lm_head(self.model(ids))


# ----------------------------------------------------------------------------- training
def batches(data: np.ndarray, batch: int, length: int, rng: np.random.Generator):
    """Endless random windows of length+1 bytes: inputs and next-byte targets."""
    while True:
        starts = rng.integers(0, len(data) - length - 1, batch)
        window = torch.from_numpy(np.stack([data[s:s + length + 1] for s in starts]).astype(np.int64))
        yield window[:, :-1], window[:, 1:]


def learning_rate(step: int, args) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(args.steps - args.warmup, 1)
    return args.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def eval_loss(model: TinyLM, windows: np.ndarray) -> float:
    """Mean next-byte cross-entropy (nats) over held-out windows, each from the zero state."""
    model.eval()
    ids = torch.from_numpy(windows.astype(np.int64))
    total = sum(F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten(), reduction="sum").item()
                for x in ids.split(16))
    model.train()
    return total / (windows.shape[0] * (windows.shape[1] - 1))


def train(model: TinyLM, train_data, held_out, args) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    log = {"step": [], "train_loss": [], "eval_step": [], "eval_loss": []}
    data = batches(train_data, args.batch, args.seq_len, np.random.default_rng(args.seed))
    start, cpu_start = time.time(), time.process_time()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, args)
        x, y = next(data)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log["step"].append(step)
        log["train_loss"].append(loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            log["eval_step"].append(step + 1)
            log["eval_loss"].append(eval_loss(model, held_out))
            print(f"step {step + 1:5d}  train {np.mean(log['train_loss'][-args.eval_every:]):.4f}  "
                  f"eval {log['eval_loss'][-1]:.4f}  {time.time() - start:6.0f} s", flush=True)
    log["seconds"] = time.time() - start
    log["cpu_seconds"] = time.process_time() - cpu_start     # all threads
    return log


# ----------------------------------------------------------------------------- outputs
def plot(log: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    window = min(50, len(log["train_loss"]))
    smooth = np.convolve(log["train_loss"], np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(log["step"], log["train_loss"], color="tab:blue", alpha=0.2, lw=0.8)
    ax.plot(log["step"][window - 1:], smooth, color="tab:blue", label=f"train (mean of {window} steps)")
    ax.plot(log["eval_step"], log["eval_loss"], "o-", color="tab:red", ms=3, label="held-out")
    ax.set(xlabel="step", ylabel="cross-entropy (nats / byte)", ylim=(0, 4),
           title=f"tiny MatMul-free LM, QAT: {len(log['step'])} steps, {log['seconds'] / 60:.0f} min wall, "
                 f"{log['cpu_seconds'] / 60:.0f} CPU-min")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def golden_eval_loss(out: Path, windows: np.ndarray) -> float:
    """The same held-out loss, from the exported checkpoint through hlsgen's float golden model."""
    spec = spec_mod.load(out)
    model = golden.Model(spec.model, checkpoint.load(spec), "float")
    return quality.cross_entropy(model, windows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "tiny_lm")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--intermediate", type=int, default=256)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-windows", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    m = spec_mod.ModelSpec(vocab=256, hidden=args.hidden, layers=args.layers, intermediate_size=args.intermediate)
    split = quality.stdlib_split()
    train_data = np.frombuffer(quality.read_files(split["train"]), np.uint8)
    held_out = quality.windows(quality.read_files(split["held_out"]), args.seq_len + 1, args.eval_windows)
    print(f"corpus: {len(split['train'])} train files ({len(train_data):,} bytes), "
          f"{len(split['held_out'])} held-out files; torch {torch.__version__}, {args.threads} threads")

    model = TinyLM(m)
    log = train(model, train_data, held_out, args)
    args.out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    checkpoint.save_hf(args.out, m, tensors)
    golden_loss = golden_eval_loss(args.out, held_out)
    log.update(golden_float_eval_loss=golden_loss, args={k: str(v) for k, v in vars(args).items()},
               torch=torch.__version__, python=sys.version.split()[0])
    (args.out / "split.json").write_text(json.dumps(split, indent=1) + "\n")
    (args.out / "train_log.json").write_text(json.dumps(log) + "\n")
    plot(log, args.out / "loss_curve.png")
    print(f"{log['seconds'] / 60:.1f} min; eval loss {log['eval_loss'][-1]:.6f} (torch), "
          f"{golden_loss:.6f} (hlsgen float golden model)")
    # Same semantics, same windows: only fp32 summation order may differ.
    return 0 if abs(golden_loss - log["eval_loss"][-1]) < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
