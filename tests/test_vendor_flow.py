"""The generated vendor flow, checked without the vendor tools: link.cfg against the kernel's own
pragmas, the Makefile targets, the Vivado Tcl sourced by tclsh against recording stubs, and the
native XRT host compiled against stub headers (so a typo cannot ship)."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import needs_tool, write_config
from hlsgen.project import build
from hlsgen.project import calls as calls_mod
from hlsgen.model import spec as spec_mod
from hlsgen.project.vendor import Flow, bundle_ports

OFFCHIP = {"pe": 8, "simd": 4, "lm_head_pe": 4, "lm_head_simd": 16}
PROJECTS = {
    "u280_hbm": {"board": "u280", "weights": "hbm", "parallelism": OFFCHIP, "batch": 4},
    "u250_ddr": {"board": "u250", "weights": "ddr", "parallelism": OFFCHIP},
    "u55c_onchip": {"board": "u55c", "weights": "onchip"},
    "zcu104_ddr": {"board": "zcu104", "weights": "ddr", "parallelism": OFFCHIP, "batch": 16},
    "kv260_onchip": {"board": "kv260", "weights": "onchip", "clock_mhz": 150},
    "pynq_z2_ddr": {"board": "pynq_z2", "weights": "ddr", "parallelism": {"pe": 4, "simd": 2}},
}
ALVEO = [n for n in PROJECTS if n.startswith("u")]
ZYNQ = [n for n in PROJECTS if not n.startswith("u")]


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """name -> (project directory, plan); rendered once per module, nothing compiled."""
    root = tmp_path_factory.mktemp("vendor")
    built = {}
    for name, hardware in PROJECTS.items():
        result = build.build(spec_mod.load(write_config(root, name, hardware=hardware)))
        built[name] = (result.out, result.plan)
    return built


def top_source(project: Path, plan) -> str:
    return (project / "src" / f"{plan.top}.cpp").read_text()


def pragma_ports(source: str, mode: str) -> dict[str, str]:
    """port -> bundle of every `#pragma HLS INTERFACE mode=<mode>` in the top function."""
    return dict(re.findall(rf"#pragma HLS INTERFACE mode={mode} port=(\w+) bundle=(\w+)", source))


def signature(source: str, kernel: str) -> list[str]:
    """Argument names of the top function, in order."""
    params = re.search(rf"void {kernel}\((.*?)\)\s*{{", source, re.S).group(1)
    return [re.search(r"(\w+)\s*(\[[^]]*\])?\s*$", p.strip()).group(1) for p in params.split(",")]


# ----------------------------------------------------------------------------- Alveo: link.cfg, Makefile
@pytest.mark.parametrize("name", ALVEO)
def test_link_cfg_maps_every_m_axi_bundle_once(projects, name):
    project, plan = projects[name]
    flow = Flow.of_plan(plan)
    source = top_source(project, plan)
    bundles = pragma_ports(source, "m_axi")
    lines = [l for l in (project / "hls" / "link.cfg").read_text().splitlines() if l and not l.startswith("#")]
    assert lines[0] == "[connectivity]"
    nk = [l for l in lines if l.startswith("nk=")]
    assert nk == [f"nk={flow.kernel}:1:{flow.compute_unit}"] and f"void {flow.kernel}(" in source
    sp = [re.fullmatch(r"sp=(\w+)\.(\w+):(HBM|DDR)\[(\d+)(?::(\d+))?\]", l) for l in lines if l.startswith("sp=")]
    assert all(sp) and len(sp) + 2 == len(lines)
    assert {m.group(1) for m in sp} == {flow.compute_unit}
    connected = [bundles[m.group(2)] for m in sp]                  # KeyError: not an m_axi port
    assert sorted(connected) == sorted(bundles.values())           # every m_axi argument exactly once
    memory = plan.board.memory_of(plan.memory_ports[0].memory)
    for m in sp:
        first, last = int(m.group(4)), int(m.group(5) or m.group(4))
        assert m.group(3) == memory.bank and 0 <= first <= last < memory.count
    # The arguments of one bundle share its AXI master, so its bank: tokens and next_tokens with the logits.
    bank = {}
    for m in sp:
        assert bank.setdefault(bundles[m.group(2)], m.group(0).partition(":")[2]) == m.group(0).partition(":")[2]
    assert [m.group(2) for m in sp] == [p.name for p in plan.memory_ports]


def test_hbm_bundles_do_not_share_pseudo_channels(projects):
    project, plan = projects["u280_hbm"]
    banks = dict(re.findall(r"^sp=\S+\.(\w+):(HBM\[\d+\])$", (project / "hls" / "link.cfg").read_text(), re.M))
    assert list(banks) == [p.name for p in plan.memory_ports]
    assert banks["tokens"] == banks["next_tokens"] == banks["logits"]
    per_bundle = {p.bundle: banks[p.name] for p in plan.memory_ports}
    assert len(per_bundle) == len(set(per_bundle.values())) == len(bundle_ports(plan))


@needs_tool("make")
@pytest.mark.parametrize("name", ALVEO)
def test_makefile_targets_compile_and_link_with_one_target_and_platform(projects, name):
    project, plan = projects[name]
    for target in ("sw_emu", "hw_emu", "hw"):
        commands = subprocess.run(["make", "-n", "-B", target, f"run-{target}", "host"], cwd=project,
                                  capture_output=True, text=True, check=True).stdout.splitlines()
        vpp = [c for c in commands if c.startswith("v++ ")]
        assert [c.split()[1] for c in vpp] == ["-c", "-l"]
        for command in vpp:
            assert f" -t {target} --platform {plan.board.platform} " in command
        assert any(c.startswith("g++ ") and "-lxrt_coreutil" in c for c in commands)
        run = next(c for c in commands if "impl/host impl/" in c)
        assert ("XCL_EMULATION_MODE=" + target in run) == (target != "hw")
        assert ("emconfigutil" in " ".join(commands)) == (target != "hw")
        # HLS schedules for the clock the compile step gets (UG1393 "Managing Clock Frequencies").
        assert f" --hls.clock {round(plan.clock_mhz * 1e6)}:{plan.top}_top " in vpp[0] + " "


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_has_the_unified_flow_beside_the_tcl_flow(projects):
    project, _ = projects[ALVEO[0]]
    for target, command in (("vitis-run-csim", "vitis-run --mode hls --csim --config hls/hls_config.cfg"),
                            ("vitis-run-cosim", "vitis-run --mode hls --cosim --config hls/hls_config.cfg"),
                            ("vitis-csim", "vitis_hls -f hls/run_hls.tcl -tclargs csim")):
        out = subprocess.run(["make", "-n", "-B", target], cwd=project, capture_output=True, text=True, check=True).stdout
        assert command in out, (target, out)


@needs_tool("make")
@pytest.mark.parametrize("name", ZYNQ)
def test_zynq_makefile_exports_the_ip_then_runs_vivado(projects, name):
    project, _ = projects[name]
    commands = subprocess.run(["make", "-n", "-B", "bitstream"], cwd=project, capture_output=True, text=True,
                              check=True).stdout
    assert commands.index("vitis_hls -f hls/run_hls.tcl -tclargs csynth export") < \
        commands.index("vivado -mode batch -nojournal -log impl/vivado.log -source hls/vivado_bd.tcl")


# ----------------------------------------------------------------------------- Zynq: Vivado Tcl under tclsh
VIVADO_STUBS = r"""
# Vivado commands as recording stubs: each call is one line of the log; the getters return what
# the script needs. Any other unknown command is an error, as in Vivado.
set ::log [open $::env(HLSGEN_TCL_LOG) w]
proc record {name args} { puts $::log [list $name {*}$args] }
foreach cmd {create_project set_property update_ip_catalog create_bd_design create_bd_cell
             apply_bd_automation assign_bd_address validate_bd_design save_bd_design generate_target
             make_wrapper launch_runs wait_on_run open_hw_manager connect_hw_server open_hw_target
             current_hw_device program_hw_devices refresh_hw_device close_hw_manager} {
    proc $cmd {args} "record $cmd {*}\$args"
}
proc get_board_parts {args} { record get_board_parts {*}$args; return [string map {* 1.0} [lindex $args end]] }
proc get_ipdefs {pattern} { return [string map {* 9.9} $pattern] }
proc current_project {} { return project }
proc get_bd_cells {name} { return $name }
proc get_bd_intf_pins {name} { return $name }
proc get_files {args} { return design_1.bd }
proc get_runs {name} { return $name }
proc get_property {name object} {
    switch $name {
        VLNV { return $object }
        PROGRESS { return 100% }
        DIRECTORY { return $::runs_dir }
        CONFIG.FREQ_HZ { return $::hp_hz }
    }
    error "stub: get_property $name"
}
proc get_hw_targets {args} { return $::hw_targets }
proc get_hw_devices {args} { return $::hw_devices }
"""


def run_tcl(script: Path, tmp_path: Path, setup: str = "", argv: tuple = ()) -> tuple[subprocess.CompletedProcess, list]:
    """Source `script` in tclsh after the stubs; returns the process and the recorded calls."""
    log = tmp_path / "calls.log"
    driver = tmp_path / "driver.tcl"
    driver.write_text(VIVADO_STUBS + setup + f"\nset argv [list {' '.join(argv)}]\nsource {script}\n")
    done = subprocess.run(["tclsh", str(driver)], capture_output=True, text=True,
                          env={"HLSGEN_TCL_LOG": str(log), "PATH": "/usr/bin:/bin"})
    calls = [line.partition(" ")[::2] for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls



@needs_tool("tclsh")
@pytest.mark.parametrize("name", ZYNQ)
def test_vivado_block_design_tcl(projects, name, tmp_path):
    source_project, plan = projects[name]
    project = tmp_path / "project"
    shutil.copytree(source_project, project)
    flow, ps = Flow.of_plan(plan), plan.board.ps
    # What Vivado would leave behind: the implementation run's bitstream and the hardware handoff.
    runs = project / "impl" / "vivado" / "runs" / "impl_1"
    handoff = project / "impl" / "vivado" / f"{plan.top}_vivado.gen" / "sources_1/bd/design_1/hw_handoff"
    for path, content in ((runs / "design_1_wrapper.bit", b"bit"), (handoff / "design_1.hwh", b"<hwh/>")):
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    done, calls = run_tcl(project / "hls" / "vivado_bd.tcl", tmp_path,
                          f"set ::runs_dir {runs}; set ::hp_hz {plan.clock_mhz * 1e6:.0f}")
    assert done.returncode == 0, done.stdout + done.stderr
    text = [f"{name} {args}" for name, args in calls]

    assert f"create_project {plan.top}_vivado {project}/impl/vivado -part {plan.board.part} -force" in text
    assert f"set_property board_part {plan.board.board_part_pattern.replace('*', '1.0')} project" in text
    assert f"create_bd_cell -type ip -vlnv xilinx.com:ip:{ps.ip}:9.9 ps" in text
    assert f"create_bd_cell -type ip -vlnv xilinx.com:hls:{flow.kernel}:1.0 accel" in text
    automations = [args for name, args in calls if name == "apply_bd_automation"]
    assert automations[0].startswith(f"-rule xilinx.com:bd_rule:{ps.ip} ")
    assert f"Master {{/ps/{ps.master}}} Slave {{/accel/s_axi_control}}" in automations[1]
    # Every m_axi bundle of the top's pragmas, once, to the PS slave port the planner chose.
    bundles = pragma_ports(top_source(project, plan), "m_axi")
    wired = dict(re.findall(r"Master \{/accel/m_axi_(\w+)\} Slave \{/ps/(\w+)\}", " ".join(automations[2:])))
    assert len(automations[2:]) == len(set(bundles.values())) and set(wired) == set(bundles.values())
    assert wired == {bundle: p.link for bundle, p in bundle_ports(plan).items()}
    # The PS enables exactly the slave ports in use, and runs the PL clock at the plan's.
    ps_config = next(args for name, args in calls if name == "set_property" and args.startswith("-dict"))
    used = set(wired.values())
    for port, enable in zip(ps.slaves, ps.slave_enable):
        assert (f"CONFIG.{enable} 1" in ps_config) == (port in used)
    assert f"CONFIG.{ps.clock_mhz_property} {plan.clock_mhz}" in ps_config
    order = [name for name, _ in calls]
    assert order.index("validate_bd_design") < order.index("launch_runs") < order.index("wait_on_run")
    assert "launch_runs impl_1 -to_step write_bitstream -jobs 8" in text
    # The .bit and the .hwh side by side, with one basename, as PYNQ looks for them.
    assert (project / flow.bitstream).read_bytes() == b"bit"
    assert (project / flow.hwh).read_bytes() == b"<hwh/>"
    assert Path(flow.bitstream).with_suffix(".hwh") == Path(flow.hwh)


@needs_tool("tclsh")
@pytest.mark.parametrize("targets, devices, code, expected", [
    ("{localhost:3121/xilinx_tcf/Digilent/1}", "{arm_dap_0 DEVICE}", 0, "hlsgen: programmed DEVICE"),
    ("{}", "{}", 3, "hlsgen: no JTAG target matches *: no board attached"),
    ("{localhost:3121/xilinx_tcf/Digilent/1}", "{}", 3, "device on the JTAG chain"),
])
def test_jtag_programming_tcl(projects, tmp_path, targets, devices, code, expected):
    project, plan = projects["pynq_z2_ddr"]
    devices = devices.replace("arm_dap_0 ", "")        # the stub returns what get_hw_devices would after its filter
    setup = f"set ::hw_targets {targets}\nset ::hw_devices {devices}"
    done, calls = run_tcl(project / "hls" / "program_jtag.tcl", tmp_path, setup, ("impl/tiny.bit",))
    assert done.returncode == code, done.stdout + done.stderr
    assert expected in done.stdout
    if code == 0:
        assert ("set_property", "PROGRAM.FILE impl/tiny.bit DEVICE") in calls
        assert ("program_hw_devices", "DEVICE") in calls


# ----------------------------------------------------------------------------- native XRT host
XRT_STUBS = {
    "xrt/xrt_device.h": """
        #pragma once
        #include <string>
        namespace xrt {
        struct uuid {};
        class device {
          public:
            explicit device(unsigned int index);
            explicit device(const std::string& bdf);
            uuid load_xclbin(const std::string& path);
        };
        }
    """,
    "xrt/xrt_bo.h": """
        #pragma once
        #include <cstddef>
        #include "xrt/xrt_device.h"
        enum xclBOSyncDirection { XCL_BO_SYNC_BO_TO_DEVICE, XCL_BO_SYNC_BO_FROM_DEVICE };
        namespace xrt {
        typedef unsigned int memory_group;
        class bo {
          public:
            bo(const device& device, size_t size, memory_group group);
            void write(const void* source);
            void read(void* destination);
            void sync(xclBOSyncDirection direction);
        };
        }
    """,
    "xrt/xrt_kernel.h": """
        #pragma once
        #include <chrono>
        #include <string>
        #include "xrt/xrt_device.h"
        enum ert_cmd_state { ERT_CMD_STATE_NEW = 1, ERT_CMD_STATE_QUEUED = 2, ERT_CMD_STATE_RUNNING = 3,
                             ERT_CMD_STATE_COMPLETED = 4 };
        namespace xrt {
        class kernel {
          public:
            kernel(const device& device, const uuid& xclbin, const std::string& name);
            int group_id(int argument) const;
        };
        class run {
          public:
            explicit run(const kernel& kernel);
            template <class T> void set_arg(int index, T&& value);
            void start();
            ert_cmd_state wait(const std::chrono::milliseconds& timeout = std::chrono::milliseconds{0}) const;
            ert_cmd_state abort();
        };
        }
    """,
}


@needs_tool("g++")
@pytest.mark.parametrize("name", ALVEO)
def test_native_host_compiles_against_the_xrt_api(projects, name, tmp_path):
    project, plan = projects[name]
    for rel, text in XRT_STUBS.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    host = project / "host" / f"{plan.top}_host.cpp"
    done = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
                           str(host)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    source = host.read_text()
    arguments = signature(top_source(project, plan), Flow.of_plan(plan).kernel)
    enum = re.findall(r"ARG_(\w+) = (\d+),", source)
    assert [(n.lower(), int(i)) for n, i in enum] == [(n, i) for i, n in enumerate(arguments)]
    assert [n.lower() for n, _ in enum] == [a.name for a in plan.arguments]
    # One buffer per m_axi port, of the planned size, in its bank through the kernel's group_id.
    assert source.count("kernel.group_id(") == 1
    ports = re.findall(r"\{ARG_(\w+), (\d+), (nullptr|\"[\w.]+\")\},", source)
    assert [(n.lower(), int(b), f.strip('"')) for n, b, f in ports] == \
        [(p.name, p.nbytes, p.data.split("/")[-1] if p.data else "nullptr") for p in plan.memory_ports]
    for port in plan.memory_ports:
        if port.data:
            assert (project / port.data).stat().st_size == port.nbytes
    # The calls of the top as the testbench recorded them; no output register is read.
    assert f"CALL_HEADER = {calls_mod.CALL_HEADER}, CALL_WIDTH = {calls_mod.CALL_WIDTH};" in source
    assert f"BATCH = {plan.batch};" in source and "/calls.bin" in source
    assert "run.set_arg(ARG_N_TOKENS" in source and "run.set_arg(ARG_BATCH_MODE" in source
    assert Flow.of_plan(plan).host_build() in source


# ----------------------------------------------------------------------------- the driver's constants
@pytest.mark.parametrize("name", list(PROJECTS))
def test_driver_register_map_matches_the_top_function(projects, name):
    project, plan = projects[name]
    kernel = Flow.of_plan(plan).kernel
    source = top_source(project, plan)
    driver = project / Flow.of_plan(plan).driver
    namespace: dict = {"__file__": str(driver)}
    exec(compile(driver.read_text().split("\ndef sign_extend")[0], str(driver), "exec"), namespace)
    names = [n for n, _, _ in namespace["ARGUMENTS"]]
    assert names == signature(source, kernel)
    assert set(names) == set(pragma_ports(source, "s_axilite")) - {"return"}
    assert [b[0] for b in namespace["BUFFERS"]] == list(pragma_ports(source, "m_axi"))
    assert [(a.name, a.offset) for a in plan.arguments] == [(n, o) for n, _, o in namespace["ARGUMENTS"]]
    # Three scalars (n_tokens, batch_mode, reset_state: a word and a reserved one each), then the
    # 64-bit pointers (two words and a reserved one); no output register.
    assert namespace["ARGUMENTS"][:6] == [("n_tokens", "scalar", 0x10), ("batch_mode", "scalar", 0x18),
                                          ("reset_state", "scalar", 0x20), ("logits", "pointer", 0x28),
                                          ("tokens", "pointer", 0x34), ("next_tokens", "pointer", 0x40)]
    assert {kind for _, kind, _ in namespace["ARGUMENTS"]} == {"scalar", "pointer"}
    assert namespace["KERNEL"] == kernel
    assert (namespace["BATCH"], namespace["CALL_WIDTH"]) == (plan.batch, calls_mod.CALL_WIDTH)
    # Token t's logits start at int32 slot t * logit_words * 16; the buffer holds BATCH of them.
    assert namespace["LOGIT_ROW"] == plan.logit_words * 16
    logits = next(b for b in namespace["BUFFERS"] if b[0] == "logits")
    assert logits[2] == plan.batch * namespace["LOGIT_ROW"] * 4
    assert [b[2] for b in namespace["BUFFERS"] if b[0] in ("tokens", "next_tokens")] == [64, 64]
    # One bundle, one memory: the tokens word and the next tokens beside the logits.
    assert len({b[3] for b in namespace["BUFFERS"] if b[0] in ("logits", "tokens", "next_tokens")}) == 1


def test_driver_needs_only_numpy_for_the_board_backends(projects, tmp_path):
    project, plan = projects["zcu104_ddr"]
    driver = project / Flow.of_plan(plan).driver
    # hlsgen blocked: importing the driver and listing its backends must still work.
    code = ("import sys, importlib.util; sys.modules['hlsgen'] = None; "
            f"spec = importlib.util.spec_from_file_location('driver', {str(driver)!r}); "
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
            "print(sorted(module.BACKENDS))")
    done = subprocess.run(["python3", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['csim', 'pynq', 'xrt']"
    body = driver.read_text()
    imports = [line.strip() for line in body.splitlines() if re.match(r"\s*(from|import) hlsgen", line)]
    assert imports == ["from hlsgen.tools.device import CsimDevice     # the only backend that needs hlsgen"]
