"""HardwarePlan + weights + golden vectors -> RenderedProject {relpath: text | bytes}.

Templates (templates/*.j2) only print what the plan and the tables say.  Writing is atomic:
the new tree is staged beside the old one and switched in under a per-output lock
(project/swap.py), so concurrent, failed or killed builds leave a whole project, old or new;
unchanged files keep their timestamps.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import yaml

from hlsgen.model import checkpoint
from hlsgen.model import numerics as nx
from hlsgen.errors import HlsgenError
from hlsgen.project import rtl, rtl_core, swap, vendor
from hlsgen.project.integrity import MANIFEST
from hlsgen.hardware.memories import plan_memories
from hlsgen.hardware.planner import INT32_SLOTS, HardwarePlan
from hlsgen.model.spec import Spec, load as spec_load
from hlsgen.project.words import kind_words, stripe_buffers
from hlsgen import resources
from hlsgen.version import BANNER, __version__
from hlsgen.model.weights import Weights

CXXFLAGS = ("-std=c++17 -O2 -Wall -Wextra -Werror -Wno-unknown-pragmas -Wno-unused-label "
            "-Wno-uninitialized -Wno-maybe-uninitialized")


# ----------------------------------------------------------------------------- constant tables
@dataclass(frozen=True)
class Table:
    """One C++ constant array: `static const ctype name dims = body;`."""
    comment: str
    ctype: str
    name: str
    dims: str
    body: str


def c_literal(values: np.ndarray, suffix: str = "") -> str:
    """Nested C braces for an integer array of any rank."""
    if values.ndim == 1:
        return "{" + ", ".join(f"{int(v)}{suffix}" for v in values) + "}"
    return "{\n" + ",\n".join(c_literal(row, suffix) for row in values) + "}"


def table(comment: str, ctype: str, name: str, values: np.ndarray, suffix: str = "") -> Table:
    values = np.asarray(values)
    return Table(comment, ctype, name, "".join(f"[{d}]" for d in values.shape), c_literal(values, suffix))


class ConstantSaturations(dict):
    """How many constants (embeddings, norm weights) were clamped to their format."""

    def fixed(self, name: str, values, frac: int, width: int) -> np.ndarray:
        raw = nx.to_fixed(values, frac)
        clamped = nx.clamp_constant(raw, width)
        if np.any(clamped != raw):
            self[name] = int(np.count_nonzero(clamped != raw))
        return clamped


def fixed_embedding(spec: Spec, weights: Weights, clamps: ConstantSaturations) -> np.ndarray:
    n = spec.numerics
    return clamps.fixed("EMBEDDING", weights.embeddings, n.act.frac, n.act.width)


def sigmoid_tables(plan: HardwarePlan, values: np.ndarray) -> list[Table]:
    """The sigmoid table once per copy the port budget gives each stage (hardware/memories.py): the
    values once, as a macro, and each copy array a list of that macro."""
    body = "HLSGEN_SIGMOID_VALUES"
    out = [Table("SIGMOID_VALUES: sigmoid(k * 2**-step_bits), the body of every copy below", "", "", "",
                 f"#define {body} " + c_literal(values))]
    for m in plan_memories(plan):
        if m.name.startswith("SIGMOID_"):
            out.append(Table(f"{m.name}: {m.copies} copies, {m.max_accesses_per_bank} reads per bank per cycle", "sigmoid_rom_t",
                             m.name, f"[{m.copies}][{len(values)}]", "{" + ", ".join([body] * m.copies) + "}"))
    return out


def engine_norm_tables(spec: Spec, plan: HardwarePlan, e, weights: Weights, clamps: ConstantSaturations) -> list[Table]:
    """GAMMA_<ENGINE> [kinds x matrices][cols] and BETA_<ENGINE> [kinds x matrices]: row
    k * matrices + l is projection k of the engine in layer l (rows padded with zeros to the
    engine's columns; the lm_head has one matrix), so the engine's single call site picks its
    norm weights and scale by index."""
    n = spec.numerics
    matrices = max(plan.bitlinear(k).matrices for k in e.kinds)
    gammas = np.zeros((len(e.kinds) * matrices, e.config.cols), np.int64)
    betas = np.zeros(len(e.kinds) * matrices, np.uint64)
    for j, kind in enumerate(e.kinds):
        projs = weights.of_kind(kind)[:plan.bitlinear(kind).matrices]
        norms = clamps.fixed(f"GAMMA_{kind.upper()}", np.stack([p.norm for p in projs]), n.gamma.frac, n.gamma.width)
        gammas[j * matrices:j * matrices + len(projs), :norms.shape[1]] = norms
        betas[j * matrices:j * matrices + len(projs)] = [nx.beta_fixed(p.scale, n) for p in projs]
    name = e.name.upper()
    return [table(f"GAMMA_{name}: each projection's own norm weights, row k * {matrices} + layer", "gamma_rom_t",
                  f"GAMMA_{name}", gammas),
            table(f"BETA_{name}: weight scale mean|W|, row k * {matrices} + layer", "unsigned long long",
                  f"BETA_{name}", betas, "ULL")]


def constant_tables(spec: Spec, plan: HardwarePlan, weights: Weights, clamps: ConstantSaturations) -> list[Table]:
    n = spec.numerics
    layers = weights.layers

    def gammas(name, arrays):
        return table(f"{name}: RMSNorm weights, {n.gamma.frac} fraction bits", "gamma_rom_t", name,
                     clamps.fixed(name, np.stack(arrays), n.gamma.frac, n.gamma.width))

    tables = [
        gammas("ATTN_NORM", [l.attn_norm for l in layers]),
        gammas("G_NORM", [l.g_norm for l in layers]),
        gammas("MLP_NORM", [l.mlp_norm for l in layers]),
        table("FINAL_NORM", "gamma_rom_t", "FINAL_NORM",
              clamps.fixed("FINAL_NORM", weights.final_norm, n.gamma.frac, n.gamma.width)[None]),
        table(f"LOWER_BOUND: forget-gate lower bounds, {n.sigmoid_frac} fraction bits", "sigmoid_rom_t", "LOWER_BOUND",
              nx.to_fixed(weights.lower_bounds, n.sigmoid_frac)),
    ] + sigmoid_tables(plan, nx.SigmoidTable.build(n).values)
    if not plan.offchip:
        tables.append(table(f"EMBEDDING: {n.act.frac} fraction bits", "act_rom_t", "EMBEDDING",
                            fixed_embedding(spec, weights, clamps)))
    for e in plan.engines:
        tables += engine_norm_tables(spec, plan, e, weights, clamps)
    for e in plan.engines if not plan.offchip else ():
        # One ROM per engine: its kinds' lane words one after another (each from its base_word).
        words = np.concatenate([kind_words(plan, weights, kind) for kind in e.kinds])
        tables.append(Table(f"{e.rom}: packed ternary codes of {', '.join(e.kinds)}", "uint64_t", e.rom,
                            f"[{len(words)}][{words.shape[1]}]",
                            "{\n" + ",\n".join("{" + ", ".join(f"0x{int(x):016x}ULL" for x in w) + "}"
                                               for w in words) + "}"))
    return tables


# ----------------------------------------------------------------------------- the project
@dataclass(frozen=True)
class GoldenVectors:
    """The token sequence the testbench runs, and what the golden fixed model says about it."""
    calls: np.ndarray            # int32 [C, calls.CALL_WIDTH]: the top's calls (calls.testbench_calls)
    logits: np.ndarray           # int32 [T, V], raw fixed-point logits
    next_tokens: np.ndarray      # int32 [T]
    saturations: dict            # clamps per site in the golden fixed model over this sequence


class RenderedProject(dict):
    """{relpath: str | bytes}; write() puts it on disk atomically."""

    def digest(self) -> str:
        h = hashlib.sha256()
        for path in sorted(self):
            h.update(path.encode())
            h.update(_bytes(self[path]))
        return h.hexdigest()

    def write(self, out: Path) -> list[str]:
        """Write atomically under the output's lock (project/swap.py); return the relpaths whose
        content changed or that are gone."""
        out = Path(out)
        try:
            out = out.parent.resolve() / out.name      # a symlink loop above it raises here
            if out.is_symlink():
                out = out.resolve(strict=True)         # write the tree the link names, keep the link
            if out.exists() and not out.is_dir():
                raise HlsgenError(f"project.output: {out} is a file, not a directory (allowed: a new or "
                                  f"existing project directory)")
            out.parent.mkdir(parents=True, exist_ok=True)
            with swap.output_lock(out):
                swap.recover(out)
                stage = swap.staging_name(out, swap.NEW)
                try:
                    changed = self._stage(out, stage)
                    swap.pause_point("staged")
                    swap.switch(stage, out)
                except BaseException:
                    shutil.rmtree(stage, ignore_errors=True)    # a failed build leaves no half-written tree
                    raise
            return changed
        except OSError as exc:
            raise HlsgenError(f"project.output: cannot write {exc.filename or out} ({exc.strerror or exc}); "
                              f"the previous project, if any, is unchanged") from None
        except RuntimeError as exc:                    # Path.resolve() on a symlink loop (Python < 3.13)
            raise HlsgenError(f"project.output: {out}: {exc} (allowed: a path without symlink loops)") from None

    def _stage(self, out: Path, stage: Path) -> list[str]:
        """The new tree in `stage`; returns the relpaths whose content changed."""
        if out.exists():
            # Hard links keep unchanged files (and their timestamps) at no copying cost.
            shutil.copytree(out, stage, copy_function=os.link, symlinks=True)
        else:
            stage.mkdir()
        # Files the last build generated and this one doesn't (e.g. w_*.bin after a move on chip)
        # go; anything else in the tree (csim.exe, vendor runs) is not ours to delete.
        changed = sorted(_generated_before(stage) - set(self))
        for rel in changed:
            (stage / rel).unlink(missing_ok=True)
        for rel, content in sorted(self.items()):
            target = stage / rel
            data = _bytes(content)
            if target.is_file() and target.read_bytes() == data:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)      # never write through a link into the old tree
            target.write_bytes(data)
            swap.fault_point(str(target))
            changed.append(rel)
        return changed


def _generated_before(tree: Path) -> set[str]:
    """The relpaths the manifest in `tree` lists (empty when there is none)."""
    manifest = tree / MANIFEST
    try:
        listed = json.loads(manifest.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()       # none, or unreadable: nothing is known to be ours, so nothing is deleted
    return set(listed) | {MANIFEST}


def _bytes(content) -> bytes:
    return content if isinstance(content, bytes) else content.encode()


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(resources.templates()), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


AP_TYPES_DIR = "src/ap_types"     # as hls4ml's firmware/ap_types: the Makefile's csim needs no Python


def ap_types_files() -> dict:
    """The ap_types headers the project compiles against, copied from the installed hls4ml
    package.  Its hls_stream.h comes along only while kernels_cpp/ has no stream header of its own."""
    source = resources.ap_types()
    patterns = resources.AP_TYPES_PATTERNS
    if not (resources.kernels() / "hls_stream.h").is_file():
        patterns += ("hls_stream.h",)
    return {f"{AP_TYPES_DIR}/{path.relative_to(source).as_posix()}": path.read_bytes()
            for pattern in patterns for path in sorted(source.glob(pattern))}


CONFIG_COPY = "hlsgen_config.yaml"


def config_files(spec: Spec, plan: HardwarePlan) -> dict:
    """The validated config as the project keeps it (report and csim read it, not the original),
    and the board file when the config named one by path."""
    shipped = plan.board.shipped
    config = spec.as_config(board=None if shipped else vendor.BOARD_COPY, weights_sha256=checkpoint.digest(spec))
    header = (f"# {BANNER}\n# The config this project was built from, validated, with every default spelled out; "
              f"paths are relative to this file.\n")
    files = {CONFIG_COPY: header + yaml.safe_dump(config, sort_keys=False)}
    if not shipped:
        files[vendor.BOARD_COPY] = plan.board.source.read_bytes()
    return files


def project_spec(project: Path) -> Spec:
    """The spec a project was built from, read from its own copy of the config."""
    path = Path(project) / CONFIG_COPY
    if not path.is_file():
        raise HlsgenError(f"{project}: no {CONFIG_COPY} (allowed: a project written by this hlsgen, which keeps "
                          f"its config there; rebuild it with `hlsgen build`)")
    return spec_load(path)


def project(spec: Spec, plan: HardwarePlan, weights: Weights, vectors: GoldenVectors, root: Path) -> RenderedProject:
    """Every file of the generated project. `root` is where it will live (for absolute vendor paths)."""
    env = _environment()
    top = plan.top
    clamps = ConstantSaturations()
    context = dict(banner=BANNER, top=top, plan=plan, root=str(root), cxxflags=CXXFLAGS, spec_digest=spec.digest(),
                   tb=dict(calls=len(vectors.calls), tokens=len(vectors.logits)),
                   tables=constant_tables(spec, plan, weights, clamps), memories=plan_memories(plan),
                   engine_matrices={e.name: max(plan.bitlinear(k).matrices for k in e.kinds) for e in plan.engines},
                   engine_out_depth={e.name: max(plan.bitlinear(k).rows // e.config.pe for k in e.kinds)
                                     for e in plan.engines})
    files = RenderedProject()
    for template, rel in (("top.h.j2", f"src/{top}.h"), ("config.h.j2", f"src/{top}_config.h"),
                          ("weights.h.j2", f"src/{top}_weights.h"), ("top.cpp.j2", f"src/{top}.cpp"),
                          ("tb.cpp.j2", f"tb/{top}_tb.cpp"), ("run_hls.tcl.j2", "hls/run_hls.tcl"),
                          ("hls_config.cfg.j2", "hls/hls_config.cfg"), ("Makefile.j2", "Makefile"),
                          ("README.md.j2", "README.md"), ("csim_device.cpp.j2", "host/csim_device.cpp")):
        files[rel] = env.get_template(template).render(**context)
    files.update(vendor.project_files(plan, env, context))     # bitstream flow, flashing, host drivers
    for header in sorted(resources.kernels().glob("*.h")):
        files[f"src/hlsgen/{header.name}"] = f"// {BANNER} (copied from kernels_cpp/{header.name})\n" + header.read_text()
    files.update(ap_types_files())
    files.update(config_files(spec, plan))
    files["tb/data/calls.bin"] = vectors.calls.astype("<i4").tobytes()
    files["tb/data/expected_logits.bin"] = vectors.logits.astype("<i4").tobytes()
    files["tb/data/expected_next.bin"] = vectors.next_tokens.astype("<i4").tobytes()
    if plan.offchip:
        table = fixed_embedding(spec, weights, clamps).astype("<i4").reshape(-1)
        padding = np.zeros(plan.embedding_words * INT32_SLOTS - table.size, "<i4")   # to whole words
        files["tb/data/emb_table.bin"] = np.concatenate([table, padding]).tobytes()
        for port, buffer in zip(plan.weight_ports, stripe_buffers(plan, weights)):
            files[port.data] = np.ascontiguousarray(buffer, "<u8").tobytes()
    files.update(rtl.project_files(spec, plan, weights, vectors))   # rtl/ and cosim/
    files.update(rtl_core.project_files(spec, plan, weights, vectors))   # the whole core in RTL
    files[MANIFEST] = json.dumps({
        "generated_by": BANNER,
        "hlsgen_version": __version__,
        "source": str(Path(spec.source).resolve()) if spec.source is not None else None,
        "spec_digest": spec.digest(),
        "top": top,
        "constant_saturations": dict(clamps),
        # Device buffers in upload order (host/csim_device.cpp numbers them the same way).
        "memory_ports": ["emb_table"] + [p.name for p in plan.weight_ports] if plan.offchip else [],
        "golden_saturations": dict(sorted(vectors.saturations.items())),
        "files": {rel: hashlib.sha256(_bytes(c)).hexdigest() for rel, c in sorted(files.items())},
    }, indent=2) + "\n"
    return files
