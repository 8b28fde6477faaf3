"""A stand-in `<top>_core` for testing the board top and the serial link without the real core:
it replays the project's golden vectors (tb/data), token by token, with the core's ports and timing
contract (start while idle, the logits one per cycle, then done with the next token).

It checks what it is given: a token, slot or reset that differs from the testbench's sequence
makes it answer with wrong logits and a wrong next token, so a link that garbles or reorders
anything fails the driver's self-test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CALL_HEADER = 3          # n_tokens, batch_mode, reset_state (hlsgen/project/calls.py)
LATENCY = 40             # cycles from start to the first logit


def expected_inputs(project: Path, call_width: int) -> list[tuple[int, int, int]]:
    """(token, slot, reset) of every token the testbench's calls run, in order."""
    calls = np.fromfile(project / "tb" / "data" / "calls.bin", "<i4").reshape(-1, call_width)
    inputs = []
    for n, batch_mode, mask, *tokens in calls[:, :CALL_HEADER + 16].tolist():
        for j in range(n):
            slot = j if batch_mode else 0
            reset = (mask >> j) & 1 if batch_mode else int(j == 0 and mask & 1)
            inputs.append((tokens[j], slot, reset))
    return inputs


def verilog(project: Path, top: str, vocab: int, widths: dict, call_width: int, out: Path) -> Path:
    """Write `<top>_core` and its ROM images into `out`; returns the Verilog file."""
    data = project / "tb" / "data"
    logits = np.fromfile(data / "expected_logits.bin", "<i4")
    next_tokens = np.fromfile(data / "expected_next.bin", "<i4")
    inputs = expected_inputs(project, call_width)
    t_count = len(next_tokens)
    act_w, token_w, slot_w = widths["act_w"], widths["token_w"], widths["slot_w"]
    mask = (1 << act_w) - 1
    (out / "standin_logits.hex").write_text("\n".join(f"{int(v) & mask:x}" for v in logits) + "\n")
    (out / "standin_next.hex").write_text("\n".join(f"{int(v):x}" for v in next_tokens) + "\n")
    expect = [(tok << (slot_w + 1)) | (slot << 1) | reset for tok, slot, reset in inputs]
    (out / "standin_inputs.hex").write_text("\n".join(f"{v:x}" for v in expect) + "\n")
    index_w = max(1, (t_count * vocab).bit_length())
    text = f"""// Stand-in core (sim/standin_core.py): replays the golden vectors of {t_count} tokens.
`default_nettype none
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */
module {top}_core (
    input  wire clk,
    input  wire rst,
    input  wire start,
    input  wire [{token_w - 1}:0] token,
    input  wire [{slot_w - 1}:0] slot,
    input  wire reset_state,
    output wire idle,
    output reg  done,
    output reg  [{token_w - 1}:0] next_token,
    output reg  logit_valid,
    output reg  signed [{act_w - 1}:0] logit
);
    reg [{act_w - 1}:0] logits_rom [0:{t_count * vocab - 1}];
    reg [{token_w - 1}:0] next_rom [0:{t_count - 1}];
    reg [{token_w + slot_w}:0] inputs_rom [0:{t_count - 1}];
    initial begin
        $readmemh("standin_logits.hex", logits_rom);
        $readmemh("standin_next.hex", next_rom);
        $readmemh("standin_inputs.hex", inputs_rom);
    end
    reg busy, wrong;
    reg [15:0] t, wait_cycles;
    reg [{index_w - 1}:0] i;
    assign idle = !busy;
    always @(posedge clk) begin
        done <= 1'b0;
        logit_valid <= 1'b0;
        if (rst) begin
            busy <= 1'b0;
            t <= 16'd0;
        end else if (!busy) begin
            if (start) begin
                busy <= 1'b1;
                wait_cycles <= 16'd{LATENCY};
                i <= 0;
                wrong <= t >= {t_count} || inputs_rom[t] != {{token, slot, reset_state}};
            end
        end else if (wait_cycles != 16'd0) begin
            wait_cycles <= wait_cycles - 16'd1;
        end else if (i != {vocab}) begin
            logit_valid <= 1'b1;
            logit <= wrong ? {act_w}'sd1 : logits_rom[t * {vocab} + i];
            i <= i + 1'b1;
        end else begin
            done <= 1'b1;
            next_token <= wrong ? {token_w}'d0 : next_rom[t];
            t <= t + 16'd1;
            busy <= 1'b0;
        end
    end
endmodule
"""
    path = out / f"{top}_core_standin.v"
    path.write_text(text)
    return path
