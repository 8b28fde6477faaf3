"""RTL of the whole accelerator: one core that runs a token through every layer, from the plan.

templates/rtl/core.v.j2 prints `<top>_core`: the MVUs of rtl.py (one per projection kind, each
with its ROM of every layer's matrix), the fused quantiser with its output scale, and a sequencer
that steps through a program of stages printed from the plan (`program`): the embedding, the
quantisers and the MVUs.  What follows a stage's output runs fused into it, as the output comes:
each RMSNorm after the embedding or a residual, the MLGRU after the i/f/g MVUs (which run
together), the GLU after the gate MVU's up rows, the lm_head's argmax.  Tables (embedding, norm
weights, lower bounds, sigmoid) are ROM images read with $readmemh.  The numerics are those of
hlsgen/model/numerics.py, bit for bit.

Every value the core writes goes past a probe (dbg_pc, dbg_wr_valid, dbg_wr_index, dbg_wr_value,
a lane of the write bus each; a quantiser's codes, several a cycle, dbg_codes_valid,
dbg_codes_index, dbg_codes_value), so the whole-model cosim (sim/cocotb_whole.py) compares each
stage of each token with the golden fixed model and names the first one that differs.  The golden
values of every stage are written here (cosim/whole_expected.bin, indexed by cosim/whole.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from hlsgen.errors import HlsgenError
from hlsgen.hardware import perf
from hlsgen.hardware.planner import HardwarePlan, bits_for, scale_den_width
from hlsgen.model import golden
from hlsgen.model import numerics as nx
from hlsgen.model.spec import Spec
from hlsgen.model.weights import Weights
from hlsgen.project.calls import run_calls
from hlsgen.project.rtl import TRACE_NAMES, environment, mvu_rtls
from hlsgen.version import BANNER

WHOLE_INDEX = "cosim/whole.json"
WHOLE_EXPECTED = "cosim/whole_expected.bin"

# Operations of the sequencer (the `op` field of an instruction).
OPS = ("embed", "quantise", "mvu")
# Where each projection kind's rescaled outputs go; o and down add the residual on the way (i, f and g
# go straight into the MLGRU).
MVU_DESTINATIONS = {"o": "r", "gate": "gu", "down": "h", "lm_head": "logit"}
RESIDUAL_SOURCES = {"o": "h", "down": "r"}
BUFFERS = ("h", "r", "gu")       # the vector buffers; x, a BitLinear's input, is in banks
# i, f and g read one x and have one shape: their quantisers run as one pass and their MVUs
# together, each on its own slot (statistics channel, codes lanes and memory, output scale and
# rescale), and the MLGRU takes their outputs as they come; every other BitLinear runs alone on slot 0.
GROUP = ("i", "f", "g")


@dataclass(frozen=True)
class Quantiser:
    """One BitLinear's quantiser in a quantise stage (slot s of the stage is its s-th)."""
    kind: str
    golden: str              # its BitLinear's trace name (codes at .q, scale at .scale)
    gamma_base: int          # its gamma in the norm-weight ROM
    beta: int                # the kind's weight scale of this layer
    stats_base: int = 0      # its gamma in its slot's statistics ROM (the codes pass reads it there)


@dataclass(frozen=True)
class Instruction:
    """One stage of a token: what the sequencer runs, and what the cosim calls it."""
    op: str
    name: str                # stage name in reports: "attn.i", "attn_norm", ...
    layer: int               # -1 outside the layers
    length: int = 0          # elements of the pass (or rows of an MVU)
    kind: str = ""           # projection kind (quantise, mvu)
    # Fused into embed, o and down: the RMSNorm of what the stage writes (its name and layer); into
    # gate: the GLU (its trace name). Their output x goes on write lane 0, the stage's own on lane 1.
    norm: tuple = ()
    glu: str = ""
    gamma_base: int = 0      # that norm's or the MLGRU's weights in the norm-weight ROM
    quantisers: tuple = ()   # quantise: its Quantisers, slot by slot
    stats: tuple = ()        # norm, MLGRU, GLU: per slot, where its quantiser's gamma starts in that slot's statistics ROM
    golden: str = ""         # the golden model's trace name of what the stage writes
    group: tuple = ()        # an MVU of GROUP's kinds, slot by slot, with the MLGRU fused

    @property
    def writes_x(self) -> bool:
        """The stage writes a BitLinear's input x (and gathers its quantiser's statistics)."""
        return bool(self.norm or self.glu or self.group)

    @property
    def lanes(self) -> list[int]:
        """How many values the probe shows on each write lane, in the probe's order: a quantiser's
        codes then its scale, per slot; a fused norm's x, then the stage's own values; the GLU's x
        (half the gate's rows), then the gate's rows; else the pass, an MVU's rows or the MLGRU's x."""
        if self.op == "quantise":
            return [self.length + 1] * len(self.quantisers)
        if self.norm:
            return [self.length, self.length]
        if self.glu:
            return [self.length // 2, self.length]
        return [self.length]

    @property
    def probe_length(self) -> int:
        return sum(self.lanes)

    @property
    def lane_offsets(self) -> list[int]:
        """Where each lane's values start in the stage's probe values."""
        return [sum(self.lanes[:lane]) for lane in range(len(self.lanes))]


@dataclass(frozen=True)
class GammaTable:
    """The norm-weight ROM: every RMSNorm weight vector, one after another, and where each starts."""
    values: np.ndarray
    bases: dict              # (layer, name) -> base


def gamma_table(weights: Weights, fixed: golden.FixedArith) -> GammaTable:
    parts, bases, at = [], {}, 0

    def add(layer, name, vector):
        nonlocal at
        bases[(layer, name)] = at
        parts.append(fixed.gamma(vector))
        at += len(vector)

    for l, layer in enumerate(weights.layers):
        add(l, "attn_norm", layer.attn_norm)
        for kind in ("i", "f", "g", "o"):
            add(l, kind, getattr(layer, kind).norm)
        add(l, "g_norm", layer.g_norm)
        add(l, "mlp_norm", layer.mlp_norm)
        add(l, "gate", layer.gate.norm)
        add(l, "down", layer.down.norm)
    add(-1, "final_norm", weights.final_norm)
    add(-1, "lm_head", weights.lm_head.norm)
    return GammaTable(np.concatenate(parts).astype(np.int64), bases)


def program(plan: HardwarePlan, weights: Weights, gammas: GammaTable, n: nx.NumericsSpec) -> list[Instruction]:
    """The stages of one token, in order (MODEL_SPEC.md's forward pass)."""
    H, D, I = plan.hidden, plan.inner, plan.intermediate

    def traced(layer, name):
        return f"layer{layer}.{name}" if layer >= 0 else name

    def quantiser(layer, kind, projection):
        return Quantiser(kind, traced(layer, TRACE_NAMES[kind]), gammas.bases[(layer, kind)],
                         nx.beta_fixed(projection.scale, n))

    def fused(norm, layer):
        """The fields of a stage that also writes RMSNorm `norm` of layer `layer` of its output."""
        return {"norm": (norm, layer), "gamma_base": gammas.bases[(layer, norm)]}

    def bitlinear(layer, kind, name, projection, length, norm=None):
        output = {"o": "attn.residual", "down": "mlp.residual"}.get(kind, TRACE_NAMES[kind])
        return [Instruction("quantise", f"{name}.quantise", layer, length, kind,
                            quantisers=(quantiser(layer, kind, projection),)),
                Instruction("mvu", name + (f"+{traced(norm[1], norm[0])}" if norm else ""), layer,
                            plan.bitlinear(kind).rows, kind, golden=traced(layer, output), **(fused(*norm) if norm else {}))]

    def group(layer):
        name = "attn." + "/".join(GROUP)
        return [Instruction("quantise", f"{name}.quantise", layer, H, GROUP[0],
                            quantisers=tuple(quantiser(layer, kind, getattr(weights.layers[layer], kind)) for kind in GROUP)),
                Instruction("mvu", f"{name}+mlgru", layer, plan.bitlinear(GROUP[0]).rows, GROUP[0], group=GROUP,
                            gamma_base=gammas.bases[(layer, "g_norm")], golden=traced(layer, "attn.mlgru_out"))]

    # Every RMSNorm is fused into the stage that writes its input: the embedding (layer 0's
    # attn_norm), o's residual (mlp_norm) and down's (the next layer's attn_norm, or final_norm);
    # the MLGRU into the i/f/g MVUs; the GLU into the gate's MVU, as its second half (the up rows) comes out.
    L = len(weights.layers)
    prog = [Instruction("embed", "embedding+layer0.attn_norm", -1, H, golden="embedding", **fused("attn_norm", 0))]
    for l, layer in enumerate(weights.layers):
        prog += group(l)
        prog += bitlinear(l, "o", "attn.o+residual", layer.o, D, norm=("mlp_norm", l))
        quantise, gate = bitlinear(l, "gate", "mlp.gate", layer.gate, H)
        prog += [quantise, replace(gate, name="mlp.gate+glu", glu=traced(l, "mlp.glu"))]
        prog += bitlinear(l, "down", "mlp.down+residual", layer.down, I,
                          norm=("attn_norm", l + 1) if l + 1 < L else ("final_norm", -1))
    prog += bitlinear(-1, "lm_head", "lm_head", weights.lm_head, H)
    return gather_statistics_early(prog)


def gather_statistics_early(prog: list[Instruction]) -> list[Instruction]:
    """Give the pass that writes a quantise stage's input x (the one just before it) the base of
    each slot's gamma in that slot's statistics ROM, so that it gathers their statistics while it
    writes x; stats_tables lays the ROMs out in the same order."""
    out, writer, used = [], None, {}
    for ins in prog:
        if ins.writes_x:
            writer = len(out)
        elif ins.op == "quantise":
            if writer is None or out[writer].stats:
                raise HlsgenError(f"rtl core: quantise stage {ins.name} has no pass of its own before it that writes x")
            parts = []
            for slot, q in enumerate(ins.quantisers):
                parts.append(replace(q, stats_base=used.get(slot, 0)))
                used[slot] = used.get(slot, 0) + ins.length
            out[writer] = replace(out[writer], stats=tuple(q.stats_base for q in parts))
            ins = replace(ins, quantisers=tuple(parts))
        out.append(ins)
    return out


def stats_tables(prog: list[Instruction], gammas: GammaTable) -> list[np.ndarray]:
    """Per slot, the gammas of its quantisers in program order (the statistics ROM it reads)."""
    slots = max(len(ins.quantisers) for ins in prog if ins.op == "quantise")
    return [np.concatenate([gammas.values[q.gamma_base:q.gamma_base + ins.length]
                            for ins in prog if ins.op == "quantise" for q in ins.quantisers[slot:slot + 1]])
            for slot in range(slots)]


def signed_width(values: np.ndarray) -> int:
    """Two's-complement bits that hold every value."""
    lo, hi = int(np.min(values, initial=0)), int(np.max(values, initial=0))
    return max(bits_for(hi) + 1, bits_for(-lo - 1) + 1 if lo < 0 else 1)


def hex_words(values, width: int) -> str:
    mask = (1 << width) - 1
    digits = -(-width // 4)
    return "".join(f"{int(v) & mask:0{digits}x}\n" for v in values)


class CoreRtl:
    """What core.v.j2 prints, all from the plan (and the weights' constant tables)."""

    def __init__(self, spec: Spec, plan: HardwarePlan, weights: Weights):
        if plan.offchip:
            raise HlsgenError("rtl core: needs hardware.weights: onchip (the ROMs hold every ternary weight)")
        self.plan, self.top, self.n = plan, plan.top, spec.numerics
        self.c = plan.numerics
        self.mvus = mvu_rtls(plan)
        fixed = golden.FixedArith(spec.model, spec.numerics)
        self.gammas = gamma_table(weights, fixed)
        self.program = program(plan, weights, self.gammas, spec.numerics)
        self.stats = stats_tables(self.program, self.gammas)
        self.embedding = fixed.embed(weights.embeddings, np.arange(plan.vocab)).reshape(-1)
        self.lower_bounds = nx.to_fixed(weights.lower_bounds, spec.numerics.sigmoid_frac).reshape(-1)
        self.sigmoid = nx.SigmoidTable.build(spec.numerics).values

    # ------------------------------------------------------------------ names
    @property
    def module(self) -> str:
        return f"{self.top}_core"

    @property
    def verilog_path(self) -> str:
        return f"rtl/{self.module}.v"

    @property
    def sigmoid_module(self) -> str:
        return f"{self.module}_sigmoid"

    @property
    def sigmoid_path(self) -> str:
        return f"rtl/{self.sigmoid_module}.v"

    @property
    def mul_path(self) -> str:
        return f"rtl/{self.module}_mul.v"

    @property
    def sources(self) -> list[str]:
        """Every Verilog file of the core, itself first."""
        return [self.verilog_path, self.sigmoid_path, self.mul_path] + [m.verilog_path for m in self.mvus]

    def rom_file(self, table: str) -> str:
        return f"{self.module}_{table}.mem"

    # ------------------------------------------------------------------ widths (all from the plan)
    @property
    def token_w(self) -> int:
        return bits_for(self.plan.vocab - 1)

    @property
    def slot_w(self) -> int:
        return max(1, bits_for(self.plan.batch - 1))

    @property
    def act_w(self) -> int:
        return self.c["act_width"]

    @property
    def mix_w(self) -> int:
        return self.c["mix_width"]

    @property
    def in_w(self) -> int:
        return max(self.act_w, self.mix_w)

    @property
    def gamma_w(self) -> int:
        return self.c["gamma_width"]

    @property
    def state_w(self) -> int:
        return self.c["state_width"]

    @property
    def sig_w(self) -> int:
        """A sigmoid value 0 .. 2**Q, signed."""
        return self.c["sigmoid_frac"] + 2

    @property
    def lb_w(self) -> int:
        return max(self.sig_w, signed_width(self.lower_bounds))

    def widest(self, field: str) -> int:
        return perf.rtl_core_width(self.plan, field)

    @property
    def y_w(self) -> int:
        return self.widest("y_width")

    @property
    def sumsq_w(self) -> int:
        return self.widest("sumsq_width")

    @property
    def root_w(self) -> int:
        return self.widest("root_width")

    @property
    def beta_w(self) -> int:
        return self.widest("beta_width")

    @property
    def num_w(self) -> int:
        return self.widest("num_width")

    @property
    def acc_w(self) -> int:
        return self.widest("acc_width")

    @property
    def div_w(self) -> int:
        return perf.rtl_divider_width(self.plan)

    @property
    def rem_w(self) -> int:
        """The divider's remainder and denominator: a remainder stays below its denominator, the
        scale's (planner.scale_den_width) or the mean's K, so it needs their bits, not the
        dividend's (half the carry chains of its trial subtractions)."""
        return max(scale_den_width(self.root_w, self.scale_exponent), self.index_w)

    @property
    def simd_max(self) -> int:
        return max(m.simd for m in self.mvus)

    @property
    def pe_max(self) -> int:
        return max(m.pe for m in self.mvus)

    @property
    def vec_len(self) -> int:
        """The longest pass or output vector (the index width)."""
        return max([self.plan.hidden, self.plan.inner, 2 * self.plan.intermediate, self.plan.vocab]
                   + [m.cols for m in self.mvus])

    @property
    def index_w(self) -> int:
        return bits_for(self.vec_len)

    @property
    def code_beats(self) -> int:
        return max(m.cols // m.simd for m in self.mvus)

    @property
    def code_beats_w(self) -> int:
        return bits_for(self.code_beats - 1)

    @property
    def pc_w(self) -> int:
        return bits_for(len(self.program) - 1)

    @property
    def layer_w(self) -> int:
        return bits_for(max(self.plan.layers - 1, 1))

    @property
    def qlanes(self) -> int:
        """Codes a quantiser's pass makes per cycle (x and the quantisers' gammas are kept in as many
        banks): perf.rtl_quantiser_lanes."""
        return perf.rtl_quantiser_lanes(self.plan)

    @property
    def qlane_bits(self) -> int:
        return self.qlanes.bit_length() - 1

    @property
    def stats_channels(self) -> int:
        return len(self.stats)

    def stats_depth(self, channel: int) -> int:
        return len(self.stats[channel])

    @property
    def stats_addr_w(self) -> int:
        """An element of any channel's gammas (its bank: the low qlane_bits; its word: the rest)."""
        return max(bits_for(self.stats_depth(ch) - 1) for ch in range(self.stats_channels)) + self.qlane_bits

    def stats_bank_depth(self, channel: int) -> int:
        return self.stats_depth(channel) // self.qlanes

    @property
    def kind_w(self) -> int:
        return bits_for(len(self.mvus) - 1)

    def kind_index(self, kind: str) -> int:
        return [m.kind for m in self.mvus].index(kind)

    @property
    def gamma_depth(self) -> int:
        return len(self.gammas.values)

    @property
    def gamma_addr_w(self) -> int:
        return bits_for(self.gamma_depth - 1)

    @property
    def state_depth(self) -> int:
        return self.plan.batch * self.plan.layers * self.plan.inner

    @property
    def state_addr_w(self) -> int:
        return bits_for(self.state_depth - 1)

    @property
    def emb_addr_w(self) -> int:
        return bits_for(len(self.embedding) - 1)

    @property
    def lb_addr_w(self) -> int:
        return bits_for(len(self.lower_bounds) - 1)

    @property
    def sig_entries(self) -> int:
        return len(self.sigmoid)

    @property
    def sig_addr_w(self) -> int:
        return bits_for(self.sig_entries - 1)

    @property
    def sig_fine(self) -> int:
        return self.c["act_frac"] - self.c["sigmoid_step_bits"]

    @property
    def sig_max_mag(self) -> int:
        return (self.c["sigmoid_range"] << self.c["act_frac"]) - 1

    @property
    def scale_exponent(self) -> int:
        return self.c["scale_exponent"]

    @property
    def fresh_bits(self) -> int:
        return self.plan.batch * self.plan.layers

    @property
    def fresh_w(self) -> int:
        return max(bits_for(self.fresh_bits - 1), self.slot_w, self.layer_w)

    def buffer_depth(self, name: str) -> int:
        p = self.plan
        return {"h": p.hidden, "r": p.hidden, "x": max(p.hidden, p.inner, p.intermediate),
                "gu": 2 * p.intermediate}[name]

    def buffer_width(self, name: str) -> int:
        return self.in_w if name == "x" else self.act_w

    @property
    def buffers(self) -> tuple:
        return BUFFERS

    @property
    def write_lanes(self) -> int:
        """The write bus's lanes: a quantise stage of a group writes slot s's scale on lane s; a stage
        with a fused norm or GLU writes x on lane 0 and its own output on lane 1; lane 0 takes every
        other write."""
        return len(GROUP)

    def slot(self, kind: str) -> int:
        """A kind's slot: its place in GROUP, else 0."""
        return GROUP.index(kind) if kind in GROUP else 0

    # ------------------------------------------------------------------ files
    def rom_images(self) -> dict:
        return {
            "emb": hex_words(self.embedding, self.act_w),
            "gamma": hex_words(self.gammas.values, self.gamma_w),
            "lb": hex_words(self.lower_bounds, self.lb_w),
            "sigmoid": hex_words(self.sigmoid, self.sig_w),
        } | {f"qgamma{ch}_{q}": hex_words(values[q::self.qlanes], self.gamma_w)
             for ch, values in enumerate(self.stats) for q in range(self.qlanes)}


def render_core(core: CoreRtl, banner: str = BANNER) -> dict:
    """The core's own Verilog files (the MVUs are rtl.py's)."""
    env = environment()
    return {core.verilog_path: env.get_template("core.v.j2").render(
                c=core, banner=banner, MVU_DESTINATIONS=MVU_DESTINATIONS, RESIDUAL_SOURCES=RESIDUAL_SOURCES,
                GROUP=GROUP),
            core.sigmoid_path: env.get_template("core_sigmoid.v.j2").render(c=core, banner=banner),
            core.mul_path: env.get_template("core_mul.v.j2").render(c=core, banner=banner)}


# ----------------------------------------------------------------------------- golden probe values
def expected_stages(spec: Spec, weights: Weights, core: CoreRtl, calls: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """What the probe must show, per token [T, sum of probe lengths], from the golden fixed model's
    trace over the testbench's calls (checked to be the run whose logits the project holds)."""
    trace = golden.Trace()
    model = golden.Model(spec.model, weights, "fixed", spec.numerics)
    if not np.array_equal(run_calls(model, calls, trace), logits):
        raise HlsgenError("rtl core: the golden model did not reproduce the testbench logits")
    fixed = golden.FixedArith(spec.model, spec.numerics)
    get = trace.get
    tokens = len(logits)

    def norm_weight(name, layer):
        return weights.final_norm if layer < 0 else getattr(weights.layers[layer], name)

    columns = []
    for ins in core.program:
        if ins.norm:        # lane 0: the fused norm of the stage's output; lane 1: that output
            columns.append(np.concatenate([fixed.norm(get(ins.golden), norm_weight(*ins.norm)), get(ins.golden)], axis=1))
        elif ins.glu:
            columns.append(np.concatenate([get(ins.glu), get(ins.golden)], axis=1))
        elif ins.op == "quantise":
            columns.append(np.concatenate([column for q in ins.quantisers
                                           for column in (get(q.golden + ".q"), get(q.golden + ".scale").reshape(tokens, 1))],
                                          axis=1))
        else:
            columns.append(get(ins.golden))
    for ins, column in zip(core.program, columns):
        if column.shape != (tokens, ins.probe_length):
            raise HlsgenError(f"rtl core: stage {ins.name} has {column.shape[1]} golden values, "
                              f"the probe shows {ins.probe_length}")
    return np.concatenate([np.asarray(c, dtype=np.int64) for c in columns], axis=1)


def whole_index(core: CoreRtl) -> dict:
    stages, offset = [], 0
    for pc, ins in enumerate(core.program):
        stages.append({"pc": pc, "op": ins.op, "name": ins.name, "layer": ins.layer, "kind": ins.kind,
                       "length": ins.probe_length, "offset": offset, "lane_offsets": ins.lane_offsets})
        offset += ins.probe_length
    return {
        "generated_by": BANNER, "module": core.module, "verilog": core.verilog_path,
        "sources": core.sources,
        "mems": [f"rtl/{core.rom_file(t)}" for t in core.rom_images()] + [f"rtl/{m.mem_file}" for m in core.mvus],
        "expected": WHOLE_EXPECTED, "values_per_token": offset, "stages": stages,
        "vocab": core.plan.vocab, "batch": core.plan.batch, "layers": core.plan.layers,
        "token_w": core.token_w, "slot_w": core.slot_w, "act_w": core.act_w, "codes_lanes": core.qlanes,
        "write_lanes": core.write_lanes,
        "mvu_cycles": sum(m.cycles_per_matrix * m.matrices for m in core.mvus),
    }


def project_files(spec: Spec, plan: HardwarePlan, weights: Weights, vectors) -> dict:
    """rtl/<top>_core.v and its ROM images, and the golden probe values of the whole-model cosim.
    Designs with weights off chip have no core (the ROMs would not hold them)."""
    if plan.offchip:
        return {}
    core = CoreRtl(spec, plan, weights)
    files = render_core(core)
    for table, text in core.rom_images().items():
        files[f"rtl/{core.rom_file(table)}"] = text
    files[WHOLE_EXPECTED] = expected_stages(spec, weights, core, vectors.calls, vectors.logits).astype("<i8").tobytes()
    files[WHOLE_INDEX] = json.dumps(whole_index(core), indent=1) + "\n"
    return files
