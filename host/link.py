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
from dataclasses import dataclass, fields

import numpy as np

from spikefab import protocol as P
from spikefab.spec import ChipConfig, CoreConfig

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

    @staticmethod
    def _fixed(op: P.Op, data: bytes, fields) -> dict:
        """Decode reply data that must be exactly `fields`; `LinkError` if its length differs."""
        if len(data) != P.fields_bytes(fields):
            raise LinkError(f"reply to {op.name} has {len(data)} data bytes, not "
                            f"{P.fields_bytes(fields)}")
        return P.unpack_struct(fields, data)

    def identify(self) -> Identity:
        values = self._fixed(P.Op.IDENTIFY, self.call(P.Op.IDENTIFY), P.IDENTIFY_FIELDS)
        if values["version"] != P.VERSION:
            raise LinkError(f"chip speaks protocol version {values['version']}, host {P.VERSION}")
        core = CoreConfig(**{f.name: values[f.name] for f in fields(CoreConfig)})
        chip = {f.name: values[f.name] for f in fields(ChipConfig) if f.name in values}
        return Identity(values["version"], ChipConfig(core=core, **chip), values["max_payload"])

    def status(self) -> dict:
        data = self.call(P.Op.READ_STATUS)
        head, per_core = P.fields_bytes(P.STATUS_FIELDS), P.fields_bytes(P.STATUS_CORE_FIELDS)
        status = self._fixed(P.Op.READ_STATUS, data[:head], P.STATUS_FIELDS)
        status["cores"] = [self._fixed(P.Op.READ_STATUS, data[i:i + per_core],
                                       P.STATUS_CORE_FIELDS)
                           for i in range(head, len(data), per_core)]
        return status

    def reset(self):
        self.call(P.Op.RESET)

    # Bulk memories: every WRITE / READ request of `protocol.REQUESTS`, split into frames -------

    def _write_items(self, op: P.Op, first: int, words, **head):
        """Write `words` from address `first` on; `head`: the request's other head fields."""
        request, words = P.REQUESTS[op], list(words)
        nbytes = request.item_bytes(self.config, head.get("region"))
        per_frame = request.max_items(self.config, head.get("region"))
        for i in range(0, len(words), per_frame):
            self.call(op, request.pack_head(**head, first=first + i) +
                      P.pack_items(words[i:i + per_frame], nbytes))

    def _read_items(self, op: P.Op, first: int, count: int, **head) -> list[int]:
        request = P.REQUESTS[op]
        nbytes = request.item_bytes(self.config, head.get("region"))
        per_frame = request.max_items(self.config, head.get("region"))
        words = []
        for i in range(0, count, per_frame):
            n = min(per_frame, count - i)
            data = self.call(op, request.pack_head(**head, first=first + i, count=n))
            if len(data) != n * nbytes:
                raise LinkError(f"reply to {op.name} has {len(data)} data bytes for {n} items "
                                f"of {nbytes}")
            words += P.unpack_items(data, nbytes)
        return words

    def write_weights(self, core: int, first_word: int, words):
        self._write_items(P.Op.WRITE_WEIGHTS, first_word, words, core=core)

    def read_weights(self, core: int, first_word: int, count: int) -> list[int]:
        return self._read_items(P.Op.READ_WEIGHTS, first_word, count, core=core)

    def write_params(self, core: int, first: int, words):
        self._write_items(P.Op.WRITE_PARAMS, first, words, core=core)

    def read_params(self, core: int, first: int, count: int) -> list[int]:
        return self._read_items(P.Op.READ_PARAMS, first, count, core=core)

    def write_state(self, core: int, first: int, words):
        self._write_items(P.Op.WRITE_STATE, first, words, core=core)

    def read_state(self, core: int, first: int, count: int) -> list[int]:
        return self._read_items(P.Op.READ_STATE, first, count, core=core)

    def write_route_index(self, first: int, entries):
        """entries: (start, count) pairs for sources first, first + 1, ..."""
        index = P.ITEMS["index"]
        self._write_items(P.Op.WRITE_ROUTE_INDEX, first,
                          [index.word(start=start, count=count) for start, count in entries])

    def read_route_index(self, first: int, count: int) -> list[tuple[int, int]]:
        words = self._read_items(P.Op.READ_ROUTE_INDEX, first, count)
        return [P.ITEMS["index"].values(w) for w in words]

    def write_regs(self, first: int, values):
        """Write 32-bit chip registers first, first + 1, ... (`protocol.Reg`)."""
        self._write_items(P.Op.WRITE_REGS, first, values)

    def read_regs(self, first: int, count: int) -> list[int]:
        return self._read_items(P.Op.READ_REGS, first, count)

    def write_route_dest(self, first: int, dests):
        """dests: (core, axon) pairs; core `protocol.HOST_CORE` sends to the host."""
        dest = P.ITEMS["dest"]
        self._write_items(P.Op.WRITE_ROUTE_DEST, first,
                          [dest.word(core=core, axon=axon) for core, axon in dests])

    def read_route_dest(self, first: int, count: int) -> list[tuple[int, int]]:
        words = self._read_items(P.Op.READ_ROUTE_DEST, first, count)
        return [P.ITEMS["dest"].values(w) for w in words]

    # Learning (plastic cores) ----------------------------------------------------------------

    def write_learn(self, core: int, region: int, first: int, words):
        """Write words of LEARN region `region` (`spikefab.learning.Region`) of a plastic
        core from address `first` on (WRITE_LEARN, split into frames)."""
        self._write_items(P.Op.WRITE_LEARN, first, words, core=core, region=int(region))

    def read_learn(self, core: int, region: int, first: int, count: int) -> list[int]:
        return self._read_items(P.Op.READ_LEARN, first, count, core=core, region=int(region))

    # Running ---------------------------------------------------------------------------------

    def input(self, inputs):
        """Send input events (host input ids) for the current step, split into frames."""
        ids = [int(i) for i in inputs]
        request = P.REQUESTS[P.Op.INPUT]
        per_frame, nbytes = request.max_items(self.config), request.item_bytes(self.config)
        for i in range(0, len(ids), per_frame):
            self.call(P.Op.INPUT, P.pack_items(ids[i:i + per_frame], nbytes))

    def tick(self, steps: int = 1) -> int:
        return self._step(self.call(P.Op.TICK, P.REQUESTS[P.Op.TICK].pack_head(steps=steps)))

    @staticmethod
    def _step(data: bytes) -> int:
        """The step counter of a TICK reply's data."""
        return ChipClient._fixed(P.Op.TICK, data, P.REQUESTS[P.Op.TICK].reply)["step"]

    def fetch(self, limit: int = 0xFFFF) -> list[tuple[int, int]]:
        """Return up to `limit` buffered output spikes as (step, source), oldest first."""
        out, per_frame = [], P.FETCH_MAX
        while len(out) < limit:
            want = min(limit - len(out), 0xFFFF)
            got = self.decode_fetch(self.call(P.Op.FETCH, _fetch_head(want)))
            out += got
            if len(got) < min(want, per_frame):     # the buffer is empty now
                break
        return out

    @staticmethod
    def decode_fetch(data: bytes) -> list[tuple[int, int]]:
        """The (step, source) pairs of a FETCH reply's data (`LinkError` if it is malformed)."""
        fetch = P.REQUESTS[P.Op.FETCH]
        head = fetch.reply_bytes
        count = fetch.unpack_reply(data)["n"] if len(data) >= head else -1
        if len(data) != head + count * fetch.item_bytes():
            raise LinkError(f"FETCH reply of {len(data)} data bytes does not hold its entries")
        return list(struct.iter_unpack(P.FETCH_ENTRY_FORMAT, data[head:]))

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
        self.send(P.Op.TICK, P.REQUESTS[P.Op.TICK].pack_head(steps=steps),
                  None if on_step is None else lambda data: on_step(self._step(data)))

    def send_fetch(self, limit: int, on_spikes):
        """Ask for up to `limit` (<= FETCH_MAX) buffered output spikes without waiting;
        `on_spikes(pairs)` gets their (step, source) pairs, oldest first."""
        self.send(P.Op.FETCH, _fetch_head(limit),
                  lambda data: on_spikes(self.decode_fetch(data)))


def _fetch_head(limit: int) -> bytes:
    return P.REQUESTS[P.Op.FETCH].pack_head(max=limit)
