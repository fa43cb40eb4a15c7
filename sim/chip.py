"""Golden model of the whole chip at the protocol level: bytes in, bytes out.

`ChipModel.feed(data)` consumes request bytes and returns the reply bytes the chip sends, so a
test can feed the same bytes to this model and to the gateware and compare every reply byte,
errors and status counters included. The semantics are those of `docs/protocol.md` (commands) and
`docs/architecture.md` (routing and time steps):

- host INPUT events for the current step are routed through the route table immediately and land
  in step t;
- a TICK first updates every core (step t), then routes the step's spikes in (core, neuron) order
  through the table: core destinations receive them as inputs of step t + 1, host destinations
  append (t, source) to the host buffer (a full buffer drops and counts);
- a rejected request changes nothing.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from spikefab import learning
from spikefab import protocol as P
from spikefab.learning import READ_ONLY, Region, check_register
from spikefab.learning import Reg as LearnReg
from spikefab.spec import (
    COUNTER_MAX,
    ChipConfig,
    param_fields,
    state_fields,
    unpack_fields,
    word_width,
)

from .lif import CoreModel
from .plasticity import PlasticCoreModel

__all__ = ["ChipModel"]


class RequestError(Exception):
    """A request is rejected with `status`; nothing has been changed."""

    def __init__(self, status: P.Status):
        super().__init__(status.name)
        self.status = status


def _require(condition, status: P.Status):
    if not condition:
        raise RequestError(status)


def _sat_add(counter: int, amount: int = 1) -> int:
    return min(counter + amount, COUNTER_MAX)


class ChipModel:
    """The chip: C `CoreModel`s, the route table, the host buffer and the protocol engine."""

    def __init__(self, cfg: ChipConfig | None = None):
        self.cfg = cfg = cfg or ChipConfig()
        core = cfg.core
        self.cores = [PlasticCoreModel(core) if cfg.is_plastic(c) else CoreModel(core)
                      for c in range(cfg.n_cores)]
        self.route_start = np.zeros(cfg.n_sources, dtype=np.int64)
        self.route_count = np.zeros(cfg.n_sources, dtype=np.int64)
        self.dest_core = np.zeros(cfg.route_entries, dtype=np.int64)
        self.dest_axon = np.zeros(cfg.route_entries, dtype=np.int64)
        self._rx = bytearray()
        self._rx_overflow = False
        # One handler per request of `protocol.REQUESTS`, named after it (`_write_weights`); a
        # chip without plastic cores does not know the plastic-only opcodes.
        self._handlers = {op: getattr(self, f"_{op.name.lower()}")
                          for op, request in P.REQUESTS.items()
                          if cfg.plastic or not request.plastic}
        self.regs = [0] * P.N_REGS
        self._clear_run_state()

    def _clear_run_state(self):
        for core in self.cores:
            core.v[:] = core.i[:] = core.ref[:] = core.acc[:] = 0
            core.step = core.events_this_step = 0
            core.dropped_bad_axon = core.dropped_overflow = 0
            if isinstance(core, PlasticCoreModel):
                core.clear()
        self.step = 0
        self.host_events = 0
        self.host_out: deque[tuple[int, int]] = deque()
        self.host_dropped = 0
        self.crc_errors = 0
        self.frame_errors = 0

    # Byte stream ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Consume request bytes; return every reply completed by them."""
        replies = bytearray()
        for byte in data:
            if byte != P.DELIMITER:
                if len(self._rx) < P.MAX_ENCODED:
                    self._rx.append(byte)
                else:
                    self._rx_overflow = True
                continue
            replies += self._end_of_frame()
        return bytes(replies)

    def _end_of_frame(self) -> bytes:
        body, overflow = bytes(self._rx), self._rx_overflow
        self._rx.clear()
        self._rx_overflow = False
        if overflow:
            self.frame_errors = _sat_add(self.frame_errors)
            return P.encode_frame(P.reply_payload(P.ERROR_OP, 0, P.Status.TOO_LONG))
        if not body:
            return b""      # an empty frame (0x00 0x00) is a no-op: hosts send it to resync
        try:
            payload = P.decode_frame(body)
        except P.FrameError as exc:
            if exc.status == P.Status.BAD_CRC:
                self.crc_errors = _sat_add(self.crc_errors)
            else:
                self.frame_errors = _sat_add(self.frame_errors)
            return P.encode_frame(P.reply_payload(P.ERROR_OP, 0, exc.status))
        return P.encode_frame(self.execute(payload))

    def execute(self, payload: bytes) -> bytes:
        """Execute one decoded request payload; return the reply payload.

        The request's head and items are parsed from its `protocol.REQUESTS` row, then its
        handler checks and acts; every status it answers must be one the row lists."""
        op, tag, args = payload[0], payload[1], payload[2:]
        handler = self._handlers.get(op)
        if handler is None:
            return P.reply_payload(op & ~P.REPLY_FLAG & 0xFF, tag, P.Status.UNKNOWN_OP)
        request = P.REQUESTS[op]
        try:
            status, data = P.Status.OK, handler(*self._parse(request, args))
        except RequestError as exc:
            status, data = exc.status, b""
        assert status in request.statuses, \
            f"{request.name} answered {status.name}, which protocol.REQUESTS does not list"
        return P.reply_payload(op, tag, status, data)

    def _parse(self, request: P.Request, args: bytes):
        """Check a request's length against its row; return (head fields, items).

        items: a WRITE's items as ints (checked: whole, at least `min_items`); its raw item bytes
        when their size depends on the head (LEARN: the handler checks them); None otherwise.
        A READ's `count` is checked here too unless its item size depends on the head."""
        head_bytes = request.head_bytes
        if request.access is P.Access.WRITE:
            _require(len(args) >= head_bytes, P.Status.BAD_LENGTH)
        else:
            _require(len(args) == head_bytes, P.Status.BAD_LENGTH)
        head, rest = request.unpack_head(args), args[head_bytes:]
        if request.item is None or P.ITEMS[request.item].by_region:
            return head, rest if request.access is P.Access.WRITE else None
        nbytes = request.item_bytes(self.cfg)
        if request.access is P.Access.WRITE:
            return head, self._items(request, rest, nbytes)
        if "count" in head:
            self._check_count(head["count"], nbytes)
        return head, None

    @staticmethod
    def _items(request: P.Request, data: bytes, nbytes: int) -> list[int]:
        _require(len(data) >= request.min_items * nbytes and len(data) % nbytes == 0,
                 P.Status.BAD_LENGTH)
        return P.unpack_items(data, nbytes)

    @staticmethod
    def _check_count(count: int, nbytes: int):
        """A read asks for at least one item, and its reply fits in a frame."""
        _require(1 <= count and 3 + count * nbytes <= P.MAX_PAYLOAD, P.Status.BAD_LENGTH)

    def _bytes(self, kind: str) -> int:
        return P.item_bytes(self.cfg, kind)

    # Commands: one handler per request, `_<name>(head, items)` -----------------------------

    def _identify(self, head, items) -> bytes:
        return P.identify_data(self.cfg)

    def _read_status(self, head, items) -> bytes:
        data = P.REQUESTS[P.Op.READ_STATUS].pack_reply(
            step=self.step & 0xFFFFFFFF, host_events=self.host_events,
            host_pending=len(self.host_out), host_dropped=self.host_dropped,
            crc_errors=self.crc_errors, frame_errors=self.frame_errors,
            uart_framing_errors=0, uart_overflows=0)
        return data + b"".join(P.pack_struct(P.STATUS_CORE_FIELDS,
                                             dropped_bad_axon=core.dropped_bad_axon,
                                             dropped_overflow=core.dropped_overflow)
                               for core in self.cores)

    def _reset(self, head, items) -> bytes:
        self._clear_run_state()
        return b""

    # Core memories: weights, parameters, state share one shape of request.

    def _core(self, head):
        _require(head["core"] < self.cfg.n_cores, P.Status.BAD_ADDRESS)
        return self.cores[head["core"]]

    def _weight_slot(self, word_address: int) -> tuple[int, int]:
        word_bits = (self.cfg.core.words_per_axon - 1).bit_length()
        axon, word = word_address >> word_bits, word_address & ((1 << word_bits) - 1)
        _require(axon < self.cfg.core.n_axons and word < self.cfg.core.words_per_axon,
                 P.Status.BAD_ADDRESS)
        return axon, word

    def _write_weights(self, head, words) -> bytes:
        core, first = self._core(head), head["first"]
        k, width = self.cfg.core.weights_per_word, self.cfg.core.weight_width
        slots = [self._weight_slot(first + i) for i in range(len(words))]
        _require(all(w >> (k * width) == 0 for w in words), P.Status.BAD_VALUE)
        for (axon, word), value in zip(slots, words):
            for lane in range(k):
                raw = (value >> (lane * width)) & ((1 << width) - 1)
                core.weights[axon, word * k + lane] = raw - ((raw >> (width - 1)) << width)
        return b""

    def _read_weights(self, head, items) -> bytes:
        core, first = self._core(head), head["first"]
        k, width = self.cfg.core.weights_per_word, self.cfg.core.weight_width
        words = []
        for axon, word in [self._weight_slot(first + i) for i in range(head["count"])]:
            value = 0
            for lane in range(k):
                value |= (int(core.weights[axon, word * k + lane]) & ((1 << width) - 1)) \
                    << (lane * width)
            words.append(value)
        return P.pack_items(words, self._bytes("weights"))

    def _neuron_range(self, first: int, count: int):
        _require(first + count <= self.cfg.core.n_neurons, P.Status.BAD_ADDRESS)
        return range(first, first + count)

    def _write_params(self, head, words) -> bytes:
        core = self._core(head)
        neurons = self._neuron_range(head["first"], len(words))
        layout, one = param_fields(self.cfg.core), self.cfg.core.decay_one
        _require(all(w >> word_width(layout) == 0 for w in words), P.Status.BAD_VALUE)
        values = [unpack_fields(layout, w) for w in words]
        _require(all(v["alpha"] <= one and v["beta"] <= one for v in values), P.Status.BAD_VALUE)
        for n, word in zip(neurons, words):
            core.write_param_word(n, word)
        return b""

    def _read_params(self, head, items) -> bytes:
        core = self._core(head)
        return P.pack_items([core.param_word(n) for n in
                             self._neuron_range(head["first"], head["count"])],
                            self._bytes("params"))

    def _write_state(self, head, words) -> bytes:
        core = self._core(head)
        neurons = self._neuron_range(head["first"], len(words))
        _require(all(w >> word_width(state_fields(self.cfg.core)) == 0 for w in words),
                 P.Status.BAD_VALUE)
        for n, word in zip(neurons, words):
            core.write_state_word(n, word)
        return b""

    def _read_state(self, head, items) -> bytes:
        core = self._core(head)
        return P.pack_items([core.state_word(n) for n in
                             self._neuron_range(head["first"], head["count"])],
                            self._bytes("state"))

    # Route table and registers.

    @staticmethod
    def _table_range(first: int, count: int, depth: int) -> range:
        _require(first + count <= depth, P.Status.BAD_ADDRESS)
        return range(first, first + count)

    def _write_route_index(self, head, words) -> bytes:
        sources = self._table_range(head["first"], len(words), self.cfg.n_sources)
        pairs = [P.ITEMS["index"].values(w) for w in words]
        _require(all(s + c <= self.cfg.route_entries for s, c in pairs), P.Status.BAD_VALUE)
        for source, (start, count) in zip(sources, pairs):
            self.route_start[source], self.route_count[source] = start, count
        return b""

    def _read_records(self, head, kind: str, depth: int, **columns) -> bytes:
        """A READ of record items `kind` whose fields are the arrays `columns`, by name."""
        item = P.ITEMS[kind]
        rows = self._table_range(head["first"], head["count"], depth)
        return P.pack_items([item.word(**{name: int(column[r]) for name, column in
                                          columns.items()}) for r in rows],
                            item.nbytes(self.cfg))

    def _read_route_index(self, head, items) -> bytes:
        return self._read_records(head, "index", self.cfg.n_sources, start=self.route_start,
                                  count=self.route_count)

    def _write_route_dest(self, head, words) -> bytes:
        entries = self._table_range(head["first"], len(words), self.cfg.route_entries)
        dests = [P.ITEMS["dest"].values(w) for w in words]
        for core, axon in dests:
            if core == P.HOST_CORE:
                _require(axon == 0, P.Status.BAD_VALUE)
            else:
                _require(core < self.cfg.n_cores and axon < self.cfg.core.n_axons,
                         P.Status.BAD_VALUE)
        for entry, (core, axon) in zip(entries, dests):
            self.dest_core[entry], self.dest_axon[entry] = core, axon
        return b""

    def _read_route_dest(self, head, items) -> bytes:
        return self._read_records(head, "dest", self.cfg.route_entries, core=self.dest_core,
                                  axon=self.dest_axon)

    def _write_regs(self, head, values) -> bytes:
        first = head["first"]
        self._table_range(first, len(values), P.N_REGS)
        _require(all(v & ~P.REG_MASKS[P.Reg(r)] == 0 for r, v in enumerate(values, first)),
                 P.Status.BAD_VALUE)
        self.regs[first:first + len(values)] = values
        return b""

    def _read_regs(self, head, items) -> bytes:
        return self._read_records(head, "reg", P.N_REGS, value=self.regs)

    # Learning (plastic cores).

    def _learn_target(self, head):
        """Check core and region of a learning request's head; return (core model, region)."""
        core, region = head["core"], head["region"]
        _require(core < self.cfg.n_cores and region < len(Region), P.Status.BAD_ADDRESS)
        _require(self.cfg.is_plastic(core), P.Status.NOT_PLASTIC)
        return self.cores[core], Region(region)

    def _learn_addresses(self, region: Region, first: int, count: int) -> range:
        addresses = range(first, first + count)
        if region == Region.MASK:
            for address in addresses:
                self._weight_slot(address)
        else:
            _require(first + count <= P.learn_depth(self.cfg.core, region), P.Status.BAD_ADDRESS)
        return addresses

    def _write_learn(self, head, items: bytes) -> bytes:
        core, region = self._learn_target(head)
        request = P.REQUESTS[P.Op.WRITE_LEARN]
        words = self._items(request, items, request.item_bytes(self.cfg, region))
        first = head["first"]
        addresses = self._learn_addresses(region, first, len(words))
        if region == Region.REGISTERS:
            self._check_learn_registers(first, words)
        else:
            width = learning.region_width(self.cfg.core, region)
            _require(all(w >> width == 0 for w in words), P.Status.BAD_VALUE)
        for address, word in zip(addresses, words):
            core.write_region(region, address, word)
        return b""

    def _check_learn_registers(self, first: int, words: list[int]):
        """Read-only registers are BAD_ADDRESS; refused values BAD_VALUE. SEED_HI is accepted
        only together with SEED_LO (the seed is loaded whole, and must not be 0)."""
        values = dict(enumerate(words, first))
        _require(not any(LearnReg(r) in READ_ONLY for r in values), P.Status.BAD_ADDRESS)
        for reg, word in values.items():
            seed_lo = values.get(LearnReg.SEED_LO)
            if reg == LearnReg.SEED_HI and seed_lo is None:
                raise RequestError(P.Status.BAD_VALUE)
            _require(check_register(self.cfg.core, reg, word, seed_lo or 0), P.Status.BAD_VALUE)

    def _read_learn(self, head, items) -> bytes:
        core, region = self._learn_target(head)
        nbytes = P.item_bytes(self.cfg, "learn", region)
        self._check_count(head["count"], nbytes)
        return P.pack_items([core.read_region(region, address) for address in
                             self._learn_addresses(region, head["first"], head["count"])],
                            nbytes)

    # Running.

    def _input(self, head, ids) -> bytes:
        inputs = np.asarray(ids, dtype=np.int64)
        _require(not inputs.size or inputs.max() < self.cfg.n_inputs, P.Status.BAD_ADDRESS)
        sources = self.cfg.input_source(0) + inputs
        routed = int(self.route_count[sources].sum())
        _require(self.host_events + routed <= self.cfg.max_host_events, P.Status.LIMIT)
        self.host_events += routed
        for source in sources:
            self._route(int(source))
        return b""

    _input8 = _input        # the same ids, one byte each

    def _tick(self, head, items) -> bytes:
        _require(head["steps"] >= 1, P.Status.BAD_VALUE)
        for _ in range(head["steps"]):
            self.run_step()
        return P.REQUESTS[P.Op.TICK].pack_reply(step=self.step & 0xFFFFFFFF)

    def _fetch(self, head, items) -> bytes:
        limit = min(head["max"], len(self.host_out), P.FETCH_MAX)
        spike = P.ITEMS["spike"]
        entries = [self.host_out.popleft() for _ in range(limit)]
        return P.REQUESTS[P.Op.FETCH].pack_reply(n=limit) + P.pack_items(
            [spike.word(step=step & 0xFFFFFFFF, source=source) for step, source in entries],
            spike.nbytes(self.cfg))

    def run_step(self):
        """Tick every core (step t), then route step t's spikes (into step t + 1)."""
        spikes = [core.tick() for core in self.cores]
        n = self.cfg.core.n_neurons
        for c, ids in enumerate(spikes):
            for neuron in ids:
                self._route(c * n + int(neuron))
        self.step += 1
        self.host_events = 0

    def _route(self, source: int):
        start, count = int(self.route_start[source]), int(self.route_count[source])
        for entry in range(start, start + count):
            core = int(self.dest_core[entry])
            if core == P.HOST_CORE:
                if len(self.host_out) < self.cfg.host_buffer:
                    self.host_out.append((self.step, source))
                else:
                    self.host_dropped = _sat_add(self.host_dropped)
            else:
                self.cores[core].event(int(self.dest_axon[entry]))
