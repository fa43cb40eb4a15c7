"""cocotb bridge between the simulated board (`SimBoard`) and a real byte channel.

`spikefab board-sim` runs this "test" under Verilator: it listens on a TCP socket
(`socket://127.0.0.1:PORT`, pyserial's socket URL) or opens a pseudo-terminal, and moves every
byte the host sends into the board's input stream and every byte the board sends back out, for as
long as it runs. Settings come from the environment (set by `spikefab.verify.rtlsim.serve_board`):

- `SPIKEFAB_BOARD_LISTEN`: `socket:HOST:PORT` (PORT 0 picks a free port) or `pty`;
- `SPIKEFAB_BOARD_READY`: a file that receives the URL to open once the board is listening;
- `SPIKEFAB_BOARD_ONCE`: `1` ends the simulation when the first socket client disconnects.

Scheduling: Python is woken every clock cycle only while bytes move (one byte per cycle each way);
otherwise the simulator runs on in growing slices (16 to 4096 cycles) until a reply byte appears.
When every request frame has been answered and nothing is waiting, the simulator is paused on a
`select` for new bytes, so an idle board costs no CPU and simulated time stands still.
"""

import os
import select
import socket
import tty

from spikefab import protocol as P

from .cocotb_api import Clock, RisingEdge, Timer, cocotb
from .rtlsim import high, hold_reset

CLOCK_NS = 10


class SocketLink:
    """A listening TCP socket; one client at a time."""

    def __init__(self, host: str, port: int):
        self.server = socket.create_server((host, port))
        self.url = f"socket://{host}:{self.server.getsockname()[1]}"
        self.conn = None
        self.clients = 0

    def poll(self, timeout: float):
        """Return received bytes (maybe b""), or None when the client has gone."""
        if self.conn is None:
            ready, _, _ = select.select([self.server], [], [], timeout)
            if ready:
                self.conn, _ = self.server.accept()
                self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.clients += 1
            return b""
        ready, _, _ = select.select([self.conn], [], [], timeout)
        if not ready:
            return b""
        try:
            data = self.conn.recv(65536)
        except ConnectionError:
            data = b""
        if not data:
            self.conn.close()
            self.conn = None
            return None
        return data

    def send(self, data: bytes):
        if self.conn is not None:
            try:
                self.conn.sendall(data)
            except ConnectionError:
                pass    # the client went away; poll() notices


class PtyLink:
    """A pseudo-terminal in raw mode; the host opens `url` (the slave device) with pyserial."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.url = os.ttyname(self.slave)
        self.clients = 1

    def poll(self, timeout: float):
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master, 65536)
        except (BlockingIOError, OSError):
            return b""

    def send(self, data: bytes):
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                select.select([], [self.master], [], 0.1)


def open_link(spec: str):
    if spec == "pty":
        return PtyLink()
    kind, host, port = spec.split(":")
    if kind != "socket":
        raise ValueError(f"unknown board endpoint {spec!r}")
    return SocketLink(host, int(port))


class FrameCounter:
    """Counts non-empty frames in a byte stream (the protocol answers each with one reply)."""

    def __init__(self):
        self.frames, self._body = 0, False

    def feed(self, data: bytes):
        for byte in data:
            if byte == P.DELIMITER:
                self.frames += self._body
                self._body = False
            else:
                self._body = True


async def move_bytes(dut, to_chip: bytearray, got: bytearray, limit: int = 8192) -> bool:
    """Move bytes each way, one clock cycle per wake-up, until nothing moves (or `limit`).

    Consumes the bytes sent from the front of `to_chip` and appends the received ones to `got`.
    Leaves `i.valid` and `o.ready` low, so no byte moves while Python is not looking.
    Returns whether any byte moved.
    """
    sent, valid, moved = 0, False, False
    dut.o__ready.value = 1
    for _ in range(limit):
        await RisingEdge(dut.clk)
        progress = False
        if valid and high(dut.i__ready):
            sent += 1
            valid, progress = False, True
        if high(dut.o__valid):      # o.ready was high for this edge
            got.append(dut.o__payload.value.to_unsigned())
            progress = True
        if not valid and sent < len(to_chip):
            dut.i__payload.value = to_chip[sent]
            valid = True
        moved |= progress
        if not progress and not valid:
            break
        dut.i__valid.value = valid
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    del to_chip[:sent]
    return moved


@cocotb.test()
async def serve(dut):
    once = os.environ.get("SPIKEFAB_BOARD_ONCE") == "1"
    link = open_link(os.environ.get("SPIKEFAB_BOARD_LISTEN", "socket:127.0.0.1:0"))
    # The clock toggles in the simulator's C++ layer ("gpi"): Python is not woken for edges
    # nobody awaits, which makes the idle slices cheap.
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    await hold_reset(dut, 2, idle=("i__valid", "o__ready"))
    await RisingEdge(dut.clk)
    ready_path = os.environ.get("SPIKEFAB_BOARD_READY")
    if ready_path:
        with open(ready_path + ".tmp", "w") as f:
            f.write(link.url)
        os.replace(ready_path + ".tmp", ready_path)   # readers never see a partial URL
    dut._log.info("board listening on %s", link.url)
    requests, replies = FrameCounter(), FrameCounter()
    to_chip, slice_cycles = bytearray(), 16
    while True:
        waiting = requests.frames > replies.frames or bool(to_chip)
        data = link.poll(0 if waiting else 0.05)
        if data is None:
            dut._log.info("client disconnected")
            if once:
                break
            # A new client starts from a clean receiver: end any partial frame it left.
            requests, replies, to_chip = FrameCounter(), FrameCounter(), bytearray()
            continue
        requests.feed(data)
        to_chip += data
        if not waiting and not to_chip:
            continue
        got = bytearray()
        if await move_bytes(dut, to_chip, got):
            slice_cycles = 16
        else:
            await Timer(slice_cycles * CLOCK_NS, unit="ns")
            await RisingEdge(dut.clk)      # move_bytes starts right after an edge
            slice_cycles = min(2 * slice_cycles, 4096)
        if got:
            replies.feed(got)
            link.send(bytes(got))
