"""Transports: how request bytes reach a chip and its reply frames come back.

Every transport has the same four members: `write(data)` sends bytes, `read_frame(timeout)`
returns the next frame body (the bytes before a 0x00 delimiter, raising `LinkError` on a timeout),
`window` is the number of request bytes that may be sent before their replies arrive (flow
control, docs/host.md), `capacity` is the link's bytes per second (None: no fixed rate), and
`close()` releases it. `ChipClient` (`spikefab.host.link`) is the only user of a transport.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from spikefab import protocol as P

from .errors import LinkError

__all__ = ["ModelTransport", "RecordingTransport", "SerialTransport", "UART_WINDOW"]

#: Request bytes a host may have unanswered on a UART link: the receive FIFO of `ChipOverUART`
#: (one maximal frame and its delimiter). The chip removes a request's bytes from the FIFO before
#: it replies, so the FIFO never holds more than the unanswered bytes and never overflows.
UART_WINDOW = P.MAX_ENCODED + 1


class ModelTransport:
    """In-process transport to a `spikefab.sim.ChipModel`."""

    #: The model answers each request as it is written: any window is safe.
    window = 1 << 20
    #: Bytes per second the link carries (None: no link, only the host's speed).
    capacity = None
    name = "model"

    def __init__(self, model):
        self.model = model
        self._pending = bytearray()

    def write(self, data: bytes):
        self._pending += self.model.feed(data)

    def read_frame(self, timeout: float | None = None) -> bytes:
        end = self._pending.find(P.DELIMITER)
        if end < 0:
            raise LinkError("the model sent no reply")
        body = bytes(self._pending[:end])
        del self._pending[:end + 1]
        return body

    def close(self):
        pass


class RecordingTransport(ModelTransport):
    """A model transport that keeps every request chunk and the model's reply to it, so the
    same bytes can be replayed into the gateware (`spikefab.verify.rtlsim.run_chip_exchange`)."""

    def __init__(self, model):
        super().__init__(model)
        self.requests: list[bytes] = []
        self.replies: list[bytes] = []

    def write(self, data: bytes):
        reply = self.model.feed(data)
        self.requests.append(bytes(data))
        self.replies.append(reply)
        self._pending += reply


class SerialTransport:
    """A byte link through pyserial: a serial port, a pty, or a pyserial URL.

    `url` forms: `serial:///dev/ttyUSB1?baud=3000000` (a port and its baud rate), a device path
    (`/dev/ttyUSB1`, `COM3`), or any pyserial URL (`socket://127.0.0.1:7000` for
    `spikefab board-sim`, `loop://`, `spy://...`, `rfc2217://...`). `window` defaults to
    `UART_WINDOW`. Raises `LinkError` (naming the port) if it cannot be opened.
    """

    def __init__(self, url: str, *, baudrate: int = 3_000_000, window: int | None = None):
        import serial
        self.name, port = url, url
        parts = urlsplit(url)
        if parts.scheme == "serial":
            port = parts.path
            query = parse_qs(parts.query)
            if "baud" in query:
                try:
                    baudrate = int(query["baud"][0])
                except ValueError:
                    raise LinkError(f"{url}: baud must be an integer") from None
        self.window = window or UART_WINDOW
        # A UART frame is 10 bits per byte (8N1); sockets and ptys have no fixed rate.
        self.capacity = baudrate / 10 if parts.scheme in ("serial", "") else None
        try:
            self.port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05,
                                              write_timeout=30)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LinkError(f"cannot open {url}: {exc}") from None
        sock = getattr(self.port, "_socket", None)
        if sock is not None:
            # Frames are small and pipelined: do not let Nagle's algorithm hold them back.
            import socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def write(self, data: bytes):
        import serial
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.name}: write failed: {exc}") from None

    def read_frame(self, timeout: float | None = None) -> bytes:
        import serial
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            end = self._buffer.find(P.DELIMITER)
            if end >= 0:
                body = bytes(self._buffer[:end])
                del self._buffer[:end + 1]
                return body
            if deadline is not None and time.monotonic() > deadline:
                raise LinkError(f"{self.name}: no reply within {timeout:g} s (is the board "
                                f"running and connected?)")
            try:
                self._buffer += self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise LinkError(f"{self.name}: read failed: {exc}") from None

    def close(self):
        self.port.close()
