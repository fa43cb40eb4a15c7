"""Amaranth wrappers that put gateware blocks under test; they need no cocotb.

`UARTLoopbackHarness` puts a UART transmitter and receiver side by side for
`spikefab.verify.uart_bench` (`tests/test_uart.py`).
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikefab.hw.uart import UARTReceiver, UARTTransmitter
from spikefab.spec import COUNTER_WIDTH

__all__ = ["UARTLoopbackHarness"]


class UARTLoopbackHarness(wiring.Component):
    """A transmitter and a receiver side by side, for tests; they are not connected to each other.

    The testbench drives and samples both lines bit by bit (and can loop `tx` back to `rx`
    itself). The two divisors are independent so that mismatched ends can be built.

    Ports: `tx_i` (in, byte stream) and `tx` (out) of the transmitter; `rx` (in), `rx_o` (out,
    byte stream), `framing_errors` and `overflow` (out, 32 bits each) of the receiver.
    """

    def __init__(self, tx_divisor: int, rx_divisor: int):
        # Built here, so that the blocks check their divisors at construction.
        self.transmitter = UARTTransmitter(tx_divisor)
        self.receiver = UARTReceiver(rx_divisor)
        super().__init__({
            "tx_i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "rx": In(1, init=1),
            "rx_o": Out(stream.Signature(8)),
            "framing_errors": Out(COUNTER_WIDTH),
            "overflow": Out(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.transmitter = tx = self.transmitter
        m.submodules.receiver = rx = self.receiver
        wiring.connect(m, wiring.flipped(self.tx_i), tx.i)
        wiring.connect(m, rx.o, wiring.flipped(self.rx_o))
        m.d.comb += [
            self.tx.eq(tx.tx),
            rx.rx.eq(self.rx),
            self.framing_errors.eq(rx.framing_errors),
            self.overflow.eq(rx.overflow),
        ]
        return m
