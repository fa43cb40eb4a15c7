"""The simulated board: the chip behind byte FIFOs, for `spikefab board-sim`.

The native harness (`boards/sim/harness.cpp`, `spikefab.boards.sim`) moves one byte each way per
cycle between its socket and these FIFOs. The FIFOs add latency but never drop or reorder a
byte: both follow the stream rules and apply back-pressure.

With `uart_divisor` the chip sits behind its UART (`ChipOverUART`, the gateware a board runs),
reached through a UART transmitter and receiver of the same divisor, so the bytes cross real
8N1 serial lines inside the simulation.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikefab import protocol as P
from spikefab.hw.chip import Chip, ChipOverUART
from spikefab.hw.fifo import StreamFIFO

__all__ = ["SimBoard"]


class SimBoard(wiring.Component):
    """The chip (`cfg`) behind an input and an output byte FIFO of `fifo_depth` bytes each.

    Ports: `i` (in, byte stream, host to chip), `o` (out, byte stream, chip to host).
    """

    def __init__(self, cfg=None, *, fifo_depth: int = 2 * (P.MAX_ENCODED + 1),
                 uart_divisor: int | None = None):
        self.cfg, self.fifo_depth, self.uart_divisor = cfg, fifo_depth, uart_divisor
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        from spikefab.hw.uart import UARTReceiver, UARTTransmitter
        m = Module()
        m.submodules.in_fifo = in_fifo = StreamFIFO(8, self.fifo_depth)
        m.submodules.out_fifo = out_fifo = StreamFIFO(8, self.fifo_depth)
        wiring.connect(m, wiring.flipped(self.i), in_fifo.i)
        wiring.connect(m, out_fifo.o, wiring.flipped(self.o))
        if self.uart_divisor is None:
            m.submodules.chip = chip = Chip(self.cfg)
            to_chip, from_chip = chip.i, chip.o
            m.d.comb += chip.uart_framing_errors.eq(0)
        else:
            m.submodules.chip = chip = ChipOverUART(self.cfg, divisor=self.uart_divisor)
            m.submodules.host_tx = host_tx = UARTTransmitter(self.uart_divisor)
            m.submodules.host_rx = host_rx = UARTReceiver(self.uart_divisor)
            m.d.comb += [chip.rx.eq(host_tx.tx), host_rx.rx.eq(chip.tx)]
            to_chip, from_chip = host_tx.i, host_rx.o
        wiring.connect(m, in_fifo.o, to_chip)
        wiring.connect(m, from_chip, out_fifo.i)
        return m
