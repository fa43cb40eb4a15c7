"""Amaranth wrappers that put gateware blocks under test; they need no cocotb.

`UARTLoopbackHarness` puts a UART transmitter and receiver side by side for
`spikefab.verify.uart_bench` (`tests/test_uart.py`); `NeuronStageHarness` gives the core's
neuron stage ports of its own (`tests/test_blocks_amsim.py`).
"""

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikefab.hw.layouts import param_layout, state_layout
from spikefab.hw.neuron import neuron_stage
from spikefab.hw.uart import UARTReceiver, UARTTransmitter
from spikefab.spec import COUNTER_WIDTH, CoreConfig

__all__ = ["UARTLoopbackHarness", "NeuronStageHarness"]


class NeuronStageHarness(wiring.Component):
    """`spikefab.hw.neuron.neuron_stage` behind ports: `state`, `params`, `acc` in (sampled
    every cycle); `next_state`, `spike`, `v_sum`, `threshold`, `refractory` out, for the inputs
    of the previous cycle (latency 1)."""

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        super().__init__({
            "state": In(state_layout(cfg)),
            "params": In(param_layout(cfg)),
            "acc": In(signed(cfg.accumulator_width)),
            "next_state": Out(state_layout(cfg)),
            "spike": Out(1),
            "v_sum": Out(signed(cfg.voltage_width)),
            "threshold": Out(cfg.voltage_width - 1),
            "refractory": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        stage = neuron_stage(m, self.cfg, self.state, self.params, self.acc)
        m.d.comb += [getattr(self, name).eq(value) for name, value in stage._asdict().items()]
        return m


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
