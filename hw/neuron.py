"""The neuron update: one time step of one LIF neuron, in two halves.

The core's controller time-shares this logic over every neuron stored in its memories. The
update splits where a pipeline register fits best: `current_stage` (both decay products and the
new current) and `membrane_stage` (new membrane, spike, reset, refractory count).
`neuron_stage`, the core's neuron stage, is the two halves with a pipeline register between them.
"""

from typing import NamedTuple

from amaranth.hdl import Module, Signal, Value, signed

from spikefab.spec import CoreConfig, ResetMode

from .arith import mul_decay, saturate
from .layouts import param_layout, state_layout

__all__ = ["NeuronStage", "neuron_stage", "current_stage", "membrane_stage"]


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


class NeuronStage(NamedTuple):
    """The outputs of `neuron_stage`, for the neuron whose inputs came a cycle earlier."""
    next_state: Signal   #: state layout: the neuron's new V, I and refractory count
    spike: Signal        #: whether it spiked
    v_sum: Signal        #: signed(voltage_width): the membrane sum before the spike test
    threshold: Value     #: its threshold parameter
    refractory: Value    #: whether it was refractory


def neuron_stage(m: Module, cfg: CoreConfig, state, params, acc) -> NeuronStage:
    """Add the core's neuron stage to `m`: a neuron's next state and spike from its `state`,
    `params` (layouts of `spikefab.spec`) and `acc` (signed(accumulator_width), the exact sum of
    this step's input weights), one neuron per cycle with latency 1.

    `current_stage` (two multipliers, I*alpha and V*beta, and the current's adders) runs on the
    inputs; a pipeline register holds its results and the state and parameter fields the second
    half needs; `membrane_stage` (adder, saturation, comparator) runs on the register, which
    halves the longest path. The logic goes into `m` itself rather than into a submodule: as a
    `NeuronUpdate` component the iCEBreaker build took 22 LUT4s more (Yosys, flattened).
    """
    i_next, v_decayed = current_stage(cfg, state, params, acc)
    s2_i = Signal(signed(cfg.current_width))
    s2_v_decayed = Signal(signed(cfg.voltage_width))
    s2_state = Signal(state_layout(cfg))      # v and ref are used, i is replaced
    s2_params = Signal(param_layout(cfg))     # threshold, refractory, reset are used
    m.d.sync += [s2_i.eq(i_next), s2_v_decayed.eq(v_decayed),
                 s2_state.v.eq(state.v), s2_state.ref.eq(state.ref),
                 s2_params.threshold.eq(params.threshold),
                 s2_params.refractory.eq(params.refractory),
                 s2_params.reset.eq(params.reset)]
    next_state, spike = Signal(state_layout(cfg)), Signal()
    v_sum = Signal(signed(cfg.voltage_width))
    membrane_stage(m, cfg, v=s2_state.v, ref=s2_state.ref, i_next=s2_i,
                   v_decayed=s2_v_decayed, params=s2_params, next_state=next_state,
                   spike=spike, v_sum=v_sum)
    return NeuronStage(next_state, spike, v_sum, s2_params.threshold, s2_state.ref != 0)
