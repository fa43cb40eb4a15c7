"""A FIFO with typed stream ports: `amaranth.lib.fifo.SyncFIFOBuffered` behind `stream` ends.

Every queue of the chip (a core's spike FIFO, the per-core command FIFOs and the host FIFO of
`Delivery`) is this one block, so that each is joined to its neighbours with `wiring.connect`
instead of wiring `w_en`/`r_rdy` by hand.
"""

from amaranth.hdl import Module, Shape
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["StreamFIFO"]


class StreamFIFO(wiring.Component):
    """A synchronous FIFO of `depth` entries of `shape`: `i` in, `o` out, `level` held.

    The `stream` rules hold on both ends: `i.ready` is the FIFO's room (independent of
    `i.valid`), `o.valid` its having an entry. Timing is `SyncFIFOBuffered`'s: an entry written
    into an empty FIFO in cycle t is offered on `o` from cycle t + 2 (it passes through the
    output register). `level` counts every entry held, the output register's too.
    """

    def __init__(self, shape, depth: int):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"FIFO depth must be a positive integer, not {depth!r}")
        self.shape, self.depth = shape, depth
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=Shape.cast(self.shape).width,
                                                    depth=self.depth)
        wiring.connect(m, wiring.flipped(self.i), fifo.w_stream)
        wiring.connect(m, fifo.r_stream, wiring.flipped(self.o))
        m.d.comb += self.level.eq(fifo.level)
        return m
