"""The LIF core: N time-multiplexed neurons fed by A axons through a dense synapse memory.

Data path (see `docs/architecture.md`)::

    i_cmd ──► controller ──► synapse memory (A·N/K words of K weights)
                  │                 │ K weights/cycle
                  │                 ▼
                  │          accumulators (N/K words of K exact sums)
                  │                 │ one neuron/cycle on TICK
                  ▼                 ▼
    i_cfg ◄─► neuron state + parameters ──► neuron_stage ──► spike FIFO ──► o_spike

Cycle costs (no back-pressure): an accepted input event occupies the synapse port for exactly
N/K cycles, and the next command is accepted in the cycle of the last word, so a stream of events
runs at K synaptic operations per cycle with no bubbles. A dropped event (bad axon, step full)
costs one cycle. A CLEAR costs N cycles. A tick costs N + 3 cycles from its acceptance to the
STEP_END marker entering the spike FIFO (N issue cycles, two update stages), plus 1 cycle back to
idle. A config request costs 2 cycles (write) or 3 (read) plus the wait for the response to be
taken. With the SPRAM synapse memory (`synapse_memory="spram"`, the default on iCE40) the core
stays busy for 16384 cycles after reset while the SPRAM clears itself; the costs above are
otherwise the same.

With `plastic=True` the core carries a `PlasticityUnit` (`docs/plasticity.md`): when learning is
enabled, a tick is followed by the learning step (N + A + 5 + rows·(2N/K + 4) cycles, during
which the unit owns the synapse port) before the STEP_END marker; config space LEARN reaches the
unit's registers and memories; CLEAR takes max(N, A) cycles. Events and ticks cost the same.
"""

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikefab.learning import plastic_config_error
from spikefab.spec import COUNTER_WIDTH, CoreConfig

from .arith import bump
from .fifo import StreamFIFO
from .layouts import (
    ConfigSpace,
    CoreOp,
    SpikeKind,
    SynapseOwner,
    command_layout,
    config_request_layout,
    config_response_layout,
    param_layout,
    plasticity_hooks_signature,
    spike_layout,
    state_layout,
    synapse_port_signature,
    synapse_word_bits,
)
from .neuron import neuron_stage
from .plasticity import PlasticityUnit
from .synapse import SYNAPSE_KINDS, SynapseMemory

__all__ = ["LIFCore", "status_signature"]


def status_signature(cfg: CoreConfig) -> wiring.Signature:
    """Status outputs: current step, saturating drop counters, busy."""
    return wiring.Signature({
        "step": Out(cfg.step_width),            #: steps completed (wraps modulo 2**step_width)
        "dropped_bad_axon": Out(COUNTER_WIDTH),  #: events whose axon was >= A
        "dropped_overflow": Out(COUNTER_WIDTH),  #: events past max_events_per_step in a step
        "busy": Out(1),                          #: not idle (processing a command or request)
    })



class LIFCore(wiring.Component):
    """One LIF core (see module docstring for the data path and cycle costs).

    Streams: `i_cmd` (EVENT axon / TICK / CLEAR, in order: the events before a TICK belong to
    its step; CLEAR zeroes all neuron state, accumulators, the step and the drop counters),
    `o_spike` (SPIKE neuron step ..., then STEP_END step), `i_cfg` / `o_cfg` (one response per
    request; requests are served between commands, when the core is idle). `o_status` exposes the
    step number and the drop counters. `synapse_memory` picks the synapse memory's
    implementation (see `SynapseMemory`: "auto", "memory" or "spram").
    """

    def __init__(self, cfg: CoreConfig | None = None, *, spike_fifo_depth: int = 16,
                 plastic: bool = False, synapse_memory: str = "auto"):
        self.cfg = cfg = cfg or CoreConfig()
        self.plastic = bool(plastic)
        if self.plastic:
            problem = plastic_config_error(cfg)
            if problem:
                raise ValueError(problem)
        if synapse_memory not in SYNAPSE_KINDS:
            raise ValueError(f"synapse_memory must be one of {SYNAPSE_KINDS}, "
                             f"not {synapse_memory!r}")
        self.synapse_memory = synapse_memory
        if not isinstance(spike_fifo_depth, int) or not 2 <= spike_fifo_depth <= 4096:
            raise ValueError(f"spike_fifo_depth must be an integer in 2..4096, "
                             f"not {spike_fifo_depth!r}")
        self.spike_fifo_depth = spike_fifo_depth
        super().__init__({
            "i_cmd": In(stream.Signature(command_layout(cfg))),
            "o_spike": Out(stream.Signature(spike_layout(cfg))),
            "i_cfg": In(stream.Signature(config_request_layout(cfg))),
            "o_cfg": Out(stream.Signature(config_response_layout(cfg))),
            "o_status": Out(status_signature(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n, k, words = cfg.n_neurons, cfg.weights_per_word, cfg.words_per_axon
        word_bits = synapse_word_bits(cfg)

        # Memories ------------------------------------------------------------------------
        # The synapse memory's single port has one owner at a time (`_arbitrate_synapses`):
        # the controller's port `syn`, or the plasticity unit's during a learning step.
        m.submodules.synapses = synapses = SynapseMemory(cfg, kind=self.synapse_memory)
        syn = synapse_port_signature(cfg).create(path=("ctrl_syn",))
        syn_owner = Signal(SynapseOwner)
        acc_shape = ArrayLayout(signed(cfg.accumulator_width), k)
        m.submodules.acc = acc_mem = Memory(shape=acc_shape, depth=words, init=[])
        acc_wr = acc_mem.write_port()
        acc_rd = acc_mem.read_port(transparent_for=(acc_wr,))
        m.submodules.state = state_mem = Memory(shape=state_layout(cfg), depth=n, init=[])
        state_wr, state_rd = state_mem.write_port(), state_mem.read_port()
        m.submodules.params = param_mem = Memory(shape=param_layout(cfg), depth=n, init=[])
        param_wr, param_rd = param_mem.write_port(), param_mem.read_port()
        m.submodules.spikes = fifo = StreamFIFO(spike_layout(cfg), self.spike_fifo_depth)
        wiring.connect(m, fifo.o, wiring.flipped(self.o_spike))
        unit = hooks = None
        if self.plastic:
            m.submodules.plasticity = unit = PlasticityUnit(cfg)
            hooks = plasticity_hooks_signature(cfg).create(path=("hooks",))
            wiring.connect(m, hooks, unit.hooks)
        self._arbitrate_synapses(m, synapses, syn_owner, syn, unit)
        clear_count = max(n, cfg.n_axons) if self.plastic else n

        # Registers -----------------------------------------------------------------------
        step = Signal(cfg.step_width)
        events_in_step = Signal(range(cfg.max_events_per_step + 1))
        dropped_bad_axon = Signal(COUNTER_WIDTH)
        dropped_overflow = Signal(COUNTER_WIDTH)
        ev_axon = Signal(range(cfg.n_axons))
        ev_word = Signal(range(words))           # issue stage of an event
        ev_valid1 = Signal()                     # accumulate stage of an event
        ev_word1 = Signal(range(words))
        tk_neuron = Signal(range(n))             # issue stage of a tick
        tk_word = Signal(range(words))
        tk_lane = Signal(range(k))
        tk_valid1 = Signal()                     # update stage of a tick
        tk_neuron1 = Signal(range(n))
        tk_word1 = Signal(range(words))
        tk_lane1 = Signal(range(k))
        clear_addr = Signal(range(clear_count))
        cfg_req = Signal(config_request_layout(cfg))
        cfg_resp = Signal(config_response_layout(cfg))

        m.d.comb += [
            self.o_status.step.eq(step),
            self.o_status.dropped_bad_axon.eq(dropped_bad_axon),
            self.o_status.dropped_overflow.eq(dropped_overflow),
        ]

        # Accumulate stage of an event: K saturation-free additions (the per-step event cap
        # keeps every sum inside the accumulator width, see CoreConfig.accumulator_width).
        m.d.sync += [ev_valid1.eq(0), ev_word1.eq(ev_word)]
        with m.If(ev_valid1):
            m.d.comb += [acc_wr.addr.eq(ev_word1), acc_wr.en.eq(1)]
            for lane in range(k):
                weight = syn.r_data.word_select(lane, cfg.weight_width).as_signed()
                m.d.comb += acc_wr.data[lane].eq(acc_rd.data[lane] + weight)

        # Update stages of a tick, one neuron per cycle through both: stage 1 (tk_valid1) takes
        # the memories' outputs into the neuron stage's first half, stage 2 (tk_valid2) writes
        # the state and the spike from its second half (`neuron_stage`, latency 1). They always
        # complete (the issue stage only issues when the spike FIFO has room for everything in
        # flight). Two stages halve the longest path (two multiplies in series).
        tk_valid2 = Signal()
        tk_neuron2 = Signal(range(n))
        m.d.sync += [tk_valid2.eq(tk_valid1), tk_neuron2.eq(tk_neuron1)]
        update = neuron_stage(m, cfg, state_rd.data, param_rd.data, acc_rd.data[tk_lane1])
        spike_word = fifo.i.payload
        m.d.comb += [
            spike_word.neuron.eq(tk_neuron2),
            spike_word.step.eq(step),
            spike_word.kind.eq(SpikeKind.SPIKE),
        ]
        m.d.sync += tk_valid1.eq(0)
        with m.If(tk_valid1 & (tk_lane1 == k - 1)):   # last neuron of the word: clear its sums
            m.d.comb += [acc_wr.addr.eq(tk_word1), acc_wr.en.eq(1)]
            for lane in range(k):
                m.d.comb += acc_wr.data[lane].eq(0)
        with m.If(tk_valid2):
            m.d.comb += [
                state_wr.addr.eq(tk_neuron2), state_wr.data.eq(update.next_state),
                state_wr.en.eq(1), fifo.i.valid.eq(update.spike),
            ]
            if hooks is not None:
                tick = hooks.tick
                m.d.comb += [tick.valid.eq(1), tick.neuron.eq(tk_neuron2),
                             tick.spike.eq(update.spike), tick.v_sum.eq(update.v_sum),
                             tick.threshold.eq(update.threshold),
                             tick.refractory.eq(update.refractory)]
        fifo_room = fifo.level + tk_valid1 + tk_valid2 + 1 <= self.spike_fifo_depth

        cmd = self.i_cmd.payload
        req = self.i_cfg.payload

        def accept_command():
            """Take the next command in this cycle (from IDLE or the last word of an event)."""
            m.d.comb += self.i_cmd.ready.eq(1)
            with m.If(cmd.op == CoreOp.TICK):
                m.d.sync += [tk_neuron.eq(0), tk_word.eq(0), tk_lane.eq(0)]
                m.next = "TICK"
            with m.Elif(cmd.op == CoreOp.CLEAR):
                m.d.sync += clear_addr.eq(0)
                m.next = "CLEAR"
            with m.Elif(cmd.axon >= cfg.n_axons):
                bump(m, dropped_bad_axon)
                m.next = "IDLE"
            with m.Elif(events_in_step == cfg.max_events_per_step):
                bump(m, dropped_overflow)
                m.next = "IDLE"
            with m.Else():
                m.d.sync += [ev_axon.eq(cmd.axon), ev_word.eq(0),
                             events_in_step.eq(events_in_step + 1)]
                if hooks is not None:
                    m.d.comb += [hooks.event.valid.eq(1), hooks.event.axon.eq(cmd.axon)]
                m.next = "EVENT"

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(~synapses.ready):
                    pass                    # the synapse memory still clears itself
                with m.Elif(self.i_cfg.valid):
                    m.d.comb += self.i_cfg.ready.eq(1)
                    m.d.sync += cfg_req.eq(req)
                    self._start_config(m, cfg, req, syn, param_rd, param_wr, state_rd, state_wr,
                                       cfg_resp, hooks)
                with m.Elif(self.i_cmd.valid):
                    accept_command()

            with m.State("EVENT"):
                m.d.comb += [
                    syn.addr.eq(Cat(ev_word[:word_bits], ev_axon)), syn.r_en.eq(1),
                    acc_rd.addr.eq(ev_word), acc_rd.en.eq(1),
                ]
                m.d.sync += [ev_valid1.eq(1), ev_word.eq(ev_word + 1)]
                with m.If(ev_word == words - 1):
                    with m.If(self.i_cmd.valid & ~self.i_cfg.valid):
                        accept_command()
                    with m.Else():
                        m.next = "IDLE"

            with m.State("TICK"):
                m.d.comb += [
                    state_rd.addr.eq(tk_neuron), param_rd.addr.eq(tk_neuron),
                    acc_rd.addr.eq(tk_word), acc_rd.en.eq(1),
                ]
                with m.If(fifo_room):
                    m.d.comb += [state_rd.en.eq(1), param_rd.en.eq(1)]
                    m.d.sync += [tk_valid1.eq(1), tk_neuron1.eq(tk_neuron),
                                 tk_word1.eq(tk_word), tk_lane1.eq(tk_lane),
                                 tk_neuron.eq(tk_neuron + 1)]
                    with m.If(tk_lane == k - 1):
                        m.d.sync += [tk_lane.eq(0), tk_word.eq(tk_word + 1)]
                    with m.Else():
                        m.d.sync += tk_lane.eq(tk_lane + 1)
                    with m.If(tk_neuron == n - 1):
                        m.next = "TICK_END"

            def end_step():
                """Emit the STEP_END marker after the step's spikes, then advance the step."""
                with m.If(fifo.i.ready):
                    m.d.comb += [fifo.i.valid.eq(1), spike_word.kind.eq(SpikeKind.STEP_END),
                                 spike_word.neuron.eq(0)]
                    m.d.sync += [step.eq(step + 1), events_in_step.eq(0)]
                    m.next = "IDLE"

            with m.State("TICK_END"):
                # The update stages drain; then the learning step (if enabled) and the STEP_END
                # marker, which follows the step's spikes.
                drained = ~tk_valid1 & ~tk_valid2
                if unit is None:
                    with m.If(drained):
                        end_step()
                else:
                    with m.If(drained & hooks.step.enabled):
                        m.next = "LEARN"
                    with m.Elif(drained):
                        end_step()

            if unit is not None:
                with m.State("LEARN"):
                    # The unit owns the synapse port until it is done.
                    m.d.comb += [hooks.step.run.eq(1), syn_owner.eq(SynapseOwner.PLASTICITY)]
                    with m.If(hooks.step.done):
                        m.next = "STEP_END"

                with m.State("STEP_END"):
                    end_step()

            with m.State("CLEAR"):
                # One address per cycle over both the state and the accumulator memories.
                with m.If(clear_addr < n):
                    m.d.comb += [state_wr.addr.eq(clear_addr), state_wr.data.eq(0),
                                 state_wr.en.eq(1)]
                with m.If(clear_addr < words):
                    m.d.comb += [acc_wr.addr.eq(clear_addr), acc_wr.en.eq(1)]
                    for lane in range(k):
                        m.d.comb += acc_wr.data[lane].eq(0)
                if hooks is not None:
                    m.d.comb += [hooks.clear.valid.eq(1), hooks.clear.addr.eq(clear_addr)]
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == clear_count - 1):
                    m.d.sync += [step.eq(0), events_in_step.eq(0), dropped_bad_axon.eq(0),
                                 dropped_overflow.eq(0)]
                    m.next = "IDLE"

            with m.State("CFG_READ"):
                with m.Switch(cfg_req.space):
                    with m.Case(ConfigSpace.WEIGHTS):
                        m.d.sync += cfg_resp.data.eq(syn.r_data)
                    with m.Case(ConfigSpace.PARAMS):
                        m.d.sync += cfg_resp.data.eq(param_rd.data)
                    with m.Case(ConfigSpace.STATE):
                        m.d.sync += cfg_resp.data.eq(state_rd.data)
                    if hooks is not None:
                        with m.Case(ConfigSpace.LEARN):
                            m.d.sync += cfg_resp.data.eq(hooks.config.rdata)
                m.next = "CFG_RESP"

            with m.State("CFG_RESP"):
                m.d.comb += [self.o_cfg.valid.eq(1),
                             self.o_cfg.payload.eq(cfg_resp)]
                with m.If(self.o_cfg.ready):
                    m.next = "IDLE"

        m.d.comb += self.o_status.busy.eq(~fsm.ongoing("IDLE") | ~synapses.ready)
        return m

    @staticmethod
    def _arbitrate_synapses(m, synapses, owner, syn, unit):
        """Give the synapse memory's port to its `owner` (a `SynapseOwner`, combinational):
        the controller's `syn`, or the plasticity unit's `unit.syn`. Read data goes to both.
        Without a unit the controller is the only owner and its port is wired straight."""
        if unit is None:
            wiring.connect(m, syn, synapses.port)
            return
        initiators = {SynapseOwner.CONTROLLER: syn, SynapseOwner.PLASTICITY: unit.syn}
        with m.Switch(owner):
            for who, port in initiators.items():
                with m.Case(who):
                    m.d.comb += [getattr(synapses.port, name).eq(getattr(port, name))
                                 for name, member in port.signature.members.items()
                                 if member.flow == Out]
        for port in initiators.values():
            m.d.comb += port.r_data.eq(synapses.port.r_data)

    def _start_config(self, m, cfg, req, syn, param_rd, param_wr, state_rd, state_wr, cfg_resp,
                      hooks):
        """Decode a config request in the cycle it is accepted: check it, write or start a read."""
        word_bits = synapse_word_bits(cfg)
        axon, word = req.addr[word_bits:], req.addr[:word_bits]
        params = req.data[:param_layout(cfg).size]
        alpha = params[:cfg.decay_width + 1]
        beta = params[cfg.decay_width + 1:2 * (cfg.decay_width + 1)]
        weights_ok = (axon < cfg.n_axons) & (word < cfg.words_per_axon)
        neuron_ok = req.addr < cfg.n_neurons
        params_ok = (alpha <= cfg.decay_one) & (beta <= cfg.decay_one)
        ok = Signal()
        with m.Switch(req.space):
            with m.Case(ConfigSpace.WEIGHTS):
                m.d.comb += [ok.eq(weights_ok), syn.addr.eq(req.addr), syn.w_data.eq(req.data)]
                m.d.comb += [syn.w_en.eq(ok & req.write), syn.r_en.eq(ok & ~req.write)]
            with m.Case(ConfigSpace.PARAMS):
                m.d.comb += ok.eq(neuron_ok & (params_ok | ~req.write))
                m.d.comb += [param_wr.addr.eq(req.addr), param_wr.data.eq(params),
                             param_wr.en.eq(ok & req.write),
                             param_rd.addr.eq(req.addr), param_rd.en.eq(ok & ~req.write)]
            with m.Case(ConfigSpace.STATE):
                m.d.comb += ok.eq(neuron_ok)
                m.d.comb += [state_wr.addr.eq(req.addr), state_wr.data.eq(req.data),
                             state_wr.en.eq(ok & req.write),
                             state_rd.addr.eq(req.addr), state_rd.en.eq(ok & ~req.write)]
            if hooks is not None:
                with m.Case(ConfigSpace.LEARN):
                    m.d.comb += [hooks.config.valid.eq(1), hooks.config.write.eq(req.write),
                                 hooks.config.addr.eq(req.addr), hooks.config.data.eq(req.data),
                                 ok.eq(hooks.config.ok)]
        m.d.sync += [cfg_resp.error.eq(~ok), cfg_resp.data.eq(0)]
        with m.If(ok & ~req.write):
            m.next = "CFG_READ"
        with m.Else():
            m.next = "CFG_RESP"
