# amaranth: UnusedElaboratable=no
"""Bounded formal proof that the plasticity unit never writes a weight outside the bounds.

`PlasticityFormal` wraps a small `PlasticityUnit` (`FORMAL_CORE`: 2 neurons, 3 axons, K = 2 and
4-bit weights) in a property checker; `spikefab.verify.formal.run_bmc` runs SymbiYosys on it
(`tests/test_formal.py`).

Environment (free inputs, constrained only by these `Assume`s): the synapse read data is any
value in every cycle (so every old weight is possible); `run` rises at will and falls only once
the unit is done (as the core's controller does); events, tick results, CLEAR and config
requests (any region, any data: the unit accepts or refuses them) arrive at any time while `run`
is low, as the core guarantees. Every learning memory (mask, traces, accumulated and host
factors, targets, tick flags, per-neuron factors P/D) starts with arbitrary contents
(`yosys_script` drops their initial values), so any learning state is covered, not only those
reachable in a few cycles; the registers start at their power-up values.

Proven for every trace of `BMC_DEPTH` cycles: whenever the unit writes a synapse word, it has
read that word before, and every weight in it either equals the old weight read for it (the read
data the cycle after the unit's last read of that address: the unit's update pipeline has other
words' reads in between) or lies in [W_MIN, W_MAX], where W_MIN and W_MAX are the bounds in force
(a shadow of the BOUNDS register, updated on every BOUNDS write the unit accepts, whose refusal
of inverted pairs is therefore part of what is proven); the unit never reads and writes the
single synapse port in the same cycle, and touches it only while `run` is high. Covers show a
write that changes a weight to each bound is reachable, so the assumptions are not vacuous.
`bug="no_clamp"` builds `UnclampedPlasticityUnit`, which drops the upper clamp, and must be
refuted.
"""

from amaranth.hdl import Array, Assert, Assume, Cover, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring

from spikefab.hw.plasticity import PlasticityUnit
from spikefab.learning import REGION_SHIFT, Reg, Region
from spikefab.spec import CoreConfig

__all__ = ["FORMAL_CORE", "BMC_DEPTH", "PlasticityFormal", "UnclampedPlasticityUnit"]

FORMAL_CORE = CoreConfig(n_neurons=2, n_axons=3, weights_per_word=2, weight_width=4,
                         current_width=8, voltage_width=8, decay_width=4, refractory_width=2,
                         step_width=8)
BMC_DEPTH = 20      # a BOUNDS write, then a learning step that updates two rows


class UnclampedPlasticityUnit(PlasticityUnit):
    """A deliberately broken unit: updated weights are clamped to W_MIN only, never to W_MAX."""

    def clamp(self, total, w_min, w_max):
        return Mux(total < w_min, w_min, total)


class PlasticityFormal(wiring.Component):
    """The unit with the property checker around it; the ports are the unit's own."""

    yosys_script = "delete t:$meminit_v2"

    def __init__(self, cfg: CoreConfig = FORMAL_CORE, bug: str | None = None):
        if bug not in (None, "no_clamp"):
            raise ValueError(f"bug must be None or 'no_clamp', not {bug!r}")
        self.cfg, self.bug = cfg, bug
        self.dut = (UnclampedPlasticityUnit if bug == "no_clamp" else PlasticityUnit)(cfg)
        super().__init__(self.dut.signature)

    def elaborate(self, platform):
        m = Module()
        cfg, dut = self.cfg, self.dut
        m.submodules.dut = dut
        wiring.connect(m, wiring.flipped(self.hooks), dut.hooks)
        wiring.connect(m, dut.syn, wiring.flipped(self.syn))
        run, done = self.hooks.step.run, self.hooks.step.done
        config, syn = self.hooks.config, self.syn

        m.d.comb += Assume(~ResetSignal())
        hooks = self.hooks
        with m.If(run):
            m.d.comb += Assume(~(hooks.event.valid | hooks.tick.valid | config.valid |
                                 hooks.clear.valid))
        # As the core's controller: once raised, `run` stays high until the unit is done.
        prev_run, prev_done = Signal(), Signal()
        m.d.sync += [prev_run.eq(run), prev_done.eq(done)]
        with m.If(prev_run & ~prev_done):
            m.d.comb += Assume(run)

        ww = cfg.weight_width
        lo, hi = cfg.weight_range
        w_min = Signal(signed(ww), init=lo)
        w_max = Signal(signed(ww), init=hi)
        bounds_addr = int(Region.REGISTERS) << REGION_SHIFT | int(Reg.BOUNDS)
        with m.If(config.valid & config.write & config.ok & (config.addr == bounds_addr)):
            m.d.sync += [w_min.eq(config.data[:ww]), w_max.eq(config.data[ww:2 * ww])]

        with m.If(syn.w_en | syn.r_en):
            m.d.comb += Assert(run)
        m.d.comb += Assert(~(syn.w_en & syn.r_en))

        # Per synapse address: whether the unit has read it, and the old word it was shown.
        depth = 1 << len(syn.addr)
        seen = Array(Signal(name=f"seen{i}") for i in range(depth))
        old_word = Array(Signal(len(syn.r_data), name=f"old_word{i}") for i in range(depth))
        last_read, last_addr = Signal(), Signal(len(syn.addr))
        m.d.sync += [last_read.eq(syn.r_en), last_addr.eq(syn.addr)]
        with m.If(last_read):
            m.d.sync += [seen[last_addr].eq(1), old_word[last_addr].eq(syn.r_data)]
        with m.If(syn.w_en):
            m.d.comb += Assert(seen[syn.addr])

        hit_min, hit_max = Signal(), Signal()
        for lane in range(cfg.weights_per_word):
            new = syn.w_data.word_select(lane, ww).as_signed()
            old = old_word[syn.addr].word_select(lane, ww).as_signed()
            with m.If(syn.w_en & (new != old)):
                m.d.comb += [Assert(new >= w_min), Assert(new <= w_max)]
                m.d.comb += [hit_min.eq(new == w_min), hit_max.eq(new == w_max)]
        m.d.comb += [
            Cover(hit_max & (w_max != hi)),
            Cover(hit_min & (w_min != lo)),
        ]
        return m
