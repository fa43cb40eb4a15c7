"""The event router: multicast of a source's spikes through the route table.

For every source id taken from `i_source` the router reads the source's route-index entry
(start, count) and then the destinations start .. start + count - 1 of the shared destination
list, in order: a core destination leaves on `o_event` as (core, axon), a host destination on
`o_host` as the source id. `docs/architecture.md` shows where it sits in the chip;
`spikefab.sim.ChipModel._route` is its golden-model twin.

Cycle cost: 2 cycles per source to look up its index entry, then one destination per cycle while
the outputs are not back-pressured. Nothing is dropped: a stalled output stalls the router.
A source id >= n_sources is not looked up: it is counted in `bad_source` and skipped.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikefab import protocol as P
from spikefab.spec import COUNTER_WIDTH, ROUTE_INDEX_WIDTH, SOURCE_WIDTH, ChipConfig

from .arith import bump
from .layouts import core_event_layout, route_dest_layout, route_index_layout

__all__ = ["Router", "table_port_signature"]


def table_port_signature(depth: int, layout) -> wiring.Signature:
    """A memory port for the host side: write with `w_en`, read data one cycle after `addr`."""
    return wiring.Signature({
        "addr": Out(range(depth)), "w_en": Out(1), "w_data": Out(layout), "r_data": In(layout),
    })


class Router(wiring.Component):
    """Route-table lookup and multicast (see module docstring).

    `index` and `dest` give the host side access to the two tables; use them only while `busy`
    is low (the router then does not touch the tables).
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__({
            "i_source": In(stream.Signature(SOURCE_WIDTH)),
            "o_event": Out(stream.Signature(core_event_layout())),
            "o_host": Out(stream.Signature(SOURCE_WIDTH)),
            "index": In(table_port_signature(cfg.n_sources, route_index_layout())),
            "dest": In(table_port_signature(cfg.route_entries, route_dest_layout())),
            "busy": Out(1),
            "bad_source": Out(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.index_mem = index_mem = Memory(
            shape=route_index_layout(), depth=cfg.n_sources, init=[])
        m.submodules.dest_mem = dest_mem = Memory(
            shape=route_dest_layout(), depth=cfg.route_entries, init=[])
        index_wr, index_rd = index_mem.write_port(), index_mem.read_port()
        dest_wr, dest_rd = dest_mem.write_port(), dest_mem.read_port()

        source = Signal(SOURCE_WIDTH)
        entry = Signal(ROUTE_INDEX_WIDTH + 1)    # next destination to read
        end = Signal(ROUTE_INDEX_WIDTH + 1)      # one past the last destination
        have = Signal()              # dest_rd.data holds destination `entry - 1`
        bad_source = Signal(COUNTER_WIDTH)
        m.d.comb += self.bad_source.eq(bad_source)

        # Host-side table access (only while idle; the FSM below owns the ports otherwise).
        m.d.comb += [
            index_wr.addr.eq(self.index.addr), index_wr.data.eq(self.index.w_data),
            index_wr.en.eq(self.index.w_en), index_rd.addr.eq(self.index.addr),
            self.index.r_data.eq(index_rd.data),
            dest_wr.addr.eq(self.dest.addr), dest_wr.data.eq(self.dest.w_data),
            dest_wr.en.eq(self.dest.w_en), dest_rd.addr.eq(self.dest.addr),
            self.dest.r_data.eq(dest_rd.data),
        ]

        dest = dest_rd.data
        to_host = dest.core == P.HOST_CORE
        m.d.comb += [
            self.o_event.payload.core.eq(dest.core), self.o_event.payload.axon.eq(dest.axon),
            self.o_host.payload.eq(source),
        ]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.i_source.ready.eq(1)
                with m.If(self.i_source.valid):
                    with m.If(self.i_source.payload >= cfg.n_sources):
                        bump(m, bad_source)
                    with m.Else():
                        m.d.comb += index_rd.addr.eq(self.i_source.payload)
                        m.d.sync += source.eq(self.i_source.payload)
                        m.next = "INDEX"
            with m.State("INDEX"):
                start, count = index_rd.data.start, index_rd.data.count
                m.d.comb += dest_rd.addr.eq(start)
                m.d.sync += [entry.eq(start + 1), end.eq(start + count), have.eq(count != 0)]
                m.next = "SEND"
            with m.State("SEND"):
                # dest_rd.data is destination entry - 1 while `have`; read the next one as soon
                # as the current one is taken, so destinations flow at one per cycle.
                taken = Signal()
                with m.If(have):
                    m.d.comb += [self.o_host.valid.eq(to_host), self.o_event.valid.eq(~to_host),
                                 taken.eq(Mux(to_host, self.o_host.ready, self.o_event.ready))]
                m.d.comb += dest_rd.addr.eq(entry - 1)
                with m.If(~have):
                    m.next = "IDLE"
                with m.Elif(taken):
                    m.d.comb += dest_rd.addr.eq(entry)
                    m.d.sync += [entry.eq(entry + 1), have.eq(entry < end)]
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") | self.i_source.valid)
        return m
