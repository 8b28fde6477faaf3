"""cocotb bench of `<top>_board` (the board top, its UART and protocol around `<top>_core`): the
generated host driver talks to the simulated design over a pseudo-terminal.

The driver runs as its own process on the pty's slave side (`--backend serial --device /dev/pts/N`);
this bench moves each byte the driver writes onto the `uart_rx` pin, 8N1 at the design's baud rate,
and each byte it decodes from the `uart_tx` pin back to the pty.  The run file
(HLSGEN_SERIAL_RUN) names the driver, its arguments and the clock; the outcome (the driver's exit
code and output, framing errors on the pin, simulated time) goes to the report file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tty
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, Timer

POLL_PS = 1_000_000          # how often the pty is read, in simulated time (1 us)


@cocotb.test()
async def driver_over_uart(dut):
    run = json.loads(Path(os.environ["HLSGEN_SERIAL_RUN"]).read_text())
    bit_ps = round(1e12 / run["baud"])
    # In simulation the PLL is bypassed: the pin runs at the plan's clock. cocotb splits a period
    # into two equal halves, so it is an even number of picoseconds (30 MHz: 33,334 ps).
    Clock(dut.clk_osc, 2 * round(5e5 / run["clock_mhz"]), unit="ps").start()
    dut.uart_rx.value = 1
    master, slave = os.openpty()
    tty.setraw(master)
    os.set_blocking(master, False)
    env = dict(os.environ, HLSGEN_SERIAL_TIMEOUT=str(run["timeout_s"]))
    driver = subprocess.Popen([sys.executable, run["driver"], "--backend", "serial", "--device", os.ttyname(slave),
                               *run["args"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    to_fpga = bytearray()
    stats = {"bytes_to_fpga": 0, "bytes_from_fpga": 0, "stop_bit_errors": 0}

    async def transmit():
        while True:
            if not to_fpga:
                await Timer(POLL_PS, unit="ps")
                continue
            byte = to_fpga.pop(0)
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                dut.uart_rx.value = bit
                await Timer(bit_ps, unit="ps")
            stats["bytes_to_fpga"] += 1

    async def receive():
        while True:
            await FallingEdge(dut.uart_tx)
            await Timer(bit_ps * 3 // 2, unit="ps")            # the middle of data bit 0
            byte = 0
            for k in range(8):
                byte |= int(dut.uart_tx.value) << k
                await Timer(bit_ps, unit="ps")
            if int(dut.uart_tx.value) != 1:
                stats["stop_bit_errors"] += 1
            os.write(master, bytes([byte]))
            stats["bytes_from_fpga"] += 1

    cocotb.start_soon(transmit())
    cocotb.start_soon(receive())
    started = time.monotonic()
    while driver.poll() is None:
        await Timer(POLL_PS, unit="ps")
        try:
            to_fpga += os.read(master, 4096)
        except (BlockingIOError, OSError):
            pass
        if time.monotonic() - started > run["wall_limit_s"]:
            driver.kill()
            break
    output = driver.communicate()[0]
    report = dict(stats, returncode=driver.returncode, output=output, seconds=time.monotonic() - started,
                  simulated_ms=get_sim_time("ns") / 1e6)
    Path(run["report"]).write_text(json.dumps(report, indent=1))
    os.close(slave)
    os.close(master)
    assert driver.returncode == 0, f"the driver exited with {driver.returncode}:\n{output}"
    assert stats["stop_bit_errors"] == 0, f"{stats['stop_bit_errors']} bytes with a low stop bit on uart_tx"
