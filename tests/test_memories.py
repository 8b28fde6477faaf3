"""Synthesis-ready sources (issue 12): the port budget as data, checked against the kernels, and
the generated C++ free of the constructs with no documented path through Vitis HLS.

The budget test compiles a generated project with HLSGEN_COUNT_ACCESSES: the kernels then count
their sigmoid-table reads per pipelined iteration per copy and bank, and the counts must not
exceed what hardware/memories.py planned (nor the ports)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli, write_config
from hlsgen.hardware import memories, planner
from hlsgen.model import spec as spec_mod
from hlsgen.tools import csim

pytestmark = pytest.mark.usefixtures("hlsgen_cache")

CONFIGS = {
    "tiny": {},
    # Two stripes of 5-trit codes over m_axi, batch 3: the burst reader, stripe streams, argmax II 1.
    "hbm_5trit": {"hardware": {"weights": "hbm", "packing": "5trit", "batch": 3,
                               "parallelism": {"pe": 16, "simd": 32, "lm_head_pe": 8, "lm_head_simd": 64}}},
    # The lm_head on the layers' folding: one engine runs all seven kinds from one call site.
    "one_engine": {"hardware": {"parallelism": {"pe": 4, "simd": 8, "lm_head_pe": 4, "lm_head_simd": 8}}},
}


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("constructs")
    built = {}
    for name, sections in CONFIGS.items():
        config = write_config(root, name, **sections)
        run = run_cli("build", config, "-o", root / name)
        assert run.code == 0, run.err
        built[name] = (config, root / name)
    return built


def sources(project: Path) -> dict[str, str]:
    return {p.relative_to(project).as_posix(): p.read_text() for p in sorted((project / "src").rglob("*.[ch]*"))}


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


# ----------------------------------------------------------------------------- the constructs
@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_allocation_pragma(projects, name):
    for rel, text in sources(projects[name][1]).items():
        assert not re.search(r"#pragma\s+HLS\s+ALLOCATION", text, re.I), rel


def block(code: str, start: int) -> str:
    """The text of the brace block opening just before `start`."""
    depth, at = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(code[at], 0)
        at += 1
    return code[start:at - 1]


def definitions(code: str):
    """(parameter names, body) of every function definition (and, harmlessly, of every for/if)."""
    for match in re.finditer(r"\w+\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*(?:const\s*)?\{", code):
        names = set()
        for param in match.group(1).split(","):
            names.update(re.findall(r"(\w+)\s*(?:\[[^\]]*\]\s*)*$", param.strip()))
        yield names, block(code, match.end())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_partition_pragma_on_a_parameter(projects, name):
    checked = 0
    for rel, text in sources(projects[name][1]).items():
        for parameters, body in definitions(strip_comments(text)):
            # the pragmas of this function's own body (not of functions or loops nested in it: none are)
            for variable in re.findall(r"#pragma HLS ARRAY_(?:PARTITION|RESHAPE) variable=(\w+)", body):
                checked += 1
                assert variable not in parameters, f"{rel}: partition of parameter {variable}"
    assert checked > 10


def pipelined_loops(code: str):
    """(label, body) of every for loop whose body opens with #pragma HLS PIPELINE."""
    for match in re.finditer(r"(\w+):\s*for\s*\([^)]*\)\s*\{", code):
        body = block(code, match.end())
        if re.match(r"\s*(#pragma HLS LOOP_TRIPCOUNT[^\n]*\n\s*)?#pragma HLS PIPELINE", body):
            yield match.group(1), body


def conditional_context(body: str, position: int) -> bool:
    """Whether `position` sits in an if/else block or a ?: of the loop body."""
    statement_start = max(body.rfind(";", 0, position), body.rfind("{", 0, position), body.rfind("}", 0, position))
    statement = body[statement_start + 1:body.find(";", position)]
    if "?" in statement or re.match(r"\s*(if|else)\b", statement):
        return True
    depth = 0
    for at in range(position - 1, -1, -1):
        if body[at] == "}":
            depth += 1
        elif body[at] == "{":
            if depth == 0:
                opener = body[max(body.rfind(";", 0, at), body.rfind("}", 0, at), body.rfind("{", 0, at)) + 1:at]
                if re.match(r"\s*(if|else)\b", opener):
                    return True
            else:
                depth -= 1
    return False


# The m_axi pointers the kernels and the top touch: the logits, tokens, embedding table, weights.
M_AXI_ACCESS = re.compile(r"\b(logits|tokens|next_tokens|emb_table|table)\s*\[(?!token\])|fetch_stripe\(|\bport\[")


@pytest.mark.parametrize("name", ["tiny", "hbm_5trit"])
def test_no_conditional_m_axi_access_in_a_pipelined_loop(projects, name):
    project = projects[name][1]
    checked = 0
    for rel, text in sources(project).items():
        code = strip_comments(text)
        for label, body in pipelined_loops(code):
            for access in M_AXI_ACCESS.finditer(body):
                if "hlsgen_mixers" in rel and label == "embed_chunks":
                    continue        # the on-chip ROM embed: a partitioned array, not m_axi
                checked += 1
                assert not conditional_context(body, access.start()), f"{rel}: loop {label}: {access.group(0)}"
    assert checked >= 3          # read_words, embed_read, argmax_words at least


@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_runtime_stream_element_passed_to_a_non_inlined_function(projects, name):
    project = projects[name][1]
    inlined = {"pop"}
    for rel, text in sources(project).items():
        code = strip_comments(text)
        for function in inlined:
            definition = re.search(rf"\b{function}\([^)]*\)\s*\{{\s*#pragma HLS INLINE", code)
            assert definition or f" {function}(" not in code or "hlsgen_common" not in rel, f"{function} is not inlined"
        # an element of a stream array (indexed by anything but a literal) as a call's argument
        for call in re.finditer(r"\b(\w+)(?:<[^;(]*>)?\(\s*(?:[^;()]*,\s*)?(\w+)\[[^\]]*[a-z_][^\]]*\]", code):
            function, array = call.groups()
            if re.search(rf"hls::stream<[^;]*>\s*{array}\[", code) or re.search(rf"_t\s+{array}\[", code) and "_out" in array:
                assert function in inlined | {"check_drained", "check_depth"}, f"{rel}: {call.group(0)}"


def test_the_generated_top_declares_stream_depths_in_the_type(projects):
    top = (projects["tiny"][1] / "src" / "tiny_top.cpp").read_text()
    assert "#pragma HLS STREAM" not in top
    config = (projects["tiny"][1] / "src" / "tiny_top_config.h").read_text()
    assert re.search(r"typedef hls::stream<ap_uint<layer_config::pe \* numerics::act_width>, 64> layer_out_t;", config)


# ----------------------------------------------------------------------------- the budget
@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_memory_exceeds_its_ports(projects, name):
    plan = planner.plan(spec_mod.load(projects[name][0]))
    entries = memories.plan_memories(plan)
    assert {m.name for m in entries} >= {"h", "state", "SIGMOID_MLGRU", "SIGMOID_GLU", "ATTN_NORM"}
    for m in entries:
        assert m.max_accesses_per_bank <= m.ports, m


def test_a_plan_beyond_the_ports_is_refused(tmp_path, monkeypatch):
    """Three sigmoid calls per table copy: three reads of one bank per cycle, one port too many."""
    monkeypatch.setattr(memories, "CALLS_PER_SIGMOID_COPY", 3)
    run = run_cli("build", write_config(tmp_path, "over"))
    assert run.code == 2
    assert re.fullmatch(r"error: port budget: array SIGMOID_MLGRU would take 3 accesses per bank per cycle in loop "
                        r"mlgru_folds, beyond its 2 ports .*\n", run.err), run.err
    assert not (tmp_path / "over").exists()


def test_report_shows_the_budget(projects):
    project = projects["tiny"][1]
    run = run_cli("report", project)
    assert run.code == 0, run.err
    entries = json.loads((project / "report" / "report.json").read_text())["memories"]
    by_name = {m["name"]: m for m in entries}
    assert by_name["SIGMOID_MLGRU"] == {**by_name["SIGMOID_MLGRU"], "storage": "BRAM", "banks": 12, "copies": 6,
                                        "max_accesses_per_bank": 2, "ports": 2}
    assert "| SIGMOID_MLGRU | BRAM | 12 | 6 | 2 | 2 |" in run.out
    assert "## Port budget" in (project / "report" / "report.md").read_text()


def counted_accesses(project: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    """Compile the project with the access counters, run its testbench, and read what the kernels
    touched: (loop, array) -> the most distinct reads, writes and both that one bank took in one
    iteration."""
    binary, _, _ = csim.compile_csim(project, extra_flags=("-DHLSGEN_COUNT_ACCESSES",))
    done = subprocess.run([str(binary)], cwd=project / "tb", capture_output=True, text=True)
    assert done.returncode == 0 and "PASS" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    lines = re.findall(r"^accesses per bank per iteration: (\S+) (\w+) reads (\d+) writes (\d+) total (\d+)$",
                       done.stdout, re.M)
    return {(loop, array): (int(r), int(w), int(t)) for loop, array, r, w, t in lines}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_counted_accesses_are_the_plans(projects, name):
    """Every access the kernels make to an array of the budget happens in a pipelined iteration the
    plan lists, and per bank it is exactly the plan's count: the budget is what the code does."""
    config, project = projects[name]
    plan = planner.plan(spec_mod.load(config))
    planned = {(loop, m.name): (a.reads, a.writes, a.total)
               for m in memories.plan_memories(plan) for loop, a in m.accesses.items()}
    counted = counted_accesses(project)
    assert not {key for key in counted if key[0] == "(outside)"}, "an access outside every pipelined loop"
    assert counted == planned
    assert {array for _, array in counted} == {m.name for m in memories.plan_memories(plan)}   # every array counted
    assert max(total for _, _, total in counted.values()) == memories.PORTS     # the budget is used, not exceeded


def test_the_counter_sees_an_array_left_in_one_bank(projects, tmp_path):
    """The same kernels with h in one bank instead of the plan's split: each norm iteration then
    reads E elements of that bank, and the embedding writes 16, so the comparison above fails."""
    config, project = projects["one_engine"]
    edited = tmp_path / "one_bank"
    shutil.copytree(project, edited)
    top = next(p for p in (edited / "src").glob("*_top.cpp") if "HLSGEN_LAYOUT(h," in p.read_text())
    text = top.read_text()
    split = re.search(r'HLSGEN_LAYOUT\(h, "h", 0, 2, \d+, 0\)', text).group(0)
    top.write_text(text.replace(split, 'HLSGEN_LAYOUT(h, "h", 0, 0, 0, 0)'))
    counted = counted_accesses(edited)
    lanes = planner.plan(spec_mod.load(config)).layer_pe
    assert counted[("norm_folds", "h")] == (lanes, 0, lanes)
    assert counted[("embed_chunks", "h")] == (0, memories.INT32_SLOTS, memories.INT32_SLOTS)


# ----------------------------------------------------------------------------- hlsgen's csim streams
DEPTH_PROGRAM = r"""
#include "hlsgen_common.h"
int main(int argc, char**) {
    hls::stream<int, 2> fifo("fifo");
    hls::stream<int>& any_depth = fifo;          // a stream<T, D> is a stream<T>, as in Vitis
    for (int k = 0; k < 1 + argc; k++) any_depth << k;   // argc 1: 2 values; 2: 3 values
    int x = 0;
    fifo >> x;
    bool ok = fifo.read_nb(x) && x == 1 && fifo.empty() && !fifo.read_nb(x);
    hlsgen::check_depth(fifo, "fifo");             // exits 3 when the peak exceeded the depth
    std::printf("%s\n", ok || argc > 1 ? "held" : "wrong");
    return 0;
}
"""


def test_a_stream_deeper_than_its_declared_depth_fails_the_csim(tmp_path):
    source = tmp_path / "depth.cpp"
    source.write_text(DEPTH_PROGRAM)
    kernels = Path(__file__).resolve().parent.parent / "kernels_cpp"
    binary, _, _ = csim.compile_cached([source], [kernels], {"depth.cpp": DEPTH_PROGRAM.encode()} | {
        p.name: p.read_bytes() for p in kernels.glob("*.h")}, what="the stream depth program")
    within = subprocess.run([str(binary)], capture_output=True, text=True)
    assert (within.returncode, within.stdout) == (0, "held\n"), within.stderr
    beyond = subprocess.run([str(binary), "x"], capture_output=True, text=True)
    assert beyond.returncode == 3
    assert beyond.stderr == "hlsgen csim error: stream 'fifo' held 3 values at once, more than its depth 2\n"


# ----------------------------------------------------------------------------- hlsgen csynth
def csynth_xml(module: str, loops: dict, resources: dict | None = None) -> str:
    """A csynth report with the element names of Vitis HLS's csynth.xml (no real report was at hand)."""
    loop_xml = "".join(f"<{name}><TripCount>{trip}</TripCount><Latency>{trip * ii + 3}</Latency>"
                       f"<PipelineII>{ii}</PipelineII><PipelineDepth>4</PipelineDepth></{name}>"
                       for name, (trip, ii) in loops.items())
    area = "".join(f"<{k}>{v}</{k}>" for k, v in (resources or {}).items())
    return (f"<?xml version='1.0' encoding='UTF-8'?><profile><ReportVersion><Version>2023.2</Version></ReportVersion>"
            f"<UserAssignments><Part>xcu280</Part><TopModelName>{module}</TopModelName>"
            f"<TargetClockPeriod>3.33</TargetClockPeriod></UserAssignments>"
            f"<PerformanceEstimates><SummaryOfTimingAnalysis><EstimatedClockPeriod>2.9</EstimatedClockPeriod>"
            f"</SummaryOfTimingAnalysis><SummaryOfOverallLatency><Best-caseLatency>100</Best-caseLatency>"
            f"<Worst-caseLatency>2000</Worst-caseLatency><Interval-min>101</Interval-min><Interval-max>2001</Interval-max>"
            f"</SummaryOfOverallLatency><SummaryOfLoopLatency>{loop_xml}</SummaryOfLoopLatency></PerformanceEstimates>"
            f"<AreaEstimates><Resources>{area}</Resources></AreaEstimates></profile>")


def test_csynth_report_is_read_loop_by_loop_against_the_plan(tmp_path):
    from hlsgen.tools import csynth
    reports = tmp_path / "syn" / "report"
    reports.mkdir(parents=True)
    (reports / "csynth.xml").write_text(csynth_xml("tiny_top_top", {}, {"BRAM_18K": 12, "DSP": 3, "FF": 9000,
                                                                         "LUT": 15000, "URAM": 0}))
    (reports / "mlgru_csynth.xml").write_text(csynth_xml("mlgru", {"mlgru_folds": (16, 3)}))
    (reports / "mvu_csynth.xml").write_text(csynth_xml("mvu", {"mvu_fold": (512, 1)}))
    record = csynth.parse_reports(reports, "tiny_top", {"lut": 14000, "ff": 8000, "dsp": 3})
    assert record["clock_estimated_ns"] == 2.9
    assert record["resources"]["lut"] == {"csynth": 15000, "estimate": 14000}
    assert record["resources"]["bram_18k"] == {"csynth": 12, "estimate": None}
    loops = {l["loop"]: l for l in record["loops"]}
    assert loops["mlgru_folds"] == {**loops["mlgru_folds"], "module": "mlgru", "planned_ii": 1, "achieved_ii": 3,
                                    "meets_plan": False, "trip_count": 16}
    assert loops["mvu_fold"]["meets_plan"] is True
    assert [m["module"] for m in record["modules"]] == ["tiny_top_top", "mlgru", "mvu"]
    assert "| mlgru_folds | mlgru | 1 | 3 |" in csynth.markdown(record)


def test_csynth_without_vitis_names_the_tool_and_the_command(projects, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    project = projects["tiny"][1]
    run = run_cli("csynth", project)
    assert run.code == 2
    assert re.fullmatch(rf"error: csynth: vitis_hls is not on PATH \(allowed: source a Vitis HLS settings64.sh, then "
                        rf"run `cd {re.escape(str(project.resolve()))} && vitis_hls -f hls/run_hls.tcl -tclargs csynth`"
                        rf", then `hlsgen csynth .*` again\)\n", run.err), run.err
