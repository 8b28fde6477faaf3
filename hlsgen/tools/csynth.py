"""`hlsgen csynth DIR`: Vitis HLS C synthesis of a generated project, and its report next to the plan.

Where `vitis_hls` is on PATH it runs the generated Tcl (`vitis_hls -f hls/run_hls.tcl -tclargs
csynth`), then reads the XML reports under hls/<top>_prj/sol1/syn/report/: per module its latency
and per loop its achieved II, and the top's LUT/FF/BRAM/URAM/DSP, next to the plan's estimate
(hardware/estimate.py) and the II the kernels were written for (1, except argmax_words).  The
result goes to report/csynth.json, which `hlsgen report` shows.  Without Vitis it exits 2 with
the command to run.  No real csynth report was available where this was written: the parser is
tested on a report that a test writes from the element names of Vitis HLS's csynth.xml.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from hlsgen.errors import HlsgenError

REPORT = "report/csynth.json"
COMMAND = ("vitis_hls", "-f", "hls/run_hls.tcl", "-tclargs", "csynth")
RESOURCES = {"lut": "LUT", "ff": "FF", "bram_18k": "BRAM_18K", "uram": "URAM", "dsp": ("DSP", "DSP48E")}
# The II the kernels are written for, by loop label; unlisted pipelined loops: 1.
PLANNED_II = {"argmax_words": "INT32_SLOTS / min(HEAD_PE, INT32_SLOTS)"}


def _number(node, path: str):
    found = node.find(path)
    if found is None or found.text is None:
        return None
    text = found.text.strip()
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return None      # "undef", "-": the tool could not bound it


def parse_module(path: Path) -> dict:
    """One csynth XML: the module's latency, interval and resources, and every loop's II."""
    root = ET.parse(path).getroot()
    name = root.findtext("UserAssignments/TopModelName") or path.stem.removesuffix("_csynth")
    overall = root.find("PerformanceEstimates/SummaryOfOverallLatency")
    loops = {}
    for loop in root.iter():
        if loop.find("PipelineII") is not None or (loop.find("TripCount") is not None and loop.find("Latency") is not None):
            loops[loop.tag] = {"achieved_ii": _number(loop, "PipelineII"), "trip_count": _number(loop, "TripCount"),
                               "latency": _number(loop, "Latency"), "pipeline_depth": _number(loop, "PipelineDepth")}
    resources = {}
    for key, tags in RESOURCES.items():
        for tag in (tags if isinstance(tags, tuple) else (tags,)):
            value = _number(root, f"AreaEstimates/Resources/{tag}")
            if value is not None:
                resources[key] = value
                break
    return {"module": name,
            "latency_best": _number(overall, "Best-caseLatency") if overall is not None else None,
            "latency_worst": _number(overall, "Worst-caseLatency") if overall is not None else None,
            "interval_max": _number(overall, "Interval-max") if overall is not None else None,
            "clock_target_ns": _number(root, "UserAssignments/TargetClockPeriod"),
            "clock_estimated_ns": _number(root, "PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
            "resources": resources, "loops": loops}


def parse_reports(report_dir: Path, top: str, estimate: dict) -> dict:
    """Every module's XML in `report_dir`; the top's (csynth.xml) gives the totals."""
    top_xml = report_dir / "csynth.xml"
    if not top_xml.is_file():
        raise HlsgenError(f"csynth: {top_xml} not found (allowed: a directory holding Vitis HLS's csynth.xml)")
    total = parse_module(top_xml)
    modules = [parse_module(p) for p in sorted(report_dir.glob("*_csynth.xml"))]
    loops = []
    for m in [total] + modules:
        for label, figures in m["loops"].items():
            planned = PLANNED_II.get(label, 1)
            loops.append({"module": m["module"], "loop": label, "planned_ii": planned, **figures,
                          "meets_plan": (figures["achieved_ii"] == planned) if isinstance(planned, int) else None})
    return {"top": top, "clock_target_ns": total["clock_target_ns"], "clock_estimated_ns": total["clock_estimated_ns"],
            "resources": {k: {"csynth": total["resources"].get(k), "estimate": estimate.get(k)}
                          for k in RESOURCES},
            "modules": [{"module": m["module"], "latency_best": m["latency_best"], "latency_worst": m["latency_worst"],
                         "interval_max": m["interval_max"]} for m in [total] + modules],
            "loops": loops}


def read_record(project: Path) -> dict | None:
    path = Path(project) / REPORT
    return json.loads(path.read_text()) if path.is_file() else None


def markdown(record: dict | None) -> list[str]:
    if record is None:
        return ["- no report/csynth.json (run `hlsgen csynth DIR` where Vitis HLS is installed)"]
    lines = ["| loop | module | planned II | achieved II |", "|---|---|---:|---:|"]
    lines += [f"| {l['loop']} | {l['module']} | {l['planned_ii']} | {l['achieved_ii']} |" for l in record["loops"]]
    lines += ["", "| resource | csynth | estimate |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['csynth']} | {v['estimate']} |" for k, v in record["resources"].items()]
    return lines


def run(project: Path, estimate: dict) -> dict:
    """`estimate`: the plan's resource estimate (hardware/estimate.py design_resources)."""
    project = Path(project).resolve()
    manifest = project / "hlsgen_manifest.json"
    if not manifest.is_file():
        raise HlsgenError(f"{project}: not an hlsgen project (no hlsgen_manifest.json; run `hlsgen build` first)")
    top = json.loads(manifest.read_text())["top"]
    if shutil.which("vitis_hls") is None:
        raise HlsgenError(f"csynth: vitis_hls is not on PATH (allowed: source a Vitis HLS settings64.sh, then run "
                          f"`cd {project} && {' '.join(COMMAND)}`, then `hlsgen csynth {project}` again)")
    done = subprocess.run(COMMAND, cwd=project, capture_output=True, text=True)
    if done.returncode != 0:
        raise HlsgenError(f"csynth: {' '.join(COMMAND)} failed in {project}:\n{(done.stdout + done.stderr)[-3000:]}")
    return write_record(project, top, estimate)


def write_record(project: Path, top: str, estimate: dict) -> dict:
    """Parse the solution's reports into report/csynth.json."""
    record = parse_reports(project / "hls" / f"{top}_prj" / "sol1" / "syn" / "report", top, estimate)
    path = project / REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


