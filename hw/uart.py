"""An 8N1 UART: one start bit (0), eight data bits LSB first, one stop bit (1); the line idles high.

Both directions are timed by an integer `divisor`, the number of `sync` clock cycles per bit
(e.g. 104 for 115200 baud from 12 MHz, an actual rate 0.16 % above nominal). There is no parity,
no flow control and no FIFO: the byte streams follow the `amaranth.lib.stream` rules (a transfer
is a cycle with valid and ready both high), and a FIFO, if one is wanted, goes in front of the
transmitter or behind the receiver.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from spikefab.spec import COUNTER_WIDTH

from .arith import bump

__all__ = ["UARTTransmitter", "UARTReceiver"]


def _check_divisor(divisor):
    # bool is an int subclass, but True is never a meaningful bit period.
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise ValueError(f"divisor must be an integer >= 4, not {divisor!r}")
    return divisor


class UARTTransmitter(wiring.Component):
    """Serialise bytes from the `i` stream onto the `tx` line, 8N1, `divisor` cycles per bit.

    Ports:
      `i`  (in, stream of 8-bit bytes): the bytes to send. `i.ready` does not depend on `i.valid`;
           it is high when the line is idle and in the last cycle of a stop bit.
      `tx` (out, 1 bit, idle 1): the serial line; registered, so it never glitches.

    Latency and rate: the start bit begins in the cycle after the transfer of its byte. Every bit
    (start, 8 data bits LSB first, stop) lasts exactly `divisor` cycles. A byte that is already
    waiting is taken in the last cycle of the previous stop bit, so back-to-back frames are exactly
    `10 * divisor` cycles apart with no idle time between them.
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor

        busy = Signal()
        timer = Signal(range(d))           # cycles left in the current bit, minus one
        bits_left = Signal(range(10))      # bits still to put on the line after the current one
        shreg = Signal(9)                  # data bits LSB first, then the stop bit

        bit_done = timer == 0
        # Taking the next byte in the last cycle of the stop bit (rather than after it) is what
        # makes back-to-back frames exactly 10 bit periods long.
        m.d.comb += self.i.ready.eq(~busy | (bit_done & (bits_left == 0)))

        with m.If(busy):
            with m.If(bit_done):
                with m.If(bits_left == 0):
                    m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += [
                        self.tx.eq(shreg[0]),
                        shreg.eq(shreg[1:]),
                        bits_left.eq(bits_left - 1),
                        timer.eq(d - 1),
                    ]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)

        # Last, so that a byte taken at the end of a stop bit overrides the `busy` clear above.
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                busy.eq(1),
                self.tx.eq(0),
                shreg.eq(Cat(self.i.payload, 1)),
                bits_left.eq(9),
                timer.eq(d - 1),
            ]
        return m


class UARTReceiver(wiring.Component):
    """Deserialise the 8N1 `rx` line into the `o` stream of bytes, `divisor` cycles per bit.

    Ports:
      `rx` (in, 1 bit, idle 1): the serial line, asynchronous to `sync`; it passes through a
           2-stage `FFSynchronizer` first.
      `o`  (out, stream of 8-bit bytes): received bytes. `o.valid` stays high with the byte until
           it is taken. If a byte is still not taken when the next one completes (its stop-bit
           sample), the new byte is dropped and `overflow` counts it; a byte taken in that very
           cycle does not count as an overflow.
      `framing_errors` (out, 32 bits): saturating count of frames whose stop bit sampled 0; such
           a byte is discarded, and the receiver then waits for the line to return high.
      `overflow` (out, 32 bits): saturating count of bytes dropped as described above.

    Timing: a start bit is a high-to-low transition of the synchronised line (the receiver only
    arms after it has seen the line high). `divisor // 2` cycles after the edge the line is sampled
    again; if it is high the low pulse was a glitch and is ignored. Otherwise the 8 data bits and
    the stop bit are sampled at `divisor // 2 + k * divisor` cycles after the edge (k = 1..9). The
    byte appears on `o` in the cycle after the stop-bit sample: `o.valid` is set by the clock edge
    `divisor // 2 + 9 * divisor + 2` edges after the first edge that samples the start bit's low
    level at the pin (one edge through the second synchroniser stage, one into the output
    register). The receiver re-arms right after the stop-bit sample, half a bit before the nominal
    end of the frame, so the next start edge of a sender whose clock is fast is still seen, and
    timing errors do not accumulate from frame to frame.

    Tolerance: the start edge is seen 0 to 1 cycles late (the line is sampled once per cycle), so
    the stop-bit sample, the worst one, lands inside the stop bit of a sender with bit period P if
    `(divisor // 2 + 9 * divisor + 1) / 10 < P <= (divisor // 2 + 9 * divisor) / 9` cycles.
    Relative to `divisor` that is -2.5 % / +5.5 % at divisor 4, -4.0 % / +4.4 % at 5, -4.2 % /
    +4.7 % at 7, -4.3 % / +5.5 % at 16 and -4.9 % / +5.5 % at 104: at least -2.5 % / +4.4 % at every
    legal divisor, so +-2 % of clock mismatch between the two ends is always tolerated. Low pulses
    of up to `divisor // 2` cycles on an idle line are ignored.
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "framing_errors": Out(COUNTER_WIDTH),
            "overflow": Out(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        d, half = self.divisor, self.divisor // 2

        # init=1 so that the power-up state of the synchroniser looks like an idle line, not a
        # start bit.
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(d))          # cycles left until the next sample, minus one
        bit = Signal(range(8))            # data bit being received
        shreg = Signal(8)                 # bits arrive LSB first and are shifted in at the top
        payload = Signal(8)               # separate from shreg: o.payload must hold until taken
        valid = Signal()
        framing_errors = Signal(COUNTER_WIDTH)
        overflow = Signal(COUNTER_WIDTH)
        m.d.comb += [
            self.o.payload.eq(payload),
            self.o.valid.eq(valid),
            self.framing_errors.eq(framing_errors),
            self.overflow.eq(overflow),
        ]

        with m.If(self.o.ready):
            m.d.sync += valid.eq(0)

        sample = timer == 0
        with m.FSM():
            # After reset and after a framing error the line may be low (a break, a disconnected
            # pin, the middle of a frame); only a transition from high is a start edge.
            with m.State("HUNT"):
                with m.If(rx):
                    m.next = "IDLE"

            # Entered only with the line seen high, so a low level here is a falling edge.
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(half - 1)
                    m.next = "START"

            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(sample):
                    with m.If(rx):
                        m.next = "IDLE"   # low for less than half a bit: a glitch
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"

            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(sample):
                    m.d.sync += [
                        shreg.eq(Cat(shreg[1:], rx)),
                        bit.eq(bit + 1),
                        timer.eq(d - 1),
                    ]
                    with m.If(bit == 7):
                        m.next = "STOP"

            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(sample):
                    with m.If(rx):
                        with m.If(valid & ~self.o.ready):
                            bump(m, overflow)
                        with m.Else():
                            m.d.sync += [payload.eq(shreg), valid.eq(1)]
                        # Re-arm at once: the next start edge may come less than half a bit from
                        # now if the sender's clock is faster than ours.
                        m.next = "IDLE"
                    with m.Else():
                        bump(m, framing_errors)
                        m.next = "HUNT"
        return m
