"""Transports: how request bytes reach a chip and its reply frames come back.

`Transport` is the contract. Four kinds implement it:

- serial: a board's UART (or a pty) through pyserial, `serial:///dev/ttyUSB1?baud=...`,
  `/dev/ttyUSB1`: `SerialTransport`;
- socket: pyserial's `socket://HOST:PORT` (a running `spikefab board-sim`): `SocketTransport`;
- model: the golden model (`spikefab.sim.ChipModel`) in this process: `ModelTransport`
  (`RecordingTransport` also keeps the bytes, for a replay into the gateware);
- simulated board: a board simulator whose process the transport owns (started by a launcher,
  `BoardLauncher`; `spikefab.boards.sim.NativeBoard` by default): `SimBoardTransport`.

`ChipClient` (`spikefab.host.link`) is the only user of a transport: nothing else writes request
bytes or reads reply frames. `open_transport(spec)` picks the transport of a `--device` string.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from spikefab import protocol as P

from .errors import LinkError

__all__ = ["Transport", "ModelTransport", "RecordingTransport", "SerialTransport",
           "SocketTransport", "SimBoardTransport", "CountingTransport", "BoardLauncher",
           "open_transport", "UART_WINDOW"]

#: Request bytes a host may have unanswered on a UART link: the receive FIFO of `ChipOverUART`
#: (one maximal frame and its delimiter). The chip removes a request's bytes from the FIFO before
#: it replies, so the FIFO never holds more than the unanswered bytes and never overflows.
UART_WINDOW = P.MAX_ENCODED + 1


@runtime_checkable
class Transport(Protocol):
    """A byte link to one chip.

    - `write(data)` sends request bytes (whole frames or parts of them), in order;
    - `read_frame(timeout)` returns the next reply frame's body (the bytes before a 0x00
      delimiter, delimiter removed); raises `LinkError` after `timeout` seconds (None: wait for
      ever) or when the link breaks;
    - `window`: request bytes that may be unanswered at once (flow control, docs/host.md);
    - `capacity`: the link's bytes per second, or None when it has no fixed rate;
    - `name`: what the link is, for messages;
    - `close()` releases the link and anything it owns (a simulator process); calling it twice
      is harmless.
    """

    window: int
    capacity: float | None
    name: str

    def write(self, data: bytes) -> None: ...

    def read_frame(self, timeout: float | None = None) -> bytes: ...

    def close(self) -> None: ...


class ModelTransport:
    """In-process transport to a `spikefab.sim.ChipModel`."""

    #: The model answers each request as it is written: any window is safe.
    window = 1 << 20
    capacity = None
    name = "model"

    def __init__(self, model, *, window: int | None = None):
        self.model = model
        if window is not None:
            self.window = window
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

    def __init__(self, model, *, window: int | None = None):
        super().__init__(model, window=window)
        self.requests: list[bytes] = []
        self.replies: list[bytes] = []

    def write(self, data: bytes):
        reply = self.model.feed(data)
        self.requests.append(bytes(data))
        self.replies.append(reply)
        self._pending += reply


class SerialTransport:
    """A byte link through pyserial: a serial port, a pty, or any pyserial URL.

    `url` forms: `serial:///dev/ttyUSB1?baud=3000000` (a port and its baud rate), a device path
    (`/dev/ttyUSB1`, `COM3`, a pty's `/dev/pts/N`), or a pyserial URL (`loop://`, `spy://...`,
    `rfc2217://...`). `window` defaults to `UART_WINDOW`. Raises `LinkError` (naming the port)
    if it cannot be opened.
    """

    def __init__(self, url: str, *, baudrate: int = 3_000_000, window: int | None = None):
        import serial
        self.name, port = url, url
        parts = urlsplit(url)
        if parts.scheme == "serial":
            port = parts.path
            baudrate = _baud(url, parse_qs(parts.query), baudrate)
        self.window = window or UART_WINDOW
        # A UART frame is 10 bits per byte (8N1); sockets and other URLs have no fixed rate.
        self.capacity = baudrate / 10 if parts.scheme in ("serial", "") else None
        try:
            self.port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05,
                                              write_timeout=30)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LinkError(f"cannot open {url}: {exc}") from None
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


def _baud(url: str, query: dict, default: int) -> int:
    if "baud" not in query:
        return default
    try:
        return int(query["baud"][0])
    except ValueError:
        raise LinkError(f"{url}: baud must be an integer") from None


class SocketTransport(SerialTransport):
    """A TCP link through pyserial's `socket://HOST:PORT` URL (no fixed rate)."""

    def __init__(self, url: str, *, window: int | None = None):
        super().__init__(url, window=window)
        import socket
        # Frames are small and pipelined: do not let Nagle's algorithm hold them back.
        self.port._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BoardLauncher(Protocol):
    """A simulated board running in a process of its own (`spikefab.boards.sim.NativeBoard`:
    the chip gateware under Verilator with a C++ harness): `url` is the pyserial URL it listens
    on (`socket://...` or a pty's path); `close()` stops the process and reaps it (no zombie,
    its port free again)."""

    url: str

    def close(self) -> None: ...


class SimBoardTransport:
    """A transport that owns a simulated board: it opens `launcher.url` (a socket or a pty) and
    stops the board on `close()`.

    `launcher` is any `BoardLauncher`; it is closed here even if opening its URL fails.
    """

    def __init__(self, launcher: BoardLauncher):
        self.launcher = launcher
        try:
            url = launcher.url
            self.link = (SocketTransport(url) if url.startswith("socket://")
                         else SerialTransport(url))
        except BaseException:
            launcher.close()
            raise
        self.name = f"simulated board at {url}"
        self.window, self.capacity = self.link.window, self.link.capacity
        self._closed = False

    def write(self, data: bytes):
        self.link.write(data)

    def read_frame(self, timeout: float | None = None) -> bytes:
        return self.link.read_frame(timeout)

    def close(self):
        if not self._closed:
            self._closed = True
            try:
                self.link.close()        # a board started with `once` ends when we disconnect
            finally:
                self.launcher.close()


class CountingTransport:
    """Wraps a transport and counts the bytes each way (`sent`, `received`, delimiters
    included)."""

    def __init__(self, inner: Transport):
        self.inner, self.sent, self.received = inner, 0, 0
        self.window, self.capacity, self.name = inner.window, inner.capacity, inner.name

    def write(self, data: bytes):
        self.sent += len(data)
        self.inner.write(data)

    def read_frame(self, timeout: float | None = None) -> bytes:
        body = self.inner.read_frame(timeout)
        self.received += len(body) + 1
        return body

    def close(self):
        self.inner.close()


def open_transport(spec: str, *, config=None, board=None, uart_divisor: int | None = None
                   ) -> Transport:
    """The transport of a device string: `model` (the golden model of chip configuration
    `config`, default `ChipConfig()`), `sim` (a simulated board of `config`, started by the
    launcher class `board`, default `spikefab.boards.sim.NativeBoard` with `once=True`), `socket://HOST:PORT`,
    or a serial port (`serial:///dev/ttyUSB1?baud=3000000`, `/dev/ttyUSB1`, `COM3`, another
    pyserial URL). Raises `ValueError` for anything else, `LinkError` if it cannot be opened.
    """
    from spikefab.spec import ChipConfig
    if spec == "model":
        from spikefab.sim import ChipModel
        return ModelTransport(ChipModel(config or ChipConfig()))
    if spec == "sim":
        if board is None:
            from functools import partial

            from spikefab.boards.sim import NativeBoard
            # once: the board ends as soon as its client disconnects, no signal needed.
            board = partial(NativeBoard, once=True)
        return SimBoardTransport(board(config, uart_divisor=uart_divisor))
    if spec.startswith("socket://"):
        return SocketTransport(spec)
    if "://" not in spec and not spec.startswith(("/", "COM")):
        raise ValueError(f"unknown device {spec!r}: use model, sim, a serial port "
                         f"(serial:///dev/ttyUSB1?baud=3000000, /dev/ttyUSB1) or a pyserial "
                         f"URL (socket://127.0.0.1:7000)")
    return SerialTransport(spec)
