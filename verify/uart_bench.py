"""cocotb testbench of the 8N1 UART: drives and decodes the serial lines bit by bit from Python.

Loaded inside the simulator by `tests/test_uart.py` through `spikefab.verify.rtlsim.run_cocotb`, on
a `spikefab.verify.harness.UARTLoopbackHarness` (a transmitter and a receiver, not connected). The
scenario `.npz` holds `seed`, `tx_divisor`, `rx_divisor`, `n_bytes` and, for the receive test,
`mismatch` (the sender's relative bit-period error). Every random choice comes from `seed`, which is
logged and named in every failure message. Results go to the `.npz` named by `$SPIKEFAB_RESULT`
(`bytes_checked`, plus a `failure` string if a check failed).

One coroutine services everything once per clock cycle. After `await RisingEdge` it reads the
values the design sampled at that edge (transfers, the `tx` line), then drives the inputs for the
next edge. Edge numbers count rising edges since reset; a level scheduled for edge k on `rx` is
the value the design's synchroniser samples at edge k and after.
"""

from __future__ import annotations

import math
import os
import random
from collections import deque

import numpy as np

from .cocotb_api import Clock, RisingEdge, cocotb
from .rtlsim import hold_reset


def _fail(message: str):
    raise AssertionError(message)


def frame_bits(byte: int, stop: int = 1) -> list[int]:
    """Line levels of one 8N1 frame: start (0), data LSB first, stop."""
    return [0] + [(byte >> k) & 1 for k in range(8)] + [stop]


class UARTBench:
    """Drive `rx` and `tx_i`, sample `tx` and `rx_o`, one call of `cycle` per clock cycle."""

    def __init__(self, dut, seed: int):
        self.dut = dut
        self.rng = random.Random(seed)
        self.cycles = 0
        # rx line: (edge, level) changes in edge order.
        self.rx_schedule: deque[tuple[int, int]] = deque()
        self.rx_level = 1
        self.loopback = False              # drive rx with the tx level seen at the last edge
        self.rx_ready_prob = 1.0           # chance that rx_o.ready is high in a cycle
        self.received: list[tuple[int, int]] = []      # (edge, byte) taken from rx_o
        self.rx_valid_edges: list[int] = []  # first edge at which each rx_o byte was valid
        self.rx_starts: list[int] = []       # edge of each scheduled frame's start bit
        # tx_i stream: (idle cycles before offering, byte) per byte, in order.
        self.tx_queue: deque[tuple[int, int]] = deque()
        self.tx_offered: list[int] = []    # edge at which each byte was first seen valid
        self.tx_accepted: list[int] = []   # edge of each byte's transfer
        self.tx_samples: list[int] = [1]   # tx_samples[n]: the tx level sampled at edge n
        self._tx_valid = False
        self._tx_wait = 0
        self._rx_ready = False
        self._rx_pending = False

    async def reset(self):
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rx.value = 1
        await hold_reset(dut, 3, idle=("tx_i__valid", "tx_i__payload", "rx_o__ready"))

    async def cycle(self):
        dut = self.dut
        await RisingEdge(dut.clk)
        self.cycles += 1
        n = self.cycles
        # What happened at edge n.
        rx_valid = int(dut.rx_o__valid.value)
        if rx_valid and not self._rx_pending:
            self.rx_valid_edges.append(n)
        self._rx_pending = rx_valid and not self._rx_ready
        if self._rx_ready and rx_valid:
            self.received.append((n, dut.rx_o__payload.value.to_unsigned()))
        if self._tx_valid and int(dut.tx_i__ready.value):
            self.tx_queue.popleft()
            self.tx_accepted.append(n)
            self._tx_valid = False
            self._tx_wait = self.tx_queue[0][0] if self.tx_queue else 0
        self.tx_samples.append(int(dut.tx.value))
        # Inputs for edge n + 1.
        if self.loopback:
            self.rx_level = self.tx_samples[-1]
        while self.rx_schedule and self.rx_schedule[0][0] <= n + 1:
            self.rx_level = self.rx_schedule.popleft()[1]
        dut.rx.value = self.rx_level
        if not self._tx_valid and self.tx_queue:
            if self._tx_wait > 0:
                self._tx_wait -= 1
            else:
                dut.tx_i__payload.value = self.tx_queue[0][1]
                self._tx_valid = True
                self.tx_offered.append(n + 1)
        dut.tx_i__valid.value = int(self._tx_valid)
        self._rx_ready = self.rx_ready_prob >= 1 or self.rng.random() < self.rx_ready_prob
        dut.rx_o__ready.value = int(self._rx_ready)

    async def run_until(self, done, what: str, limit: int = 2_000_000):
        start = self.cycles
        while not done():
            if self.cycles - start > limit:
                _fail(f"timeout after {limit} cycles waiting for {what}")
            await self.cycle()

    async def run_cycles(self, count: int):
        for _ in range(count):
            await self.cycle()

    def send_tx(self, byte: int, idle: int = 0):
        if not self.tx_queue and not self._tx_valid:
            self._tx_wait = idle
        self.tx_queue.append((idle, byte))

    def schedule_rx(self, frames, period: float) -> int:
        """Put (idle bit periods before, line levels) frames on `rx`, each level `period` cycles.

        Edges are computed in fractional cycles and rounded, so that a period that is not a whole
        number of cycles is right on average (the rounding is the sender's clock quantisation).
        The line returns high after every frame. Returns the edge at which the last frame ends.
        """
        t = self.cycles + 2 + self.rng.random()     # random phase of the sender's clock
        for idle, levels in frames:
            t += idle * period
            self.rx_starts.append(math.floor(t + 0.5))
            for level in levels:
                self.rx_schedule.append((math.floor(t + 0.5), level))
                t += period
            self.rx_schedule.append((math.floor(t + 0.5), 1))
        return math.floor(t + 0.5)

    def random_idle(self) -> float:
        """Idle time before a frame, in bit periods: back to back half of the time."""
        return 0.0 if self.rng.random() < 0.5 else self.rng.uniform(0.0, 3.0)

    def counters(self) -> tuple[int, int]:
        return (self.dut.framing_errors.value.to_unsigned(),
                self.dut.overflow.value.to_unsigned())


def check_bytes(actual: list[int], expected: list[int], what: str):
    for index, want in enumerate(expected):
        if index >= len(actual):
            _fail(f"{what} byte {index}: expected {want:#04x}, got nothing "
                  f"({len(actual)} of {len(expected)} bytes arrived)")
        if actual[index] != want:
            _fail(f"{what} byte {index}: expected {want:#04x}, got {actual[index]:#04x}")
    if len(actual) > len(expected):
        _fail(f"{what} byte {len(expected)}: expected nothing, got {actual[len(expected)]:#04x} "
              f"({len(actual)} bytes instead of {len(expected)})")


def check_counters(bench: UARTBench, framing: int, overflow: int, when: str):
    actual_framing, actual_overflow = bench.counters()
    if actual_framing != framing:
        _fail(f"{when}: framing_errors expected {framing}, got {actual_framing}")
    if actual_overflow != overflow:
        _fail(f"{when}: overflow expected {overflow}, got {actual_overflow}")


def decode_tx(samples: list[int], divisor: int) -> list[tuple[int, int]]:
    """Decode the sampled `tx` line into (start edge, byte), insisting on exact bit lengths."""
    frames = []
    n = 1
    while n < len(samples):
        if samples[n]:
            n += 1
            continue
        if n + 10 * divisor > len(samples):
            _fail(f"tx frame {len(frames)} starting at edge {n} is cut short by the end of the run")
        levels = []
        for k in range(10):
            seg = samples[n + k * divisor:n + (k + 1) * divisor]
            if min(seg) != max(seg):
                _fail(f"tx frame {len(frames)} (edge {n}): bit {k} is not one level for exactly "
                      f"{divisor} cycles: {''.join(map(str, seg))}")
            levels.append(seg[0])
        if levels[9] != 1:
            _fail(f"tx frame {len(frames)} (edge {n}): stop bit is 0")
        frames.append((n, sum(bit << k for k, bit in enumerate(levels[1:9]))))
        n += 10 * divisor
    return frames


def _load_scenario() -> dict:
    with np.load(os.environ["SPIKEFAB_SCENARIO"], allow_pickle=False) as f:
        return {k: f[k].item() for k in f.files}


async def _run(dut, body):
    sc = _load_scenario()
    seed = int(sc["seed"])
    dut._log.info("seed %d, scenario %s", seed, sc)
    bench = UARTBench(dut, seed)
    result = {"seed": seed, "bytes_checked": 0}
    try:
        await bench.reset()
        await bench.run_cycles(4)
        await body(bench, sc, result)
    except AssertionError as exc:
        result["failure"] = f"seed {seed}: {exc}"
        raise AssertionError(result["failure"]) from None
    finally:
        np.savez(os.environ["SPIKEFAB_RESULT"], **{k: np.asarray(v) for k, v in result.items()})


@cocotb.test()
async def receive_bytes(dut):
    """Random bytes from a sender whose bit period is off by `mismatch`, with random idle gaps."""
    async def body(bench, sc, result):
        d, mismatch = int(sc["rx_divisor"]), float(sc["mismatch"])
        data = [bench.rng.randrange(256) for _ in range(int(sc["n_bytes"]))]
        bench.rx_ready_prob = 0.7     # back-pressure, short enough never to overflow
        end = bench.schedule_rx([(bench.random_idle(), frame_bits(b)) for b in data],
                                d * (1 + mismatch))
        await bench.run_until(lambda: bench.cycles > end + 3 * d, "the end of the frames")
        check_bytes([b for _, b in bench.received], data, f"divisor {d}, mismatch {mismatch}:")
        check_counters(bench, 0, 0, "after all frames")
        # The contract's latency: rx_o.valid is first seen at edge start + d // 2 + 9 d + 3 (the
        # synchroniser's two, the edge detection's one and the output register's), whatever the
        # mismatch, because every sample is timed from the detected start edge.
        latency = d // 2 + 9 * d + 3
        for k, (start, valid) in enumerate(zip(bench.rx_starts, bench.rx_valid_edges)):
            if valid - start != latency:
                _fail(f"byte {k}: start bit at edge {start}, rx_o.valid at edge {valid}: latency "
                      f"{valid - start}, expected {latency}")
        result["bytes_checked"] = len(data)
        result["receive_edges"] = [edge for edge, _ in bench.received]
    await _run(dut, body)


@cocotb.test()
async def framing_error(dut):
    """A stop bit of 0 counts one framing error and loses only that byte; so does a break."""
    async def body(bench, sc, result):
        d = int(sc["rx_divisor"])
        rng = bench.rng
        good = [rng.randrange(256) for _ in range(4)]
        bad = rng.randrange(256)
        bench.rx_ready_prob = 1.0
        end = bench.schedule_rx([(1, frame_bits(good[0])), (0, frame_bits(bad, stop=0)),
                                 (rng.uniform(0.5, 2.0), frame_bits(good[1]))], d)
        await bench.run_until(lambda: bench.cycles > end + 3 * d, "the frames")
        check_bytes([b for _, b in bench.received], good[:2], "after a bad stop bit:")
        check_counters(bench, 1, 0, "after a bad stop bit")
        # A break: the line held low for three frame times is one framing error, not three.
        end = bench.schedule_rx([(1, [0] * 30), (rng.uniform(0.5, 2.0), frame_bits(good[2])),
                                 (0, frame_bits(good[3]))], d)
        await bench.run_until(lambda: bench.cycles > end + 3 * d, "the frames after a break")
        check_bytes([b for _, b in bench.received], good, "after a break:")
        check_counters(bench, 2, 0, "after a break")
        result["bytes_checked"] = len(good)
    await _run(dut, body)


@cocotb.test()
async def glitch(dut):
    """Low pulses on an idle line of up to `divisor // 2` cycles produce no byte and no error."""
    async def body(bench, sc, result):
        d = int(sc["rx_divisor"])
        rng = bench.rng
        short = list(range(1, d // 2 - 2))      # the required margin: shorter than d // 2 - 2
        lengths = [rng.choice(short) for _ in range(8)] if short else []
        lengths.append(d // 2)                   # the documented limit
        for length in lengths:
            start = bench.cycles + rng.randrange(1, 2 * d)
            bench.rx_schedule.extend([(start, 0), (start + length, 1)])
            await bench.run_until(lambda end=start + 11 * d: bench.cycles > end, "a glitch")
            check_bytes([b for _, b in bench.received], [], f"after a {length}-cycle glitch:")
            check_counters(bench, 0, 0, f"after a {length}-cycle glitch")
        # One cycle more is a start bit (and the line staying high makes it 0xff); after it the
        # receiver still takes an ordinary byte.
        byte = rng.randrange(256)
        start = bench.cycles + 2
        bench.rx_schedule.extend([(start, 0), (start + d // 2 + 1, 1)])
        await bench.run_until(lambda: bench.cycles > start + 11 * d, "a start bit")
        end = bench.schedule_rx([(1, frame_bits(byte))], d)
        await bench.run_until(lambda: bench.cycles > end + 3 * d, "a byte after the glitches")
        check_bytes([b for _, b in bench.received], [0xFF, byte], "after the glitches:")
        check_counters(bench, 0, 0, "after the glitches")
        result["bytes_checked"] = 2
        result["glitch_lengths"] = lengths
    await _run(dut, body)


@cocotb.test()
async def overflow(dut):
    """With rx_o.ready low the first byte is held and the second is dropped and counted."""
    async def body(bench, sc, result):
        d = int(sc["rx_divisor"])
        rng = bench.rng
        data = [rng.randrange(256) for _ in range(3)]
        bench.rx_ready_prob = 0.0
        end = bench.schedule_rx([(1, frame_bits(data[0])), (bench.random_idle(),
                                                            frame_bits(data[1]))], d)
        await bench.run_until(lambda: bench.cycles > end + 3 * d, "two frames")
        dut = bench.dut
        if not int(dut.rx_o__valid.value):
            _fail("with ready low, rx_o.valid is not holding the first byte")
        held = dut.rx_o__payload.value.to_unsigned()
        if held != data[0]:
            _fail(f"held byte 0: expected {data[0]:#04x}, got {held:#04x}")
        check_counters(bench, 0, 1, "after two bytes with ready low")
        bench.rx_ready_prob = 1.0
        end = bench.schedule_rx([(2, frame_bits(data[2]))], d)
        await bench.run_until(lambda: bench.cycles > end + 3 * d, "a third frame")
        check_bytes([b for _, b in bench.received], [data[0], data[2]], "after the overflow:")
        check_counters(bench, 0, 1, "after the third byte")
        result["bytes_checked"] = 3
    await _run(dut, body)


@cocotb.test()
async def transmit_bytes(dut):
    """Random bytes with random idle gaps into tx_i; decode the sampled tx line bit by bit."""
    async def body(bench, sc, result):
        d = int(sc["tx_divisor"])
        rng = bench.rng
        data = [rng.randrange(256) for _ in range(int(sc["n_bytes"]))]
        for byte in data:
            idle = 0 if rng.random() < 0.5 else rng.randrange(15 * d)
            bench.send_tx(byte, idle)
        await bench.run_until(lambda: len(bench.tx_accepted) == len(data), "tx_i transfers")
        await bench.run_cycles(10 * d + 5)
        frames = decode_tx(bench.tx_samples, d)
        check_bytes([b for _, b in frames], data, f"tx line at divisor {d}:")
        accepted, offered = bench.tx_accepted, bench.tx_offered
        for k, ((start, _), accept) in enumerate(zip(frames, accepted)):
            if start != accept + 1:
                _fail(f"tx frame {k}: start bit at edge {start}, expected {accept + 1} (the cycle "
                      f"after its transfer at edge {accept})")
            # A waiting byte is taken in the last cycle of the stop bit: no dead time.
            earliest = offered[k] if k == 0 else max(offered[k], accepted[k - 1] + 10 * d)
            if accept != earliest:
                _fail(f"tx byte {k}: offered at edge {offered[k]}, taken at edge {accept}, "
                      f"expected {earliest}")
        result["bytes_checked"] = len(data)
        result["back_to_back"] = sum(
            1 for k in range(1, len(data)) if accepted[k] == accepted[k - 1] + 10 * d)
    await _run(dut, body)


@cocotb.test()
async def loopback(dut):
    """The transmitter's line fed back into the receiver (one cycle late) carries random bytes."""
    async def body(bench, sc, result):
        d = int(sc["tx_divisor"])
        rng = bench.rng
        data = [rng.randrange(256) for _ in range(int(sc["n_bytes"]))]
        bench.loopback = True
        bench.rx_ready_prob = 0.5
        for byte in data:
            bench.send_tx(byte, 0 if rng.random() < 0.5 else rng.randrange(3 * d))
        await bench.run_until(lambda: len(bench.received) == len(data) or bench.cycles >
                              (len(data) + 2) * 14 * d, "looped-back bytes")
        await bench.run_cycles(2 * d)
        check_bytes([b for _, b in bench.received], data, "looped back:")
        check_counters(bench, 0, 0, "after the loopback")
        result["bytes_checked"] = len(data)
    await _run(dut, body)
