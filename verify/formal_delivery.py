# amaranth: UnusedElaboratable=no
"""Bounded formal proofs of event delivery (`spikefab.hw.delivery.Delivery`): the FIFOs.

`DeliveryFormal` wraps a small `Delivery` (`FORMAL_CFG`: 2 cores, command FIFOs of
`FORMAL_CMD_DEPTH` entries, a host FIFO of 2) in a checker that keeps its own reference queues
(shadows): one per command FIFO and one for the host FIFO. A transfer into the design pushes the
shadow, a transfer out of it pops the shadow. `run_bmc` (in `spikefab.verify.formal`) runs it.

Environment: every input is free in every cycle (router events, host events, engine commands,
the consumers' `ready`, `step`, `clear_dropped`); inputs need not even obey the stream rules.
The only assumptions are that reset is never asserted and that a router event names an existing
core (the host protocol refuses other route entries). `host_dropped` starts at an arbitrary value
(so saturation is reached within the bound); the FIFO storage starts arbitrary.

Proven for every trace of `DELIVERY_DEPTH` cycles:
- No overflow: a command FIFO never holds more than its depth of accepted commands; an engine
  command and a router event are never accepted in the same cycle.
- No loss, no duplication, in order: whatever leaves `o_cmd[c]` / `o_host` is the oldest entry of
  the shadow, and only while the shadow holds one. Together with bounded delivery (below) this
  also means nothing accepted disappears.
- All or none: an accepted engine command enters every core's queue (the shadows all push it).
- Host events are never back-pressured; one that arrives while the host FIFO holds fewer than
  `host_buffer` entries is stored (the shadow pushes it), and otherwise `host_dropped` counts it:
  exactly +1, saturating at all ones; the counter changes at no other time except when cleared.
- Bounded delivery: an entry at the head of a queue is offered on its output within
  `CMD_LATENCY` (command FIFOs) or `HOST_LATENCY` (host FIFO) cycles, and once offered it stays
  offered with the same payload until taken.
- Status: `empty` is high exactly when every shadow command queue is empty; `host_level` equals
  the host shadow's count.

Not covered: anything past the bound, other depths or core counts (the checker is generic, only
`FORMAL_CFG` is run), reset in mid-run.
"""

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, ResetSignal, Signal, Value
from amaranth.lib import wiring

from spikefab.hw.delivery import Delivery
from spikefab.hw.layouts import CoreOp, command_layout, host_event_layout
from spikefab.spec import ChipConfig, CoreConfig

__all__ = ["FORMAL_CFG", "FORMAL_CMD_DEPTH", "DELIVERY_DEPTH", "DELIVERY_COVER_DEPTH",
           "CMD_LATENCY", "HOST_LATENCY", "DeliveryFormal"]

FORMAL_CFG = ChipConfig(core=CoreConfig(n_neurons=2, n_axons=4, weights_per_word=1), n_cores=2,
                        n_inputs=2, route_entries=8, max_host_events=8, host_buffer=2)
#: The iCEBreaker build's depth (boards/icebreaker.py), the smallest any build uses.
FORMAL_CMD_DEPTH = 2
DELIVERY_DEPTH = 10         # fills and drains the FIFOs several times with stalls
DELIVERY_COVER_DEPTH = 10
CMD_LATENCY = 1             # cycles an entry may wait, not offered, at the head of its queue
HOST_LATENCY = 1

BUGS = (None, "unchecked_engine", "host_loss")


class _Shadow:
    """A reference queue kept by the checker; assign `push`, `pop`, `data`, then call `update`.

    It has one slot more than `depth`, so a design that accepts too much shows as count > depth
    instead of wrapping the shadow.
    """

    def __init__(self, name: str, width: int, depth: int):
        self.depth = depth
        self.items = [Signal(width, name=f"{name}_q{i}") for i in range(depth + 1)]
        self.count = Signal(range(depth + 2), name=f"{name}_n")
        self.push, self.pop = Signal(name=f"{name}_push"), Signal(name=f"{name}_pop")
        self.data = Signal(width, name=f"{name}_data")

    def update(self, m: Module):
        with m.If(self.pop):
            for i in range(self.depth):
                m.d.sync += self.items[i].eq(self.items[i + 1])
        with m.If(self.push):
            with m.Switch(self.count - self.pop):
                for i in range(self.depth + 1):
                    with m.Case(i):
                        m.d.sync += self.items[i].eq(self.data)
        m.d.sync += self.count.eq(self.count + self.push - self.pop)

    @property
    def head(self):
        return self.items[0]


class DeliveryFormal(wiring.Component):
    """`Delivery` with the property checker around it; the ports are the design's own.

    `bug` makes a deliberately broken variant, to show the proofs can fail: "unchecked_engine"
    lets the engine believe a command was taken whenever no router event is offered, even when
    a command FIFO is full (the command is then lost in that FIFO); "host_loss" loses host events
    from source 1 without counting them.
    """

    #: FIFO storage and the drop counter start arbitrary (see the module docstring).
    yosys_script = ("delete t:$meminit_v2\nprep -top top\n"
                    "setattr -unset init top.dut/w:host_dropped")

    def __init__(self, cfg: ChipConfig = FORMAL_CFG, bug: str | None = None):
        if bug not in BUGS:
            raise ValueError(f"bug must be one of {BUGS}, not {bug!r}")
        self.cfg, self.bug = cfg, bug
        self.dut = Delivery(cfg, cmd_depth=FORMAL_CMD_DEPTH)
        super().__init__(self.dut.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        self._connect(m, dut)
        m.d.comb += Assume(~ResetSignal())
        with m.If(self.i_event.valid):
            m.d.comb += Assume(self.i_event.payload.core < self.cfg.n_cores)
        self._check_commands(m)
        self._check_host(m)
        return m

    def _connect(self, m, dut):
        for name in ("i_event", "o_host"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(dut, name))
        for c in range(self.cfg.n_cores):
            wiring.connect(m, wiring.flipped(self.o_cmd[c]), dut.o_cmd[c])
        m.d.comb += [dut.step.eq(self.step), dut.clear_dropped.eq(self.clear_dropped),
                     self.host_level.eq(dut.host_level), self.host_dropped.eq(dut.host_dropped),
                     self.empty.eq(dut.empty),
                     dut.i_engine.payload.eq(self.i_engine.payload),
                     dut.i_engine.valid.eq(self.i_engine.valid),
                     dut.i_host.payload.eq(self.i_host.payload),
                     dut.i_host.valid.eq(self.i_host.valid),
                     self.i_host.ready.eq(dut.i_host.ready)]
        if self.bug == "unchecked_engine":
            m.d.comb += self.i_engine.ready.eq(~self.i_event.valid)
        else:
            m.d.comb += self.i_engine.ready.eq(dut.i_engine.ready)
        if self.bug == "host_loss":
            m.d.comb += dut.i_host.valid.eq(self.i_host.valid & (self.i_host.payload != 1))

    def _check_commands(self, m):
        cfg, ev, eng = self.cfg, self.i_event, self.i_engine
        width = command_layout(cfg.core).size
        event_in, engine_in = ev.valid & ev.ready, eng.valid & eng.ready
        m.d.comb += Assert(~(event_in & engine_in))
        as_command = Signal(command_layout(cfg.core))
        m.d.comb += [as_command.op.eq(CoreOp.EVENT), as_command.axon.eq(ev.payload.axon)]
        all_empty = []
        for c in range(cfg.n_cores):
            shadow = _Shadow(f"cmd{c}", width, FORMAL_CMD_DEPTH)
            to_core = event_in & (ev.payload.core == c)
            m.d.comb += [shadow.push.eq(to_core | engine_in),
                         shadow.data.eq(Mux(to_core, as_command, eng.payload))]
            self._check_queue(m, shadow, self.o_cmd[c], CMD_LATENCY)
            all_empty.append(shadow.count == 0)
        m.d.comb += Assert(self.empty == Cat(all_empty).all())
        m.d.comb += Cover(engine_in & ~Cat(all_empty).any())

    def _check_host(self, m):
        cfg, host_in = self.cfg, self.i_host
        shadow = _Shadow("host", host_event_layout().size, cfg.host_buffer)
        room = shadow.count < cfg.host_buffer
        m.d.comb += [Assert(host_in.ready), Assert(self.host_level == shadow.count),
                     shadow.push.eq(host_in.valid & room),
                     shadow.data.eq(Cat(self.step, host_in.payload))]
        self._check_queue(m, shadow, self.o_host, HOST_LATENCY)
        # The drop counter: +1 per host event that found no room, saturating; restarts on clear.
        prev, dropped, cleared, started = (Signal.like(self.host_dropped), Signal(), Signal(),
                                           Signal())
        m.d.sync += [prev.eq(self.host_dropped), dropped.eq(host_in.valid & ~room),
                     cleared.eq(self.clear_dropped), started.eq(1)]
        counted = Mux(dropped & ~prev.all(), prev + 1, prev)
        with m.If(started):
            m.d.comb += Assert(self.host_dropped == Mux(cleared, dropped, counted))
        m.d.comb += Cover(dropped & prev.all() & ~cleared & started)

    def _check_queue(self, m, shadow: _Shadow, out, latency: int):
        """Order, no duplication, capacity, bounded delivery and the stream rule on `out`."""
        payload = Value.cast(out.payload)
        m.d.comb += [shadow.pop.eq(out.valid & out.ready),
                     Assert(shadow.count <= shadow.depth)]
        shadow.update(m)
        with m.If(out.valid):
            m.d.comb += [Assert(shadow.count != 0), Assert(payload == shadow.head)]
        waiting = Signal(range(DELIVERY_DEPTH + 1))
        with m.If((shadow.count != 0) & ~out.valid):
            m.d.sync += waiting.eq(waiting + 1)
        with m.Else():
            m.d.sync += waiting.eq(0)
        m.d.comb += Assert(waiting <= latency)
        held, held_payload = Signal(), Signal.like(payload)
        m.d.sync += [held.eq(out.valid & ~out.ready), held_payload.eq(payload)]
        with m.If(held):
            m.d.comb += [Assert(out.valid), Assert(payload == held_payload)]
        m.d.comb += Cover(out.valid & out.ready & (shadow.count == shadow.depth))
