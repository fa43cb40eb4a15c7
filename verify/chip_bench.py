"""cocotb bench of the whole chip through its byte stream, compared with the golden model.

The scenario is a list of request chunks (byte strings) and, for each, the reply bytes that
`spikefab.sim.ChipModel.feed` returned for it. The bench sends every chunk (random idle gaps),
reads the reply bytes (random back-pressure) and compares them byte for byte; the first
difference fails the test naming the request, its opcode, the offset, expected and actual bytes.
"""

import os
import random

import numpy as np

from .cocotb_api import Clock, RisingEdge, cocotb
from .rtlsim import high, hold_reset


@cocotb.test()
async def byte_exchange(dut):
    with np.load(os.environ["SPIKEFAB_SCENARIO"]) as f:
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
    await hold_reset(dut, 2)
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
    np.savez(os.environ["SPIKEFAB_RESULT"], **result)
    assert "failure" not in result, result.get("failure")


class _UARTHost:
    """The host's end of the chip's UART: sends bytes bit by bit, decodes the `tx` line."""

    def __init__(self, dut, divisor: int):
        self.dut, self.d = dut, divisor
        self.got = bytearray()
        self._bits, self._last, self._countdown = [], 1, 0

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.rx.value = 1
        await hold_reset(self.dut, 2)

    async def cycle(self):
        await RisingEdge(self.dut.clk)
        self._sample(int(self.dut.tx.value))

    async def send(self, data: bytes):
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.rx.value = bit
                for _ in range(self.d):
                    await self.cycle()

    async def receive(self, n: int, max_cycles: int):
        """Run until `got` holds `n` more bytes or `max_cycles` have passed."""
        want = len(self.got) + n
        for _ in range(max_cycles):
            if len(self.got) >= want:
                return
            await self.cycle()

    def _sample(self, level):
        """Mid-bit samples after each falling start edge."""
        d = self.d
        if self._countdown:
            self._countdown -= 1
            if self._countdown % d == 0 and self._countdown < 9 * d:
                self._bits.append(level)
                if len(self._bits) == 9:           # 8 data bits and the stop bit
                    if self._bits[8] != 1:
                        raise AssertionError("the chip sent a byte without a stop bit")
                    self.got.append(sum(b << i for i, b in enumerate(self._bits[:8])))
                    self._bits, self._countdown = [], 0
        elif self._last == 1 and level == 0:
            self._countdown = d // 2 + 9 * d
        self._last = level


@cocotb.test()
async def uart_exchange(dut):
    """The same comparison through the UART lines, one bit per `divisor` cycles."""
    with np.load(os.environ["SPIKEFAB_SCENARIO"]) as f:
        sc = {k: f[k] for k in f.files}
    d = int(sc["divisor"])
    data, offsets = sc["requests"].tobytes(), sc["request_offsets"]
    replies, reply_offsets = sc["replies"].tobytes(), sc["reply_offsets"]
    host = _UARTHost(dut, d)
    await host.reset()
    result = {}
    for r in range(len(offsets) - 1):
        want = replies[reply_offsets[r]:reply_offsets[r + 1]]
        start = len(host.got)
        await host.send(data[offsets[r]:offsets[r + 1]])
        await host.receive(len(want) - (len(host.got) - start), 200 * d * (len(want) + 4))
        if bytes(host.got[start:]) != want:
            result["failure"] = (f"request {r}: expected reply {want.hex()}, got "
                                 f"{bytes(host.got[start:]).hex()}")
            break
    result["bytes"] = np.array(len(host.got))
    np.savez(os.environ["SPIKEFAB_RESULT"], **result)


@cocotb.test()
async def uart_flood(dut):
    """Bytes sent while the chip is busy overflow its receive FIFO; READ_STATUS counts them.

    Sends the scenario's `busy` request (a long TICK) and at once `flood` (garbage without a
    delimiter), waits (at most `max_cycles`) for the reply bytes the model predicts for `busy`,
    then sends `after` (a delimiter and READ_STATUS), runs `after_cycles` more cycles and
    records every byte the chip sent.
    """
    with np.load(os.environ["SPIKEFAB_SCENARIO"]) as f:
        sc = {k: f[k] for k in f.files}
    host = _UARTHost(dut, int(sc["divisor"]))
    await host.reset()
    await host.send(sc["busy"].tobytes() + sc["flood"].tobytes())
    await host.receive(int(sc["busy_reply_bytes"]), int(sc["max_cycles"]))
    await host.send(sc["after"].tobytes())
    await host.receive(1 << 16, int(sc["after_cycles"]))
    np.savez(os.environ["SPIKEFAB_RESULT"], got=np.frombuffer(bytes(host.got), dtype=np.uint8))
