"""cocotb bench of the framing blocks: an echo harness compared with the `cobs` library.

`FrameEcho` answers every frame: an OK frame with its own payload, any other with the 3-byte
error payload (ERROR_OP, 0, status) that the chip sends. The bench sends seeded random traffic
(good frames, bit flips, truncations, oversize and empty frames) with random idle gaps and
back-pressure, and checks that the bytes coming back equal what `spikefab.protocol` (built on
the `cobs` and `crc` libraries) says they must be.
"""

import os
import random

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikefab import protocol as P
from spikefab.hw.framing import FrameReceiver, FrameTransmitter

from .cocotb_api import Clock, RisingEdge, cocotb
from .rtlsim import high, hold_reset


class FrameEcho(wiring.Component):
    """Receiver -> copy or error payload -> transmitter (test harness)."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = FrameReceiver()
        m.submodules.tx = tx = FrameTransmitter()
        wiring.connect(m, wiring.flipped(self.i), rx.i)
        wiring.connect(m, tx.o, wiring.flipped(self.o))
        addr = Signal.like(rx.buf_addr)
        m.d.comb += rx.buf_addr.eq(addr)
        frame = rx.o_frame.payload
        with m.FSM():
            with m.State("WAIT"):
                with m.If(rx.o_frame.valid & ~tx.busy):
                    with m.If(frame.status == P.Status.OK):
                        m.d.comb += rx.buf_addr.eq(0)
                        m.d.sync += addr.eq(0)
                        m.next = "COPY"
                    with m.Else():
                        m.next = "ERR0"
            with m.State("COPY"):     # buf_data holds payload byte `addr`
                m.d.comb += [tx.w_en.eq(1), tx.w_data.eq(rx.buf_data),
                             rx.buf_addr.eq(addr + 1)]
                m.d.sync += addr.eq(addr + 1)
                with m.If(addr == frame.length - 1):
                    m.next = "SEND"
            with m.State("ERR0"):
                m.d.comb += [tx.w_en.eq(1), tx.w_data.eq(P.ERROR_OP)]
                m.next = "ERR1"
            with m.State("ERR1"):
                m.d.comb += [tx.w_en.eq(1), tx.w_data.eq(0)]
                m.next = "ERR2"
            with m.State("ERR2"):
                m.d.comb += [tx.w_en.eq(1), tx.w_data.eq(frame.status)]
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [tx.send.eq(1), rx.o_frame.ready.eq(1)]
                m.next = "WAIT"
        return m


def expected_reply(body: bytes) -> bytes:
    try:
        return P.encode_frame(P.decode_frame(body))
    except P.FrameError as exc:
        return P.encode_frame(bytes([P.ERROR_OP, 0, exc.status]))


def make_traffic(rng: random.Random, count: int):
    """Return (bytes to send, expected reply bytes)."""
    sent, expected = bytearray(), bytearray()
    for _ in range(count):
        length = rng.choice([2, 3, 10, 253, 254, 255, 300, P.MAX_PAYLOAD, rng.randrange(2, 40)])
        payload = bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)]) for _ in range(length))
        body = P.encode_frame(payload)[:-1]
        kind = rng.choice(["good", "good", "flip", "truncate", "oversize", "empty", "junk",
                           "payload_too_long"])
        if kind == "flip":
            flipped = bytearray(body)
            flipped[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
            body = bytes(flipped)
        elif kind == "truncate":
            body = body[:rng.randrange(1, len(body))]
        elif kind == "oversize":
            body = bytes(rng.randrange(1, 256) for _ in range(P.MAX_ENCODED + rng.randrange(1, 9)))
        elif kind == "empty":
            body = b""
        elif kind == "junk":
            body = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 12)))
        elif kind == "payload_too_long":
            data = bytes(rng.randrange(1, 256) for _ in range(P.MAX_PAYLOAD + 3))
            body = bytes([0xFF]) + data[:254] + bytes([0xFF]) + data[254:508] + \
                bytes([0xFF]) + data[508:762] + bytes([0xFF]) + data[762:1016] + \
                bytes([len(data) - 1016 + 1]) + data[1016:]
        for part in body.split(b"\x00"):      # a flip may create a delimiter: two frames
            if part:
                expected += expected_reply(part)
        sent += body + b"\x00"
    return bytes(sent), bytes(expected)


@cocotb.test()
async def echo_traffic(dut):
    with np.load(os.environ["SPIKEFAB_SCENARIO"]) as f:
        seed, count = int(f["seed"]), int(f["count"])
        gap, stall = float(f["gap_prob"]), float(f["stall_prob"])
    dut._log.info("seed %d", seed)
    rng = random.Random(seed)
    sent, expected = make_traffic(rng, count)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await hold_reset(dut, 2, idle=("i__valid", "o__ready"))
    received = bytearray()
    index, valid, ready = 0, False, False
    cycles = 0
    while len(received) < len(expected):
        await RisingEdge(dut.clk)
        cycles += 1
        if cycles > 200 * len(sent) + 100000:
            break
        if valid and high(dut.i__ready):
            index += 1
            valid = False
        if ready and high(dut.o__valid):
            received.append(dut.o__payload.value.to_unsigned())
        if not valid and index < len(sent) and rng.random() >= gap:
            dut.i__payload.value = sent[index]
            valid = True
        dut.i__valid.value = valid
        ready = rng.random() >= stall
        dut.o__ready.value = ready
    result = {"received": np.frombuffer(bytes(received), dtype=np.uint8)}
    if bytes(received) != expected:
        first = next((k for k, (a, b) in enumerate(zip(received, expected)) if a != b),
                     min(len(received), len(expected)))
        result["failure"] = (f"seed {seed}: reply bytes differ at offset {first}: expected "
                             f"{expected[first:first + 12].hex()}, got "
                             f"{bytes(received[first:first + 12]).hex()} "
                             f"({len(received)} of {len(expected)} bytes received)")
    np.savez(os.environ["SPIKEFAB_RESULT"], **result)
    assert "failure" not in result, result.get("failure")
