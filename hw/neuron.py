"""The neuron update: one time step of one LIF neuron, purely combinational.

The core's controller time-shares this block over every neuron stored in its memories.
"""

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.spec import CoreConfig, ResetMode

from .arith import mul_decay, saturate
from .layouts import param_layout, state_layout

__all__ = ["NeuronUpdate"]


class NeuronUpdate(wiring.Component):
    """Compute a neuron's next state and spike from its state, parameters and step input.

    Ports: `state`, `params` (packed layouts of `spikeforge.spec`), `acc` (signed accumulator:
    the exact sum of this step's input weights) in; `next_state`, `spike` and `v_sum` (the
    membrane sum before the spike test, for the plasticity unit's surrogate factor) out. Zero
    latency; the logic is two multipliers (I*alpha, V*beta), adders, saturation and a comparator.
    """

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        super().__init__({
            "state": In(state_layout(cfg)),
            "params": In(param_layout(cfg)),
            "acc": In(signed(cfg.accumulator_width)),
            "next_state": Out(state_layout(cfg)),
            "spike": Out(1),
            "v_sum": Out(signed(cfg.voltage_width)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, s, p = self.cfg, self.state, self.params
        f = cfg.decay_width

        i_next = saturate(mul_decay(s.i, p.alpha, f) + self.acc + p.bias, cfg.current_width)
        v_sum = saturate(mul_decay(s.v, p.beta, f) + i_next, cfg.voltage_width)
        refractory = s.ref != 0
        fire = ~refractory & (v_sum > p.threshold)

        m.d.comb += [self.next_state.i.eq(i_next), self.spike.eq(fire), self.v_sum.eq(v_sum)]
        with m.If(refractory):
            m.d.comb += [self.next_state.v.eq(s.v), self.next_state.ref.eq(s.ref - 1)]
        with m.Elif(fire):
            m.d.comb += self.next_state.ref.eq(p.refractory)
            with m.If(p.reset == ResetMode.SUBTRACT):
                m.d.comb += self.next_state.v.eq(v_sum - p.threshold)
            with m.Else():
                m.d.comb += self.next_state.v.eq(0)
        with m.Else():
            m.d.comb += [self.next_state.v.eq(v_sum), self.next_state.ref.eq(0)]
        return m
