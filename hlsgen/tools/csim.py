"""`hlsgen csim`: compile the generated project with g++ against the ap_types headers, run the
self-checking testbench, and on a mismatch name the first diverging tensor.  Each run, passed or
failed, is recorded in <project>/report/csim.json, which `hlsgen report` reads.

No Vitis is needed: a project compiles against its own copy of the Xilinx ap_types headers
(src/ap_types, copied from the installed hls4ml package at build time), or against
$XILINX_HLS/include when Vitis is installed.  Binaries are cached by content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hlsgen.model import checkpoint
from hlsgen.model import golden
from hlsgen.project import integrity
from hlsgen.project.calls import read_calls, run_calls
from hlsgen import progress, resources
from hlsgen.errors import HlsgenError, tool_failure
from hlsgen.project.render import AP_TYPES_DIR, CONFIG_COPY, CXXFLAGS, project_spec

SANITIZE_FLAGS = "-O1 -g -fsanitize=address,undefined -fno-sanitize=shift -fno-omit-frame-pointer"
# Every DATAFLOW region's processes in threads, each stream a blocking FIFO of its declared depth:
# a too-shallow channel deadlocks as in hardware (kernels_cpp/hlsgen_stream.h; `make csim-threads`).
DATAFLOW_THREAD_FLAGS = ("-DHLSGEN_DATAFLOW_THREADS", "-pthread")
REPORT = "report/csim.json"
COMPARED = "every logit and next token of the testbench, and the saturation counts, against the golden fixed model"


@dataclass
class SimResult:
    passed: bool
    output: str
    seconds_compile: float
    seconds_run: float
    cached: bool
    saturations: dict = field(default_factory=dict)
    divergence: str | None = None
    record: Path | None = None       # report/csim.json


def _vitis_include() -> Path | None:
    vitis = os.environ.get("XILINX_HLS")
    if vitis and (Path(vitis) / "include" / "ap_int.h").is_file():
        return Path(vitis) / "include"
    return None


def ap_include() -> Path:
    """The ap_types headers of code outside a project (the kernel tests): Vitis's own when
    installed, else the copy inside the hls4ml package."""
    return _vitis_include() or resources.ap_types()


def project_ap_include(project: Path) -> Path:
    """The ap_types headers a project compiles against: Vitis's own when installed, else its copy."""
    vitis = _vitis_include()
    if vitis:
        return vitis
    own = Path(project) / AP_TYPES_DIR
    if not (own / "ap_int.h").is_file():
        raise HlsgenError(f"{project}: {AP_TYPES_DIR}/ap_int.h is missing (allowed: a project built by this hlsgen, "
                          f"which copies the ap_types headers into it; rebuild it with `hlsgen build`)")
    return own


def _manifest(project: Path) -> dict:
    return integrity.load_manifest(project)


def _cache_dir() -> Path:
    return Path(os.environ.get("HLSGEN_CACHE", Path.home() / ".cache" / "hlsgen")) / "csim"


def cxx() -> str:
    """The C++ compiler: $CXX, else g++."""
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        raise HlsgenError("csim: no C++ compiler on PATH (allowed: install g++, e.g. `apt-get install g++`)")
    return compiler


def compile_cached(sources: list[Path], include_dirs: list[Path], hashed: dict[str, bytes], sanitize: bool = False,
                   what: str = "", extra_flags: tuple = (), ap_types: Path | None = None) -> tuple[Path, bool, float]:
    """Compile `sources` into one binary, cached by the hash of the compiler, the flags and `hashed`
    ({name: content} of every file the binary depends on); returns (binary, was cached, seconds).
    `ap_types`: headers whose content is in `hashed` (a project's copy), so that a moved or copied
    project hits the cache; None: ap_include(), keyed by its path."""
    compiler = cxx()
    include = ap_types or ap_include()
    flags = CXXFLAGS.split() + (SANITIZE_FLAGS.split() if sanitize else []) + list(extra_flags)
    key = hashlib.sha256()
    # A project's own copy is in `hashed`: its path stays out of the key, so a moved project hits the cache.
    own_copy = ap_types is not None and ap_types != _vitis_include()
    for part in [compiler, *flags, "the project's ap_types" if own_copy else str(include)]:
        key.update(part.encode())
    for name, content in hashed.items():
        key.update(name.encode())
        key.update(content)
    binary = _cache_dir() / key.hexdigest()[:32] / "csim.exe"
    if _cached_binary_is_whole(binary):
        progress.say(f"csim: {what}: cache hit, no compile ({binary.parent})")
        return binary, True, 0.0
    progress.say(f"csim: compiling {what} with g++ (about {_expected_seconds(sanitize):.0f} s)")
    command = [compiler, *flags, "-isystem", str(include), *(f"-I{d}" for d in include_dirs),
               *map(str, sources), "-o"]
    start = time.perf_counter()
    try:
        binary.parent.mkdir(parents=True, exist_ok=True)
        # Per-process partial files: two runs compiling the same key cannot write into each other.
        partial = binary.with_suffix(f".{os.getpid()}.partial")
        done = subprocess.run(command + [str(partial)], capture_output=True, text=True)
        if done.returncode != 0:
            raise tool_failure(f"csim: g++ failed (exit {done.returncode}) on {what}", done.stderr)
        # The digest first: a binary in place always has its digest beside it.
        digest = binary.with_suffix(f".{os.getpid()}.sha256")
        digest.write_text(hashlib.sha256(partial.read_bytes()).hexdigest())
        digest.rename(binary.with_suffix(".sha256"))
        partial.rename(binary)
    except OSError as exc:
        raise HlsgenError(f"csim: cannot write the binary cache {_cache_dir()} ({exc.strerror or exc}: "
                          f"{exc.filename}) (allowed: a writable directory in HLSGEN_CACHE)") from None
    seconds = time.perf_counter() - start
    _remember_seconds(sanitize, seconds)
    return binary, False, seconds


# The last compile's time, kept beside the cache, is the next one's "about N s".
FIRST_GUESS_SECONDS = {False: 25.0, True: 60.0}


def _timings() -> Path:
    return _cache_dir() / "compile_seconds.json"


def _expected_seconds(sanitize: bool) -> float:
    try:
        return float(json.loads(_timings().read_text())[str(sanitize)])
    except (OSError, ValueError, KeyError, TypeError):
        return FIRST_GUESS_SECONDS[sanitize]


def _remember_seconds(sanitize: bool, seconds: float) -> None:
    try:
        known = json.loads(_timings().read_text())
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    known[str(sanitize)] = round(seconds, 1)
    partial = _timings().with_suffix(f".{os.getpid()}.{threading.get_ident()}.partial")   # threads compile too
    partial.write_text(json.dumps(known))
    partial.replace(_timings())


def _cached_binary_is_whole(binary: Path) -> bool:
    """A cached binary with the digest it was written with; a corrupt one is said so and rebuilt."""
    try:
        if not binary.is_file():
            return False
        if hashlib.sha256(binary.read_bytes()).hexdigest() == binary.with_suffix(".sha256").read_text().strip():
            return True
    except OSError:
        pass
    print(f"hlsgen: the cached binary {binary} is corrupt (its digest does not match); rebuilding it",
          file=sys.stderr)
    return False


def compile_csim(project: Path, sanitize: bool = False, extra_flags: tuple = ()) -> tuple[Path, bool, float]:
    """Compile the top and the testbench (with `extra_flags`: a csim mode such as
    DATAFLOW_THREAD_FLAGS); returns (binary, was cached, seconds)."""
    top = _manifest(project)["top"]
    sources = [project / "src" / f"{top}.cpp", project / "tb" / f"{top}_tb.cpp"]
    hashed = {path.relative_to(project).as_posix(): path.read_bytes()
              for path in sorted((project / "src").rglob("*")) + sources if path.is_file()}
    return compile_cached(sources, [project / "src"], hashed, sanitize, f"the generated project {project}"
                          + (f" ({' '.join(extra_flags)})" if extra_flags else ""),
                          extra_flags=extra_flags, ap_types=project_ap_include(project))


def _parse_saturations(output: str) -> dict:
    match = re.search(r"^saturations:(.*)$", output, re.M)
    if not match:
        return {}
    return {name: int(count) for name, count in (item.split("=") for item in match.group(1).split())}


def run(project: Path, sanitize: bool = False, dataflow_threads: bool = False) -> SimResult:
    project = Path(project).resolve()
    integrity.check(project)    # not a project, or a broken one: an error, and no record written into it
    started = time.perf_counter()
    try:
        result = _run(project, sanitize, dataflow_threads)
    except HlsgenError as exc:
        # A csim that did not compile must not leave an earlier run's PASS in the report.
        write_record(project, None, sanitize, time.perf_counter() - started, error=str(exc),
                     dataflow_threads=dataflow_threads)
        raise
    result.record = write_record(project, result, sanitize, time.perf_counter() - started,
                                 dataflow_threads=dataflow_threads)
    return result


def _run(project: Path, sanitize: bool, dataflow_threads: bool = False) -> SimResult:
    flags = DATAFLOW_THREAD_FLAGS if dataflow_threads else ()
    binary, cached, seconds_compile = compile_csim(project, sanitize, flags)
    start = time.perf_counter()
    try:
        done = subprocess.run([str(binary)], cwd=project / "tb", capture_output=True, text=True)
    except OSError as exc:
        # A binary that passed its digest check and still does not start: drop it and compile once more.
        print(f"hlsgen: the cached binary {binary} does not run ({exc.strerror}); rebuilding it", file=sys.stderr)
        binary.unlink(missing_ok=True)
        binary, cached, seconds_compile = compile_csim(project, sanitize, flags)
        try:
            done = subprocess.run([str(binary)], cwd=project / "tb", capture_output=True, text=True)
        except OSError as again:
            raise HlsgenError(f"csim: the compiled testbench {binary} does not run ({again.strerror}); is "
                              f"HLSGEN_CACHE on a noexec filesystem?") from None
    seconds_run = time.perf_counter() - start
    output = done.stdout + done.stderr
    result = SimResult(passed=done.returncode == 0 and "PASS" in done.stdout, output=output,
                       seconds_compile=seconds_compile, seconds_run=seconds_run, cached=cached,
                       saturations=_parse_saturations(done.stdout))
    if not result.passed and done.returncode == 1:
        result.divergence = first_divergence(project, binary)
    expected = _manifest(project).get("golden_saturations", {})
    if result.passed and result.saturations != expected:
        result.passed = False
        result.divergence = f"saturation counts differ: csim {result.saturations}, golden {expected}"
    return result


# ----------------------------------------------------------------------------- report/csim.json
def _count(pattern: str, output: str) -> list[int] | None:
    match = re.search(pattern, output, re.M)
    return [int(g) for g in match.groups()] if match else None


def _compiler_version(compiler: str) -> str:
    done = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return (done.stdout.splitlines() or ["unknown"])[0]


def manifest_digest(project: Path) -> str | None:
    path = project / "hlsgen_manifest.json"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _unexplained(result: SimResult) -> str | None:
    """What a failed run printed, when it is not a mismatch with a divergence (a crash, a sanitizer)."""
    if result.passed or result.divergence:
        return None
    return result.output[-2000:] or "the testbench printed nothing"


def write_record(project: Path, result: SimResult | None, sanitize: bool, seconds: float,
                 error: str | None = None, dataflow_threads: bool = False) -> Path:
    """report/csim.json, written atomically: what was compared and how it came out (`result` None:
    the run stopped at `error`, before the testbench ran)."""
    output = result.output if result else ""
    checked = _count(r"^checked (\d+) tokens x (\d+) logits: (\d+) mismatches$", output)
    max_difference = _count(r"^max logit difference: (\d+)$", output)
    first_mismatch = re.search(r"^MISMATCH .*$", output, re.M)
    try:
        compiler = cxx()
        compiler = {"path": compiler, "version": _compiler_version(compiler)}
    except HlsgenError:
        compiler = None
    try:
        headers = str(project_ap_include(project))
    except HlsgenError:
        headers = None
    record = {
        "passed": bool(result and result.passed),
        "compared": COMPARED,
        "tokens": checked[0] if checked else None,
        "vocab": checked[1] if checked else None,
        # each token's logits and its next token
        "values_compared": checked[0] * (checked[1] + 1) if checked else 0,
        "mismatches": checked[2] if checked else None,
        "max_logit_difference": max_difference[0] if max_difference else None,
        "first_mismatch": first_mismatch.group(0) if first_mismatch else None,
        "first_divergence": result.divergence if result else None,
        "error": error if result is None else _unexplained(result),
        "saturations": result.saturations if result else {},
        "golden_saturations": _manifest(project).get("golden_saturations", {}),
        "compiler": compiler, "ap_types": headers, "sanitize": sanitize, "dataflow_threads": dataflow_threads,
        "cached_binary": result.cached if result else False,
        "seconds": {"wall": seconds, "compile": result.seconds_compile if result else None,
                    "run": result.seconds_run if result else None},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # A rebuild changes the manifest: the report can tell a record of an older build.
        "manifest_sha256": manifest_digest(project),
    }
    path = project / REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(path)
    return path


def run_vitis(project: Path) -> int:
    """The vendor csim through the generated Tcl; only where vitis_hls is installed."""
    project = Path(project).resolve()
    _manifest(project)
    command = ["vitis_hls", "-f", "hls/run_hls.tcl", "-tclargs", "csim"]
    if shutil.which("vitis_hls") is None:
        raise HlsgenError(f"csim --tool vitis: vitis_hls is not on PATH (allowed: source a Vitis HLS "
                          f"settings64.sh, then run `cd {project} && {' '.join(command)}`)")
    done = subprocess.run(command, cwd=project, capture_output=True, text=True)
    log = done.stdout + done.stderr
    print(log[-4000:])
    # vitis_hls's exit status on a failed csim is not documented; its log is.
    failed = done.returncode != 0 or "CSim failed" in log or "ERROR:" in log
    return 1 if failed else 0


# ----------------------------------------------------------------------------- divergence report
def read_trace(path: Path) -> list[tuple[str, np.ndarray]]:
    """Records (name, int64 values) in the order the csim wrote them."""
    data, records, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<i", data, at)
        name = data[at + 4:at + 4 + length].decode()
        (count,) = struct.unpack_from("<i", data, at + 4 + length)
        start = at + 8 + length
        records.append((name, np.frombuffer(data, "<i8", count, start)))
        at = start + 8 * count
    return records


def first_divergence(project: Path, binary: Path) -> str:
    """Re-run with per-stage dumps and name the first tensor that differs from the golden model."""
    manifest = _manifest(project)
    spec = project_spec(project)
    if spec.digest() != manifest["spec_digest"]:
        return (f"not traced: {project / CONFIG_COPY} changed since this project was built, so the golden "
                f"model would not be the one the project was built from (rebuild it with `hlsgen build`)")
    model = golden.Model(spec.model, checkpoint.load(spec), "fixed", spec.numerics)
    data = project / "tb" / "data"
    expected = golden.Trace()
    run_calls(model, read_calls(data / "calls.bin"), expected)
    with tempfile.TemporaryDirectory() as tmp:
        trace_path = Path(tmp) / "trace.bin"
        subprocess.run([str(binary)], cwd=project / "tb", capture_output=True,
                       env={**os.environ, "HLSGEN_TRACE": str(trace_path)})
        records = read_trace(trace_path) if trace_path.exists() else []
    seen: dict[str, int] = {}
    for name, values in records:
        token = seen.get(name, 0)
        seen[name] = token + 1
        if name not in expected.tensors:
            return f"csim wrote an unknown tensor '{name}'"
        want = np.asarray(expected.get(name)[token]).reshape(-1).astype(np.int64)
        if want.shape != values.shape or np.any(want != values):
            if want.shape != values.shape:
                return f"token {token}, tensor {name}: csim has {values.size} values, golden {want.size}"
            k = int(np.argmax(want != values))
            return f"token {token}, tensor {name}[{k}]: csim {int(values[k])}, golden {int(want[k])}"
    return "no intermediate tensor differs; the mismatch is in the final comparison (logits or argmax)"
