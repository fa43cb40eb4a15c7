"""The neuron update: one time step of one LIF neuron, in two halves.

The core's controller time-shares this logic over every neuron stored in its memories. The
update splits where a pipeline register fits best: `current_stage` (both decay products and the
new current) and `membrane_stage` (new membrane, spike, reset, refractory count). `NeuronUpdate`
is the two halves back to back, purely combinational; the core puts a register between them.
"""

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikefab.spec import CoreConfig, ResetMode

from .arith import mul_decay, saturate
from .layouts import param_layout, state_layout

__all__ = ["NeuronUpdate", "current_stage", "membrane_stage"]


def current_stage(cfg: CoreConfig, state, params, acc):
    """Return (I', V*beta): the saturated new current (signed(current_width)) and the decayed
    membrane before the current is added (|V*beta| <= |V|, so it fits signed(voltage_width))."""
    f = cfg.decay_width
    i_next = saturate(mul_decay(state.i, params.alpha, f) + acc + params.bias, cfg.current_width)
    v_decayed = mul_decay(state.v, params.beta, f)
    return i_next, v_decayed


def membrane_stage(m: Module, cfg: CoreConfig, *, v, ref, i_next, v_decayed, params,
                   next_state, spike, v_sum):
    """Drive `next_state` (state layout), `spike` and `v_sum` (the membrane sum before the spike
    test, signed(voltage_width)) from the old V and refractory count, the current stage's results
    and the parameters."""
    m.d.comb += v_sum.eq(saturate(v_decayed + i_next, cfg.voltage_width))
    refractory = ref != 0
    fire = ~refractory & (v_sum > params.threshold)
    m.d.comb += [next_state.i.eq(i_next), spike.eq(fire)]
    with m.If(refractory):
        m.d.comb += [next_state.v.eq(v), next_state.ref.eq(ref - 1)]
    with m.Elif(fire):
        m.d.comb += next_state.ref.eq(params.refractory)
        with m.If(params.reset == ResetMode.SUBTRACT):
            m.d.comb += next_state.v.eq(v_sum - params.threshold)
        with m.Else():
            m.d.comb += next_state.v.eq(0)
    with m.Else():
        m.d.comb += [next_state.v.eq(v_sum), next_state.ref.eq(0)]


class NeuronUpdate(wiring.Component):
    """Compute a neuron's next state and spike from its state, parameters and step input.

    Ports: `state`, `params` (packed layouts of `spikefab.spec`), `acc` (signed accumulator:
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
        s = self.state
        i_next, v_decayed = current_stage(self.cfg, s, self.params, self.acc)
        membrane_stage(m, self.cfg, v=s.v, ref=s.ref, i_next=i_next, v_decayed=v_decayed,
                       params=self.params, next_state=self.next_state, spike=self.spike,
                       v_sum=self.v_sum)
        return m
