"""The board-level RTL of an ECP5 project (flow `ecp5`): the top that wraps `<top>_core` with the
PLL, the UART and the framed protocol (templates/rtl/board/), and the pin constraints (.lpf), all
printed from the plan and the board file.

    board/<top>_board.v   the top: EHXPLLL, reset, protocol, `<top>_core`
    board/<top>_uart.v    8N1 receiver and transmitter
    board/<top>.lpf       pins and the oscillator's frequency, from boards/<board>.yaml
"""

from __future__ import annotations

from dataclasses import dataclass

from hlsgen.hardware import open_board as ob
from hlsgen.hardware.planner import HardwarePlan

BOARD_DIR = "board"


@dataclass(frozen=True)
class BoardFiles:
    top: str

    @property
    def module(self) -> str:
        return f"{self.top}_board"

    @property
    def verilog(self) -> list[str]:
        return [f"{BOARD_DIR}/{self.top}_board.v", f"{BOARD_DIR}/{self.top}_uart.v"]

    @property
    def lpf(self) -> str:
        return f"{BOARD_DIR}/{self.top}.lpf"


def core_widths(plan: HardwarePlan) -> dict:
    """The widths of `<top>_core`'s ports (the interface agreed with the core's generator)."""
    return {"token_w": max(1, (plan.vocab - 1).bit_length()), "slot_w": max(1, (plan.batch - 1).bit_length()),
            "act_w": plan.numerics["act_width"]}


def design_id(spec_digest: str) -> int:
    """24 bits of the spec's digest: the version word tells the driver which design answers."""
    return int(spec_digest[:6], 16)


def version_word(spec_digest: str) -> int:
    return ob.PROTOCOL_VERSION << 24 | design_id(spec_digest)


def context(plan: HardwarePlan, spec_digest: str) -> dict:
    link = ob.Link.of(plan)
    return dict(link=link, e=plan.board.ecp5, board=plan.board, clock_mhz=plan.clock_mhz,
                defines=ob.clock_defines(plan.board, plan.clock_mhz), version_word=version_word(spec_digest),
                protocol_version=ob.PROTOCOL_VERSION, sync_in=ob.SYNC_IN, sync_out=ob.SYNC_OUT,
                cmd_version=ob.CMD_VERSION, cmd_run=ob.CMD_RUN, cmd_generate=ob.CMD_GENERATE,
                max_payload=max(1 + link.batch * link.entry_bytes, 4 + link.token_bytes),
                max_count=link.max_generate(False), max_count_logits=link.max_generate(True),
                idle_ms=ob.IDLE_TIMEOUT_S * 1e3, status_names=ob.STATUS, reset_bit=ob.RESET_BIT,
                flag_logits=ob.FLAG_LOGITS, **core_widths(plan))


def project_files(plan: HardwarePlan, env, ctx: dict) -> dict:
    """{relpath: text}; `ctx` is the project's template context with context(plan, ...) in it."""
    files = BoardFiles(plan.top)
    return {files.verilog[0]: env.get_template("rtl/board/board_top.v.j2").render(**ctx),
            files.verilog[1]: env.get_template("rtl/board/uart.v.j2").render(**ctx),
            files.lpf: env.get_template("rtl/board/board.lpf.j2").render(**ctx)}
