"""Event delivery: the router's outputs into one command FIFO per core and the host FIFO.

::

    router.o_event (core, axon) ──► cmd FIFO[core] ──► o_cmd[core] ──► LIFCore.i_cmd
    engine command (TICK/CLEAR) ──► every cmd FIFO (broadcast, all or none)
    router.o_host (source) ──► host FIFO (step, source) ──► o_host ──► FETCH_SPIKES
                                  └─ full: dropped, counted in `host_dropped`

Core events are back-pressured, never dropped: `i_event.ready` is the target FIFO's room, so a
full core stalls the router (the no-deadlock argument in `docs/architecture.md` explains why the
stall always clears). Host events are never back-pressured: a spike for the host that finds the
host FIFO full is dropped and counted, because the host drains that FIFO only between steps.

An engine command is accepted only in a cycle when every command FIFO has room and no router
event is offered, so it enters every FIFO or none, behind the events already queued there.

Cycle costs: an entry written into an empty FIFO in cycle t is offered from cycle t + 2 (it
passes through the FIFO's output register); an entry at the head of a FIFO waits at most one
cycle before it is offered, and then only for its consumer.
`spikefab.verify.formal_delivery.DeliveryFormal` proves these properties within a bound.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikefab.spec import COUNTER_WIDTH, HOST_STEP_WIDTH, SOURCE_WIDTH, ChipConfig

from .arith import bump
from .fifo import StreamFIFO
from .layouts import CoreOp, command_layout, core_event_layout, host_event_layout

__all__ = ["Delivery"]


class Delivery(wiring.Component):
    """Router outputs to per-core command FIFOs (`cmd_depth` entries) and the host FIFO.

    Ports: `i_event` core events from the router; `i_host` host destinations from the router
    (source id), stamped with `step`; `i_engine` a command for every core; `o_cmd[c]` core c's
    commands in arrival order; `o_host` host events (`layouts.host_event_layout`: step, source)
    in arrival order, `host_level` how many are held (at most `cfg.host_buffer`); `host_dropped`
    host events dropped because the host FIFO was full (saturating; `clear_dropped` restarts the
    count); `empty` every command FIFO is empty. Router events for a core >= n_cores must not be
    offered (the host protocol refuses such route entries).
    """

    def __init__(self, cfg: ChipConfig, *, cmd_depth: int = 16):
        if cmd_depth < 1:
            raise ValueError(f"cmd_depth must be >= 1, not {cmd_depth}")
        self.cfg, self.cmd_depth = cfg, cmd_depth
        cmd = command_layout(cfg.core)
        super().__init__({
            "i_event": In(stream.Signature(core_event_layout())),
            "i_host": In(stream.Signature(SOURCE_WIDTH)),
            "i_engine": In(stream.Signature(cmd)),
            "step": In(HOST_STEP_WIDTH),
            "o_cmd": Out(stream.Signature(cmd)).array(cfg.n_cores),
            "o_host": Out(stream.Signature(host_event_layout())),
            "host_level": Out(range(cfg.host_buffer + 1)),
            "host_dropped": Out(COUNTER_WIDTH),
            "clear_dropped": In(1),
            "empty": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        event = Signal(command_layout(cfg.core))
        m.d.comb += [event.op.eq(CoreOp.EVENT), event.axon.eq(self.i_event.payload.axon)]
        fifos = []
        for c in range(cfg.n_cores):
            fifo = StreamFIFO(command_layout(cfg.core), self.cmd_depth)
            m.submodules[f"cmd_fifo{c}"] = fifo
            fifos.append(fifo)
            wiring.connect(m, fifo.o, wiring.flipped(self.o_cmd[c]))
        all_room = Cat(fifo.i.ready for fifo in fifos).all()
        engine_go = self.i_engine.valid & all_room & ~self.i_event.valid
        m.d.comb += [self.i_engine.ready.eq(all_room & ~self.i_event.valid),
                     self.empty.eq(Cat(fifo.level == 0 for fifo in fifos).all())]
        for c, fifo in enumerate(fifos):
            from_router = self.i_event.valid & (self.i_event.payload.core == c)
            m.d.comb += [fifo.i.valid.eq(from_router | engine_go),
                         fifo.i.payload.eq(Mux(from_router, event, self.i_engine.payload))]
            with m.If(from_router):
                m.d.comb += self.i_event.ready.eq(fifo.i.ready)
        self._host_path(m)
        return m

    def _host_path(self, m):
        # A SyncFIFOBuffered of depth D refuses a write at level D - 1 while an entry moves into
        # its output register; one spare entry makes "room" exactly level < host_buffer, the
        # golden model's rule.
        capacity = self.cfg.host_buffer
        m.submodules.host_fifo = host = StreamFIFO(host_event_layout(), capacity + 1)
        wiring.connect(m, host.o, wiring.flipped(self.o_host))
        room = host.level < capacity
        m.d.comb += [self.i_host.ready.eq(1), host.i.valid.eq(self.i_host.valid & room),
                     host.i.payload.step.eq(self.step),
                     host.i.payload.source.eq(self.i_host.payload),
                     self.host_level.eq(host.level)]
        drop = self.i_host.valid & ~room
        with m.If(self.clear_dropped):       # a drop in the clearing cycle is the first counted
            m.d.sync += self.host_dropped.eq(drop)
        with m.Elif(drop):
            bump(m, self.host_dropped)
