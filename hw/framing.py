"""Link framing in gateware: COBS + CRC-16 frames in and out (see `spikefab.protocol`).

`FrameReceiver` decodes the byte stream into a frame buffer, one byte per cycle, and reports each
frame's status exactly as `spikefab.protocol.decode_frame` would. `FrameTransmitter` takes a
reply payload written into its buffer, appends the CRC and streams it out COBS-encoded, byte for
byte what the `cobs` library produces.

Each keeps its frame in a buffer that is written and read in different phases, so on the
iCE40UP5K (`buffer="spram"` or "auto") it can live in a single-port SPRAM instead of block RAM.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikefab import protocol as P

from .layouts import FRAME_BUFFER_BYTES as BUFFER_BYTES
from .layouts import frame_layout
from .spram import buffer_ports

__all__ = ["crc16_next", "FrameReceiver", "FrameTransmitter"]


def crc16_next(m: Module, crc, byte):
    """Return the CRC-16/IBM-3740 register after shifting in `byte` (MSB first).

    Each of the 8 bit steps is its own combinational signal, so the logic stays linear in size.
    """
    value = crc ^ (byte << 8)
    for _ in range(8):
        step = Signal(16)
        m.d.comb += step.eq(Mux(value[15], (value << 1)[:16] ^ 0x1021, (value << 1)[:16]))
        value = step
    return value


class FrameReceiver(wiring.Component):
    """Decode frames from `i` into a buffer; offer each frame's status and length on `o_frame`.

    `length` is the payload length (CRC excluded); payload byte k is read through `buf_addr` /
    `buf_data` (one cycle latency). While a frame is offered (until `o_frame.ready`) the buffer
    belongs to the consumer and `i` is not ready. Empty frames (two delimiters) are skipped.
    Status is `protocol.Status` OK, BAD_CRC, BAD_FRAME or TOO_LONG with the same precedence as
    `protocol.decode_frame`. Throughput: one byte per cycle.
    """

    i: In(stream.Signature(8))
    o_frame: Out(stream.Signature(frame_layout()))
    buf_addr: In(range(BUFFER_BYTES))
    buf_data: Out(8)

    def __init__(self, *, buffer: str = "memory"):
        self.buffer_kind = buffer
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        wr, rd = buffer_ports(m, "buf", kind=self.buffer_kind, platform=platform, width=8,
                              depth=BUFFER_BYTES)
        m.d.comb += [rd.addr.eq(self.buf_addr), rd.en.eq(1), self.buf_data.eq(rd.data)]

        body = Signal(range(P.MAX_ENCODED + 2))        # encoded bytes since the delimiter
        overflow = Signal()                             # body exceeded MAX_ENCODED
        remaining = Signal(8)                           # data bytes left in this COBS group
        group_full = Signal()                           # this group's code was 0xFF
        pending_zero = Signal()                         # a zero ends the group unless EOF
        decoded = Signal(range(BUFFER_BYTES + 2))       # saturates at BUFFER_BYTES + 1
        crc = Signal(16, init=0xFFFF)

        def emit(value):
            with m.If(decoded < BUFFER_BYTES):
                m.d.comb += [wr.addr.eq(decoded), wr.data.eq(value), wr.en.eq(1)]
            with m.If(decoded <= BUFFER_BYTES):
                m.d.sync += decoded.eq(decoded + 1)
            m.d.sync += crc.eq(crc16_next(m, crc, value))

        def restart():
            m.d.sync += [body.eq(0), overflow.eq(0), remaining.eq(0), group_full.eq(0),
                         pending_zero.eq(0), decoded.eq(0), crc.eq(0xFFFF)]

        byte = self.i.payload
        with m.If(self.o_frame.valid):
            with m.If(self.o_frame.ready):
                m.d.sync += self.o_frame.valid.eq(0)
        with m.Else():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid & (byte == P.DELIMITER)):
                restart()
                with m.If(body != 0):
                    m.d.sync += [self.o_frame.valid.eq(1),
                                 self.o_frame.payload.length.eq(decoded - 2)]
                    with m.If(overflow):
                        m.d.sync += self.o_frame.payload.status.eq(P.Status.TOO_LONG)
                    with m.Elif((remaining != 0) | (decoded < 4)):
                        m.d.sync += self.o_frame.payload.status.eq(P.Status.BAD_FRAME)
                    with m.Elif(decoded > BUFFER_BYTES):
                        m.d.sync += self.o_frame.payload.status.eq(P.Status.TOO_LONG)
                    with m.Elif(crc != 0):   # the CRC of data followed by its CRC is 0
                        m.d.sync += self.o_frame.payload.status.eq(P.Status.BAD_CRC)
                    with m.Else():
                        m.d.sync += self.o_frame.payload.status.eq(P.Status.OK)
            with m.Elif(self.i.valid & (body == P.MAX_ENCODED)):
                m.d.sync += overflow.eq(1)          # ignore the rest up to the delimiter
            with m.Elif(self.i.valid & ~overflow):
                m.d.sync += body.eq(body + 1)
                with m.If(remaining == 0):          # a code byte starts a group
                    with m.If(pending_zero):
                        emit(0)
                    m.d.sync += [remaining.eq(byte - 1), group_full.eq(byte == 0xFF),
                                 pending_zero.eq(byte == 1)]
                with m.Else():
                    emit(byte)
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.d.sync += pending_zero.eq(~group_full)
        return m


class FrameTransmitter(wiring.Component):
    """Send a payload, CRC appended, COBS-encoded and followed by the delimiter, on `o`.

    Write the payload bytes in order through `w_en`/`w_data` (one per cycle, from address 0),
    then pulse `send`; `busy` is high from `send` until the delimiter has been taken. Writes
    while busy are ignored. Cost: about two cycles per byte (a scan pass and an emit pass per
    COBS group) when `o` is never back-pressured.
    """

    w_en: In(1)
    w_data: In(8)
    send: In(1)
    busy: Out(1)
    o: Out(stream.Signature(8))

    def __init__(self, *, buffer: str = "memory"):
        self.buffer_kind = buffer
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        wr, rd = buffer_ports(m, "buf", kind=self.buffer_kind, platform=platform, width=8,
                              depth=BUFFER_BYTES)
        length = Signal(range(BUFFER_BYTES + 1))        # bytes in the buffer
        crc = Signal(16, init=0xFFFF)
        pos = Signal(range(BUFFER_BYTES + 1))           # start of the current group
        scan = Signal(range(BUFFER_BYTES + 1))          # address being scanned / emitted
        run = Signal(range(256))                        # non-zero bytes in the group
        m.d.comb += rd.en.eq(1)

        with m.FSM() as fsm:
            with m.State("FILL"):
                with m.If(self.w_en):
                    m.d.comb += [wr.addr.eq(length), wr.data.eq(self.w_data), wr.en.eq(1)]
                    m.d.sync += [length.eq(length + 1), crc.eq(crc16_next(m, crc, self.w_data))]
                with m.If(self.send):
                    m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += [wr.addr.eq(length), wr.data.eq(crc[8:]), wr.en.eq(1)]
                m.d.sync += length.eq(length + 1)
                m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += [wr.addr.eq(length), wr.data.eq(crc[:8]), wr.en.eq(1)]
                m.d.sync += [length.eq(length + 1), pos.eq(0), scan.eq(0), run.eq(0)]
                m.next = "SCAN_ADDR"
            # Scan from pos: count non-zero bytes up to a zero, 254 bytes or the end.
            with m.State("SCAN_ADDR"):
                m.d.comb += rd.addr.eq(scan)
                m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += rd.addr.eq(scan + 1)
                with m.If((scan == length) | (rd.data == 0) | (run == 254)):
                    m.next = "CODE"
                with m.Else():
                    m.d.sync += [run.eq(run + 1), scan.eq(scan + 1)]
            with m.State("CODE"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(run + 1),
                             rd.addr.eq(pos)]
                with m.If(self.o.ready):
                    m.d.sync += scan.eq(pos)
                    m.next = "EMIT"
            with m.State("EMIT"):
                # rd.data holds the byte at `scan` (its address was set the cycle before).
                m.d.comb += rd.addr.eq(scan)
                with m.If(scan == pos + run):
                    self._next_group(m, pos, scan, run, length)
                with m.Else():
                    m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(rd.data)]
                    with m.If(self.o.ready):
                        m.d.comb += rd.addr.eq(scan + 1)
                        m.d.sync += scan.eq(scan + 1)
            with m.State("DELIMIT"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(P.DELIMITER)]
                with m.If(self.o.ready):
                    m.d.sync += [length.eq(0), crc.eq(0xFFFF)]
                    m.next = "FILL"
            with m.State("LAST_EMPTY"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(1)]
                with m.If(self.o.ready):
                    m.next = "DELIMIT"
        m.d.comb += self.busy.eq(~fsm.ongoing("FILL"))
        return m

    @staticmethod
    def _next_group(m, pos, scan, run, length):
        """After a group: skip the zero that ended it, finish, or start the next group."""
        end = pos + run
        with m.If(end == length):
            m.next = "DELIMIT"
        with m.Elif(run == 254):
            m.d.sync += [pos.eq(end), scan.eq(end), run.eq(0)]
            m.next = "SCAN_ADDR"
        with m.Elif(end + 1 == length):      # the data ended with a zero: one empty group
            m.next = "LAST_EMPTY"
        with m.Else():
            m.d.sync += [pos.eq(end + 1), scan.eq(end + 1), run.eq(0)]
            m.next = "SCAN_ADDR"
