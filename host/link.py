"""Host side of the link protocol: `ChipClient`, the one place that encodes requests and
decodes replies, over any transport of `spikefab.host.transport`.

Blocking calls (`identify`, `write_weights`, `fetch`, ...) wait for their reply. The pipelined
`send_*` methods (`send_input`, `send_tick`, `send_fetch`) do not: their decoded replies reach a
callback, and up to the transport's `window` request bytes are on the way at once (docs/host.md).
"""

from __future__ import annotations

import secrets
import struct
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from spikefab import protocol as P
from spikefab.spec import ChipConfig, CoreConfig, param_fields, state_fields, word_width

from .errors import ChipError, LinkError
from .transport import UART_WINDOW, ModelTransport, RecordingTransport, SerialTransport

__all__ = ["ChipError", "LinkError", "ModelTransport", "RecordingTransport", "SerialTransport",
           "ChipClient", "Identity", "UART_WINDOW", "IDS_PER_FRAME", "IDS_PER_FRAME8"]

#: Input ids per INPUT (2 bytes each) or INPUT8 (1 byte each) frame: two frames fit in a UART
#: window, so one can travel while the chip works through the other.
IDS_PER_FRAME = 254
IDS_PER_FRAME8 = 508


@dataclass(frozen=True)
class Identity:
    version: int
    config: ChipConfig
    max_payload: int


class ChipClient:
    """Typed requests over a transport; every method waits for its reply.

    Bulk transfers are split into frames of at most `MAX_PAYLOAD` bytes. `send` pipelines
    requests: up to the transport's `window` request bytes are on the way before the client waits
    for the oldest reply (`flush` waits for all). With `resync` the link may hold a previous
    session's bytes (a board's USB bridge does): the client synchronises first (`_synchronise`).
    """

    def __init__(self, transport, *, timeout: float = 5.0, resync: bool = False):
        self.transport, self.timeout = transport, timeout
        self.window = getattr(transport, "window", UART_WINDOW)
        self._tag = 0
        self._outstanding: deque = deque()     # (op, tag, frame bytes, on_reply)
        self._outstanding_bytes = 0
        if resync:
            self._synchronise()
        self.identity = self.identify()
        self.config = self.identity.config

    def call(self, op: P.Op, args: bytes = b"") -> bytes:
        """Send one request; return the reply's data or raise `ChipError` / `LinkError`."""
        result = []
        self.send(op, args, result.append)
        self.flush()
        return result[0]

    def send(self, op: P.Op, args: bytes = b"", on_reply=None):
        """Send a request without waiting for its reply; `on_reply(data)` gets the reply's data.

        Waits for older replies first while the unanswered bytes would exceed the window. A
        rejected request raises `ChipError` when its reply is read (here or in `flush`).
        """
        self._tag = (self._tag + 1) & 0xFF
        frame = P.request(op, self._tag, args)
        while self._outstanding and self._outstanding_bytes + len(frame) > self.window:
            self._receive()
        self.transport.write(frame)
        self._outstanding.append((op, self._tag, len(frame), on_reply))
        self._outstanding_bytes += len(frame)

    def flush(self):
        """Wait for every unanswered request's reply."""
        while self._outstanding:
            self._receive()

    def _receive(self):
        op, tag, size, on_reply = self._outstanding[0]
        body = self.transport.read_frame(self.timeout)
        try:
            payload = P.decode_frame(body)
        except P.FrameError as exc:
            raise LinkError(f"reply to {op.name} does not decode: {exc}") from None
        self._outstanding.popleft()
        self._outstanding_bytes -= size
        if len(payload) < 3 or payload[0] not in (op | P.REPLY_FLAG, P.ERROR_OP):
            raise LinkError(f"unexpected reply to {op.name}: {payload[:8].hex()}")
        try:
            status = P.Status(payload[2])
        except ValueError:
            raise LinkError(f"reply to {op.name} has unknown status {payload[2]}") from None
        if payload[0] == P.ERROR_OP or payload[1] != tag:
            raise LinkError(f"the chip could not decode {op.name}: {status.name}")
        if status != P.Status.OK:
            raise ChipError(op, status)
        if on_reply is not None:
            on_reply(payload[3:])

    def _synchronise(self, quiet: float = 0.5):
        """Start a session on a link that may hold a previous session's bytes.

        Sends a delimiter (ending a partial frame left in the chip's receiver) and an IDENTIFY
        probe, and discards every reply until the probe's own (same opcode and tag): stale
        replies carry another tag, and the partial frame's end brings an error reply. An error
        reply followed by `quiet` s of silence means the probe itself was swallowed by a stale
        partial frame: it is sent again under a new tag. Tags start at a random value, so a stale
        reply is unlikely to carry the probe's tag. Raises `LinkError` after `timeout` s.
        """
        self._tag = secrets.randbelow(256)
        deadline = time.monotonic() + self.timeout
        swallowed, resend = False, True
        while True:
            if resend:
                self._tag = (self._tag + 1) & 0xFF
                self.transport.write(bytes([P.DELIMITER]) + P.request(P.Op.IDENTIFY, self._tag))
                swallowed, resend = False, False
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise LinkError(f"no answer to IDENTIFY within {self.timeout:g} s")
                body = self.transport.read_frame(min(left, quiet) if swallowed else self.timeout)
            except LinkError:
                if swallowed and time.monotonic() < deadline:
                    resend = True
                    continue
                raise
            try:
                payload = P.decode_frame(body)
            except P.FrameError:
                continue                      # the tail of a stale reply
            if payload[:2] == bytes([P.Op.IDENTIFY | P.REPLY_FLAG, self._tag]):
                return
            swallowed = payload[:1] == bytes([P.ERROR_OP])

    # Identity and control --------------------------------------------------------------------

    def identify(self) -> Identity:
        data = self.call(P.Op.IDENTIFY)
        (version, n_cores, n_neurons, n_axons, n_inputs, k, ww, wi, wv, f, wr, sw, cap,
         entries, host_events, host_buffer, max_payload) = struct.unpack(P.IDENTIFY_FORMAT, data)
        if version != P.VERSION:
            raise LinkError(f"chip speaks protocol version {version}, host {P.VERSION}")
        core = CoreConfig(n_neurons=n_neurons, n_axons=n_axons, weights_per_word=k,
                          weight_width=ww, current_width=wi, voltage_width=wv, decay_width=f,
                          refractory_width=wr, step_width=sw, max_events_per_step=cap)
        return Identity(version, ChipConfig(core=core, n_cores=n_cores, n_inputs=n_inputs,
                                            route_entries=entries,
                                            max_host_events=host_events,
                                            host_buffer=host_buffer), max_payload)

    def status(self) -> dict:
        data = self.call(P.Op.READ_STATUS)
        names = ("step", "host_events", "host_pending", "host_dropped", "crc_errors",
                 "frame_errors", "uart_framing_errors", "uart_overflows")
        head = struct.calcsize(P.STATUS_FORMAT)
        status = dict(zip(names, struct.unpack(P.STATUS_FORMAT, data[:head])))
        status["cores"] = [dict(zip(("dropped_bad_axon", "dropped_overflow"),
                                    struct.unpack("<II", data[i:i + 8])))
                           for i in range(head, len(data), 8)]
        return status

    def reset(self):
        self.call(P.Op.RESET)

    # Bulk memories ---------------------------------------------------------------------------

    def _write_words(self, op, head: bytes, first: int, words, nbytes: int, first_fmt: str):
        per_frame = (P.MAX_PAYLOAD - 2 - len(head) - struct.calcsize(first_fmt)) // nbytes
        for i in range(0, len(words), per_frame):
            chunk = words[i:i + per_frame]
            self.call(op, head + struct.pack(first_fmt, first + i) +
                      b"".join(int(w).to_bytes(nbytes, "little") for w in chunk))

    def _read_words(self, op, head: bytes, first: int, count: int, nbytes: int, first_fmt: str):
        per_frame = (P.MAX_PAYLOAD - 3) // nbytes
        words = []
        for i in range(0, count, per_frame):
            n = min(per_frame, count - i)
            data = self.call(op, head + struct.pack(first_fmt, first + i) + struct.pack("<H", n))
            words += [int.from_bytes(data[j:j + nbytes], "little")
                      for j in range(0, len(data), nbytes)]
        return words

    def _word_bytes(self, kind: str) -> int:
        core = self.config.core
        bits = {"weights": core.weights_per_word * core.weight_width,
                "params": word_width(param_fields(core)),
                "state": word_width(state_fields(core))}[kind]
        return P.word_bytes(bits)

    def write_weights(self, core: int, first_word: int, words):
        self._write_words(P.Op.WRITE_WEIGHTS, bytes([core]), first_word, list(words),
                          self._word_bytes("weights"), "<I")

    def read_weights(self, core: int, first_word: int, count: int) -> list[int]:
        return self._read_words(P.Op.READ_WEIGHTS, bytes([core]), first_word, count,
                                self._word_bytes("weights"), "<I")

    def write_params(self, core: int, first: int, words):
        self._write_words(P.Op.WRITE_PARAMS, bytes([core]), first, list(words),
                          self._word_bytes("params"), "<H")

    def read_params(self, core: int, first: int, count: int) -> list[int]:
        return self._read_words(P.Op.READ_PARAMS, bytes([core]), first, count,
                                self._word_bytes("params"), "<H")

    def write_state(self, core: int, first: int, words):
        self._write_words(P.Op.WRITE_STATE, bytes([core]), first, list(words),
                          self._word_bytes("state"), "<H")

    def read_state(self, core: int, first: int, count: int) -> list[int]:
        return self._read_words(P.Op.READ_STATE, bytes([core]), first, count,
                                self._word_bytes("state"), "<H")

    def write_route_index(self, first: int, entries):
        """entries: (start, count) pairs for sources first, first + 1, ..."""
        words = [start | (count << 16) for start, count in entries]
        self._write_words(P.Op.WRITE_ROUTE_INDEX, b"", first, words, 4, "<H")

    def read_route_index(self, first: int, count: int) -> list[tuple[int, int]]:
        words = self._read_words(P.Op.READ_ROUTE_INDEX, b"", first, count, 4, "<H")
        return [(w & 0xFFFF, w >> 16) for w in words]

    def write_regs(self, first: int, values):
        """Write 32-bit chip registers first, first + 1, ... (`protocol.Reg`)."""
        self._write_words(P.Op.WRITE_REGS, b"", first, list(values), 4, "<H")

    def read_regs(self, first: int, count: int) -> list[int]:
        return self._read_words(P.Op.READ_REGS, b"", first, count, 4, "<H")

    def write_route_dest(self, first: int, dests):
        """dests: (core, axon) pairs; core `protocol.HOST_CORE` sends to the host."""
        words = [core | (axon << 8) for core, axon in dests]
        self._write_words(P.Op.WRITE_ROUTE_DEST, b"", first, words, 3, "<H")

    def read_route_dest(self, first: int, count: int) -> list[tuple[int, int]]:
        words = self._read_words(P.Op.READ_ROUTE_DEST, b"", first, count, 3, "<H")
        return [(w & 0xFF, w >> 8) for w in words]

    # Learning (plastic cores) ----------------------------------------------------------------

    def write_learn(self, core: int, region: int, first: int, words):
        """Write words of LEARN region `region` (`spikefab.learning.Region`) of a plastic
        core from address `first` on (WRITE_LEARN, split into frames)."""
        self._write_words(P.Op.WRITE_LEARN, bytes([core, int(region)]), first, list(words),
                          P.learn_item_bytes(self.config.core, region), "<I")

    def read_learn(self, core: int, region: int, first: int, count: int) -> list[int]:
        return self._read_words(P.Op.READ_LEARN, bytes([core, int(region)]), first, count,
                                P.learn_item_bytes(self.config.core, region), "<I")

    # Running ---------------------------------------------------------------------------------

    def input(self, inputs):
        """Send input events (host input ids) for the current step, split into frames."""
        ids = [int(i) for i in inputs]
        per_frame = (P.MAX_PAYLOAD - 2) // 2
        for i in range(0, len(ids), per_frame):
            self.call(P.Op.INPUT, struct.pack(f"<{len(ids[i:i + per_frame])}H",
                                              *ids[i:i + per_frame]))

    def tick(self, steps: int = 1) -> int:
        return struct.unpack("<I", self.call(P.Op.TICK, struct.pack("<H", steps)))[0]

    def fetch(self, limit: int = 0xFFFF) -> list[tuple[int, int]]:
        """Return up to `limit` buffered output spikes as (step, source), oldest first."""
        out, per_frame = [], P.FETCH_MAX
        while len(out) < limit:
            want = min(limit - len(out), 0xFFFF)
            data = self.call(P.Op.FETCH, struct.pack("<H", want))
            got = self.decode_fetch(data)
            out += got
            if len(got) < min(want, per_frame):     # the buffer is empty now
                break
        return out

    @staticmethod
    def decode_fetch(data: bytes) -> list[tuple[int, int]]:
        """The (step, source) pairs of a FETCH reply's data."""
        count = struct.unpack("<H", data[:2])[0]
        return [struct.unpack_from(P.FETCH_ENTRY_FORMAT, data, 2 + 6 * j) for j in range(count)]

    # Pipelined running (no wait for replies; see the module docstring) ----------------------

    @staticmethod
    def input_requests(ids) -> list[tuple[P.Op, bytes]]:
        """The requests that carry one step's chip input ids: INPUT8 (one byte per id) when every
        id fits in a byte, else INPUT (two bytes per id), each at most a frame."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and ids.max() < 256:
            return [(P.Op.INPUT8, ids[i:i + IDS_PER_FRAME8].astype(np.uint8).tobytes())
                    for i in range(0, len(ids), IDS_PER_FRAME8)]
        return [(P.Op.INPUT, ids[i:i + IDS_PER_FRAME].astype("<u2").tobytes())
                for i in range(0, len(ids), IDS_PER_FRAME)]

    def send_input(self, ids):
        """Send the current step's chip input ids (as few frames as fit), without waiting."""
        for op, args in self.input_requests(ids):
            self.send(op, args)

    def send_tick(self, steps: int = 1, on_step=None):
        """Run `steps` (1..65535) time steps without waiting; `on_step(step)` gets the chip's
        step counter after them."""
        self.send(P.Op.TICK, struct.pack("<H", steps),
                  None if on_step is None else lambda data: on_step(struct.unpack("<I", data)[0]))

    def send_fetch(self, limit: int, on_spikes):
        """Ask for up to `limit` (<= FETCH_MAX) buffered output spikes without waiting;
        `on_spikes(pairs)` gets their (step, source) pairs, oldest first."""
        self.send(P.Op.FETCH, struct.pack("<H", limit),
                  lambda data: on_spikes(self.decode_fetch(data)))
