"""The neuron update: one time step of one LIF neuron, in two halves.

The core's controller time-shares this logic over every neuron stored in its memories. The
update splits where a pipeline register fits best: `current_stage` (both decay products and the
new current) and `membrane_stage` (new membrane, spike, reset, refractory count). `NeuronUpdate`,
the core's neuron stage, is the two halves with a pipeline register between them.
"""

from amaranth.hdl import Module, Signal, signed
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
    the exact sum of this step's input weights) in, sampled every cycle; `next_state`, `spike`,
    `v_sum` (the membrane sum before the spike test), `threshold` and `refractory` (whether the
    neuron was refractory) out, for the inputs of the previous cycle: latency `LATENCY` = 1, one
    neuron per cycle. The register sits between `current_stage` (two multipliers, I*alpha and
    V*beta, and the current's adders) and `membrane_stage` (adder, saturation, comparator), which
    halves the longest path. The last two outputs feed the plasticity unit's tick hook.
    """

    LATENCY = 1

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
        cfg = self.cfg
        i_next, v_decayed = current_stage(cfg, self.state, self.params, self.acc)
        # Pipeline registers: the current stage's results and what the membrane stage needs of
        # the state (v and ref; i is replaced) and the parameters (threshold, refractory, reset).
        i_reg = Signal(signed(cfg.current_width))
        v_decayed_reg = Signal(signed(cfg.voltage_width))
        state = Signal(state_layout(cfg))
        params = Signal(param_layout(cfg))
        m.d.sync += [i_reg.eq(i_next), v_decayed_reg.eq(v_decayed),
                     state.v.eq(self.state.v), state.ref.eq(self.state.ref),
                     params.threshold.eq(self.params.threshold),
                     params.refractory.eq(self.params.refractory),
                     params.reset.eq(self.params.reset)]
        membrane_stage(m, cfg, v=state.v, ref=state.ref, i_next=i_reg, v_decayed=v_decayed_reg,
                       params=params, next_state=self.next_state, spike=self.spike,
                       v_sum=self.v_sum)
        m.d.comb += [self.threshold.eq(params.threshold), self.refractory.eq(state.ref != 0)]
        return m
