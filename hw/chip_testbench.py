"""cocotb bench of the whole chip through its byte stream, compared with the golden model.

The scenario is a list of request chunks (byte strings) and, for each, the reply bytes that
`spikeforge.sim.ChipModel.feed` returned for it. The bench sends every chunk (random idle gaps),
reads the reply bytes (random back-pressure) and compares them byte for byte; the first
difference fails the test naming the request, its opcode, the offset, expected and actual bytes.
"""

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from .rtlsim import high


@cocotb.test()
async def byte_exchange(dut):
    with np.load(os.environ["SPIKEFORGE_SCENARIO"]) as f:
        sc = {k: f[k] for k in f.files}
    seed = int(sc["seed"])
    gap, stall = float(sc["gap_prob"]), float(sc["stall_prob"])
    data, offsets = sc["requests"].tobytes(), sc["request_offsets"]
    replies, reply_offsets = sc["replies"].tobytes(), sc["reply_offsets"]
    dut._log.info("seed %d: %d requests", seed, len(offsets) - 1)
    rng = random.Random(seed)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.uart_framing_errors.value = 0
    dut.uart_overflows.value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    result, cycles, request_cycles = {}, 0, []
    for r in range(len(offsets) - 1):
        started = cycles
        chunk = data[offsets[r]:offsets[r + 1]]
        want = replies[reply_offsets[r]:reply_offsets[r + 1]]
        got = bytearray()
        sent, valid, ready, idle = 0, False, False, 0
        while sent < len(chunk) or len(got) < len(want) or idle < 50:
            await RisingEdge(dut.clk)
            cycles += 1
            idle += 1
            if valid and high(dut.i__ready):
                sent += 1
                valid = False
                idle = 0
            if ready and high(dut.o__valid):
                got.append(dut.o__payload.value.to_unsigned())
                idle = 0
            if not valid and sent < len(chunk) and rng.random() >= gap:
                dut.i__payload.value = chunk[sent]
                valid = True
            dut.i__valid.value = valid
            ready = rng.random() >= stall
            dut.o__ready.value = ready
            if idle > 2_000_000:
                break
        if bytes(got) != want:
            k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                     min(len(got), len(want)))
            result["failure"] = (
                f"seed {seed}: request {r} (first bytes {chunk[:4].hex()}): reply differs at "
                f"byte {k}: expected {want[k:k + 16].hex()}, got {bytes(got[k:k + 16]).hex()} "
                f"({len(got)} of {len(want)} bytes)")
            break
        request_cycles.append(cycles - started - idle)   # up to the last reply byte
        if r % max(1, (len(offsets) - 1) // 10) == 0:
            dut._log.info("request %d/%d matched (%d cycles)", r + 1, len(offsets) - 1, cycles)
    result["cycles"] = np.array(cycles)
    result["request_cycles"] = np.array(request_cycles, dtype=np.int64)
    np.savez(os.environ["SPIKEFORGE_RESULT"], **result)
    assert "failure" not in result, result.get("failure")


@cocotb.test()
async def uart_exchange(dut):
    """The same comparison through the UART lines, one bit per `divisor` cycles."""
    with np.load(os.environ["SPIKEFORGE_SCENARIO"]) as f:
        sc = {k: f[k] for k in f.files}
    d = int(sc["divisor"])
    data, offsets = sc["requests"].tobytes(), sc["request_offsets"]
    replies, reply_offsets = sc["replies"].tobytes(), sc["reply_offsets"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    got = bytearray()
    line = {"bits": [], "last": 1, "countdown": 0}

    def sample_tx(level):
        """Decode the tx line: mid-bit samples after each falling start edge."""
        if line["countdown"]:
            line["countdown"] -= 1
            if line["countdown"] % d == 0 and line["countdown"] < 9 * d:
                line["bits"].append(level)
                if len(line["bits"]) == 9:           # 8 data bits and the stop bit
                    if line["bits"][8] != 1:
                        raise AssertionError("the chip sent a byte without a stop bit")
                    got.append(sum(b << i for i, b in enumerate(line["bits"][:8])))
                    line["bits"], line["countdown"] = [], 0
        elif line["last"] == 1 and level == 0:
            line["countdown"] = d // 2 + 9 * d + 1
            line["countdown"] -= 1
        line["last"] = level

    result = {}
    for r in range(len(offsets) - 1):
        chunk = data[offsets[r]:offsets[r + 1]]
        want = replies[reply_offsets[r]:reply_offsets[r + 1]]
        start = len(got)
        bits = [b for byte in chunk for b in [0] + [(byte >> i) & 1 for i in range(8)] + [1]]
        for bit in bits:
            dut.rx.value = bit
            for _ in range(d):
                await RisingEdge(dut.clk)
                sample_tx(int(dut.tx.value))
        for _ in range(200 * d * (len(want) + 4)):
            if len(got) - start >= len(want):
                break
            await RisingEdge(dut.clk)
            sample_tx(int(dut.tx.value))
        if bytes(got[start:]) != want:
            result["failure"] = (f"request {r}: expected reply {want.hex()}, got "
                                 f"{bytes(got[start:]).hex()}")
            break
    result["bytes"] = np.array(len(got))
    np.savez(os.environ["SPIKEFORGE_RESULT"], **result)
    assert "failure" not in result, result.get("failure")
