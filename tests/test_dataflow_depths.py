"""The depths of the DATAFLOW channels, checked by a concurrent C simulation (issue 12, item 4).

The default csim runs the processes of a DATAFLOW region one after another, so a stream's peak
occupancy there says nothing of the hardware, where they overlap. Built with
-DHLSGEN_DATAFLOW_THREADS, every process of every region (the top's weight reader, decoder and
compute; stream_weights; each bitlinear's quantiser, MVU and rescale) runs in a thread of its own
and each hls::stream<T, DEPTH> is a bounded FIFO that blocks: a too-shallow channel stops the run
as it would stop the hardware, and the csim names the blocked streams and exits 3
(kernels_cpp/hlsgen_stream.h).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import needs_tool, record_edits, run_cli, write_config
from hlsgen import resources
from hlsgen.tools import csim
from sim.kernel_harness import KernelProgram
from test_memories import CONFIGS as CONSTRUCT_CONFIGS
import test_kernels_csim as kernel_tests

pytestmark = pytest.mark.usefixtures("hlsgen_cache")

THREADS = csim.DATAFLOW_THREAD_FLAGS
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny_lm.yaml"
RUN_SECONDS = 600            # a run that hangs (a deadlock the detector missed) fails, it does not wait forever
CONFIGS = ("example", "hbm_5trit", "one_engine")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataflow")
    built = {}
    for name in CONFIGS:
        config = EXAMPLE if name == "example" else write_config(root, name, **CONSTRUCT_CONFIGS[name])
        run = run_cli("build", config, "-o", root / name)
        assert run.code == 0, run.err
        built[name] = root / name
    return built


def top_of(project: Path) -> str:
    return json.loads((project / "hlsgen_manifest.json").read_text())["top"]


def threaded_csim(project: Path) -> subprocess.CompletedProcess:
    """Compile the project's testbench with the threaded dataflow (cached by content) and run it."""
    binary, _, _ = csim.compile_csim(project, extra_flags=THREADS)
    return subprocess.run([str(binary)], cwd=project / "tb", capture_output=True, text=True, timeout=RUN_SECONDS)


def edit(path: Path, pattern: str, replacement, count: int) -> None:
    """Substitute `pattern` in `path`, and insist it matched `count` times (an edit that misses
    would leave the test checking the unchanged design)."""
    text, made = re.subn(pattern, replacement, path.read_text())
    assert made == count, (path, pattern, made)
    path.write_text(text)


def copy_of(project: Path, directory: Path) -> Path:
    """A copy to edit (the built projects are shared by the module's tests)."""
    shutil.copytree(project, directory / project.name)
    return directory / project.name


# ----------------------------------------------------------------------------- the e2e configs
@pytest.mark.parametrize("name", CONFIGS)
def test_the_testbench_passes_with_concurrent_processes_and_bounded_fifos(projects, name):
    done = threaded_csim(projects[name])
    assert done.returncode == 0 and done.stdout.endswith("PASS\n"), done.stdout[-2000:] + done.stderr[-2000:]
    assert "checked" in done.stdout and ": 0 mismatches" in done.stdout


@needs_tool("g++")
def test_synthesis_sees_each_region_as_its_plain_calls(projects, tmp_path):
    """Preprocessed as Vitis sees it (__SYNTHESIS__; empty stand-ins for the vendor headers), each
    DATAFLOW body is its stream declarations and its process calls, no thread, no macro left."""
    stub = tmp_path / "vendor"
    stub.mkdir()
    for header in ("ap_int.h", "hls_stream.h"):
        (stub / header).write_text("")
    for name, project in projects.items():
        top = top_of(project)
        done = subprocess.run(["g++", "-std=c++17", "-E", "-P", "-D__SYNTHESIS__", f"-I{stub}", "-Isrc",
                               f"src/{top}.cpp"], cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        code = " ".join(done.stdout.split())
        assert not re.search(r"HLSGEN_|dataflow_region|hlsgen_region_|std::thread|spawn|name_streams", code), name
        regions = re.findall(r"#pragma HLS DATAFLOW ([^}]*)}", code)
        assert len(regions) == 3, (name, regions)
        assert not any(re.search(r";\s*;", region) for region in regions), (name, regions)   # not even an empty statement
        calls = [re.sub(r"\(.*", "", statement.strip()) for region in regions for statement in region.split(";")
                 if statement.strip() and not statement.strip().startswith(("hls::stream", "raw_stream_t", "hlsgen::raw_stream_t"))
                 and not re.match(r"\w+_lanes_t ", statement.strip())]
        assert calls == ["read_matrix<C>", "unpack_matrix<C, C::packing>::run", "quantise<N, C>", "mvu<C>",
                         "rescale<N, C>", "read_call_weights", "unpack_call_weights", "run_call"], (name, calls)


# ----------------------------------------------------------------------------- the real kernels, mutated
def test_every_dataflow_channel_at_depth_one_still_passes(projects, tmp_path):
    """Every channel inside a DATAFLOW region at depth 1, on the batched two-stripe 5-trit config:
    none of them can deadlock, so the run must still pass bit for bit. Why, channel by channel:
    - raw[s] (reader -> decoder) and {engine}_lanes[s] (decoder -> MVU): one chain, each process
      writing its stripes and matrices in the order the next one reads them; a chain of FIFOs
      only slows down when shallow, it never stops.
    - bitlinear.codes (quantise -> mvu): the MVU takes every code of a call before it writes a
      single sum (it loads all n tokens' codes first, or with one token reads them all in its first
      row fold, whose last fold writes the first sum), so the quantiser never waits on the MVU.
    - bitlinear.scale (quantise -> rescale, the path that reconverges at rescale): rescale reads
      all n scales before any sum; the quantiser writes each scale right after that token's codes,
      which the MVU takes without waiting for anything rescale does.
    - bitlinear.sums (mvu -> rescale): rescale waits for nothing but the scales above, then reads
      a sum per cycle.
    Hence the planner's depths there are for throughput, not for correctness."""
    project = copy_of(projects["hbm_5trit"], tmp_path)
    config = project / "src" / f"{top_of(project)}_config.h"
    # two engines (the layers', the lm_head's), three depths each
    edit(config, r"(static const unsigned (?:code_depth|lane_depth|sum_depth) = )\d+;", r"\g<1>1;", 6)
    kernels = project / "src" / "hlsgen" / "hlsgen_bitlinear.h"
    edit(kernels, r"static const int RAW_DEPTH = \d+;", "static const int RAW_DEPTH = 1;", 1)
    edit(kernels, r"hls::stream<ap_uint<N::scale_width>, 2> scale;", "hls::stream<ap_uint<N::scale_width>, 1> scale;", 1)
    done = threaded_csim(project)
    assert done.returncode == 0 and done.stdout.endswith("PASS\n"), done.stdout[-2000:] + done.stderr[-2000:]


def test_an_output_stream_one_short_deadlocks(projects, tmp_path):
    """The channel that can deadlock: rescale writes token t's whole output vector of projection k
    into {engine}_out[k][t] before the sequential stage after the BitLinear reads it (after the
    region ends). The planner makes it exactly as deep as the longest vector (rows / PE packets);
    one packet less and rescale waits for room no reader will make, while the call waits for it."""
    copy = copy_of(projects["example"], tmp_path)
    config = copy / "src" / f"{top_of(copy)}_config.h"
    depth = int(re.search(r", (\d+)> layer_out_t;", config.read_text()).group(1))
    edit(config, rf", {depth}> layer_out_t;", f", {depth - 1}> layer_out_t;", 1)
    done = threaded_csim(copy)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.fullmatch(r"hlsgen csim error: dataflow deadlock: (.*; )?'layer_out\[\d\]\[0\]' full "
                        rf"\(depth {depth - 1}\) in rescale(; .*)?\n", done.stderr), done.stderr


# ----------------------------------------------------------------------------- the kernels alone
# The kernel harness runs stream_weights and bitlinear as two processes of a region (the top's
# weight streamer and engine): a program of a few engines, built threaded, against the numpy model.
THREADED_SHAPES = [kernel_tests.Shape("base", 24, 40, 4, 8),                                  # 2-bit, one token
                   kernel_tests.Shape("base", 32, 64, 16, 32, batch=4),                       # two stripes
                   kernel_tests.Shape("base", 40, 12, 8, 4, packing="5trit", batch=2),
                   kernel_tests.Shape("base", 24, 40, 4, 8, packing="5trit", batch=3, qsimd=4),
                   # 720 folds a matrix, more than the lane FIFO holds (PREFETCH_LANES): the
                   # streamer must run beside the engine, as it does in the top, or it stops
                   kernel_tests.Shape("base", 20, 36, 1, 1, packing="5trit")]


@pytest.fixture(scope="module")
def threaded_kernels():
    program = KernelProgram("kernel_tests_threaded")
    variant = program.variant("base", kernel_tests.BASE)
    engines = {s.id: program.bitlinear(variant, s.rows, s.cols, s.pe, s.simd, kernel_tests.MATRICES,
                                       kernel_tests.max_beta(kernel_tests.BASE), packing=s.packing, batch=s.batch,
                                       qsimd=s.qsimd) for s in THREADED_SHAPES}
    return program.build(extra_flags=THREADS), engines


@pytest.mark.parametrize("shape", THREADED_SHAPES, ids=lambda s: s.id)
def test_kernels_pass_with_the_weight_streamer_and_the_engine_at_once(threaded_kernels, shape):
    """Seven tokens in calls of up to `batch`, both matrices, both weight sources: the codes, scales
    and outputs bit for bit (stream_weights' and bitlinear's regions both in threads)."""
    binary, engines = threaded_kernels
    kernel_tests.check_random_calls(binary.run, engines[shape.id], 7, shape.rows * 1000 + shape.cols + shape.batch)


# ----------------------------------------------------------------------------- a reconvergent region
RECONVERGENT_PROGRAM = r"""
#include <string>
#include "hlsgen_common.h"

// The producer writes N values to a, then one to b; the consumer reads b first, then a. The FIFO a
// must hold all N at once, or each process waits for the other forever.
static const int N = 4;
static void producer(hls::stream<int>& a, hls::stream<int>& b) {
    for (int k = 0; k < N; k++) a.write(k);
    b.write(100);
}
static void consumer(hls::stream<int>& a, hls::stream<int>& b, int reads, int& sum) {
    sum = b.read();
    for (int k = 0; k < reads; k++) sum += a.read();
}
template <int DEPTH>
static int region(int reads) {
#pragma HLS DATAFLOW
    hls::stream<int, DEPTH> a("a");
    hls::stream<int, 1> b("b");
    int sum = 0;
    HLSGEN_DATAFLOW_BEGIN("region")
    HLSGEN_PROCESS(producer(a, b));
    HLSGEN_PROCESS(consumer(a, b, reads, sum));
    HLSGEN_DATAFLOW_END()
    return sum;
}
int main(int, char** argv) {
    const std::string mode = argv[1];
    const int sum = mode == "shallow" ? region<N - 1>(N) : region<N>(mode == "starved" ? N + 1 : N);
    std::printf("sum %d\n", sum);
    return 0;
}
"""


@pytest.fixture(scope="module")
def reconvergent(tmp_path_factory):
    """The program built threaded and plain: {flags: binary}."""
    source = tmp_path_factory.mktemp("reconvergent") / "reconvergent.cpp"
    source.write_text(RECONVERGENT_PROGRAM)
    kernels = resources.kernels()
    hashed = {"reconvergent.cpp": RECONVERGENT_PROGRAM.encode()} | {p.name: p.read_bytes() for p in kernels.glob("*.h")}
    return {flags: csim.compile_cached([source], [kernels], hashed, what="the reconvergent dataflow program",
                                       extra_flags=flags)[0] for flags in (THREADS, ())}


def run(binary: Path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), mode], capture_output=True, text=True, timeout=60)   # it takes ms


def test_a_reconvergent_region_passes_when_the_fifo_holds_what_runs_ahead(reconvergent):
    done = run(reconvergent[THREADS], "deep")
    assert (done.returncode, done.stdout, done.stderr) == (0, "sum 106\n", "")


def test_a_reconvergent_region_deadlocks_when_the_fifo_is_one_short(reconvergent):
    done = run(reconvergent[THREADS], "shallow")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == "hlsgen csim error: dataflow deadlock: 'a' full (depth 3) in producer; 'b' empty in consumer\n"


def test_the_sequential_csim_does_not_see_that_deadlock(reconvergent):
    """Why the threaded mode exists: run one after another, the processes never overlap."""
    done = run(reconvergent[()], "shallow")
    assert (done.returncode, done.stdout) == (0, "sum 106\n"), done.stderr


def test_a_read_no_process_will_ever_answer_is_a_deadlock(reconvergent):
    """The producer has finished; the consumer waits for one value more than it wrote."""
    done = run(reconvergent[THREADS], "starved")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == "hlsgen csim error: dataflow deadlock: 'a' empty in consumer\n"


# ----------------------------------------------------------------------------- by hand
@needs_tool("make", "g++")
def test_make_csim_threads_runs_the_threaded_testbench(projects):
    project = projects["example"]
    env = {k: v for k, v in os.environ.items() if k != "XILINX_HLS"}
    done = subprocess.run(["make", "csim-threads"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=RUN_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-DHLSGEN_DATAFLOW_THREADS -pthread" in done.stdout and done.stdout.splitlines()[-1] == "PASS"


def test_hlsgen_csim_dataflow_threads_passes_and_records_the_mode(projects):
    project = projects["one_engine"]
    run = run_cli("csim", project, "--dataflow-threads")
    assert run.code == 0 and run.out.endswith("PASS: bit-exact with the golden fixed-point model\n"), run.out + run.err
    record = json.loads((project / csim.REPORT).read_text())
    assert (record["passed"], record["dataflow_threads"], record["mismatches"]) == (True, True, 0)


def test_hlsgen_csim_dataflow_threads_fails_on_a_deadlock_and_names_it(projects, tmp_path):
    project = copy_of(projects["example"], tmp_path)
    config = project / "src" / f"{top_of(project)}_config.h"
    edit(config, r", (\d+)> layer_out_t;", lambda m: f", {int(m.group(1)) - 1}> layer_out_t;", 1)
    record_edits(project)          # the edit is deliberate: the integrity check would refuse it
    run = run_cli("csim", project, "--dataflow-threads")
    assert run.code == 1, run.out + run.err
    assert re.search(r"^FAIL: dataflow deadlock: .*'layer_out\[\d\]\[0\]' full \(depth \d+\) in rescale", run.out, re.M), run.out
    record = json.loads((project / csim.REPORT).read_text())
    assert record["passed"] is False and "dataflow deadlock" in record["error"]
