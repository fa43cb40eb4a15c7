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

import struct
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
        self.weight_bytes = P.word_bytes(core.weights_per_word * core.weight_width)
        self.param_bytes = P.word_bytes(word_width(param_fields(core)))
        self.state_bytes = P.word_bytes(word_width(state_fields(core)))
        self._rx = bytearray()
        self._rx_overflow = False
        self._handlers = {
            P.Op.IDENTIFY: self._identify, P.Op.READ_STATUS: self._read_status,
            P.Op.RESET: self._reset,
            P.Op.WRITE_WEIGHTS: self._write_weights, P.Op.READ_WEIGHTS: self._read_weights,
            P.Op.WRITE_PARAMS: self._write_params, P.Op.READ_PARAMS: self._read_params,
            P.Op.WRITE_STATE: self._write_state, P.Op.READ_STATE: self._read_state,
            P.Op.WRITE_ROUTE_INDEX: self._write_route_index,
            P.Op.READ_ROUTE_INDEX: self._read_route_index,
            P.Op.WRITE_ROUTE_DEST: self._write_route_dest,
            P.Op.READ_ROUTE_DEST: self._read_route_dest,
            P.Op.INPUT: self._input, P.Op.INPUT8: self._input8, P.Op.TICK: self._tick,
            P.Op.FETCH: self._fetch,
            P.Op.WRITE_REGS: self._write_regs, P.Op.READ_REGS: self._read_regs,
        }
        if cfg.plastic:      # a chip without plastic cores does not know the learning opcodes
            self._handlers.update({P.Op.WRITE_LEARN: self._write_learn,
                                   P.Op.READ_LEARN: self._read_learn})
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
        """Execute one decoded request payload; return the reply payload."""
        op, tag, args = payload[0], payload[1], payload[2:]
        handler = self._handlers.get(op)
        if handler is None:
            return P.reply_payload(op & ~P.REPLY_FLAG & 0xFF, tag, P.Status.UNKNOWN_OP)
        try:
            data = handler(args)
        except RequestError as exc:
            return P.reply_payload(op, tag, exc.status)
        return P.reply_payload(op, tag, P.Status.OK, data)

    # Commands -------------------------------------------------------------------------------

    def _identify(self, args: bytes) -> bytes:
        _require(not args, P.Status.BAD_LENGTH)
        return P.identify_data(self.cfg)

    def _read_status(self, args: bytes) -> bytes:
        _require(not args, P.Status.BAD_LENGTH)
        data = struct.pack(P.STATUS_FORMAT, self.step & 0xFFFFFFFF, self.host_events,
                           len(self.host_out), self.host_dropped, self.crc_errors,
                           self.frame_errors, 0, 0)
        for core in self.cores:
            data += struct.pack(P.STATUS_CORE_FORMAT, core.dropped_bad_axon,
                                core.dropped_overflow)
        return data

    def _reset(self, args: bytes) -> bytes:
        _require(not args, P.Status.BAD_LENGTH)
        self._clear_run_state()
        return b""

    # Core memories: weights, parameters, state share one shape of request.

    def _block_write(self, args: bytes, first_width: int, nbytes: int):
        """Split `core u8, first u(first_width), words...`; check length and core."""
        head = 1 + first_width
        _require(len(args) > head and (len(args) - head) % nbytes == 0, P.Status.BAD_LENGTH)
        core = args[0]
        first = int.from_bytes(args[1:head], "little")
        words = [int.from_bytes(args[i:i + nbytes], "little")
                 for i in range(head, len(args), nbytes)]
        _require(core < self.cfg.n_cores, P.Status.BAD_ADDRESS)
        return self.cores[core], first, words

    def _block_read(self, args: bytes, first_width: int, nbytes: int):
        _require(len(args) == 1 + first_width + 2, P.Status.BAD_LENGTH)
        core = args[0]
        first = int.from_bytes(args[1:1 + first_width], "little")
        count = int.from_bytes(args[1 + first_width:], "little")
        _require(1 <= count and 3 + count * nbytes <= P.MAX_PAYLOAD, P.Status.BAD_LENGTH)
        _require(core < self.cfg.n_cores, P.Status.BAD_ADDRESS)
        return self.cores[core], first, count

    def _weight_slot(self, word_address: int) -> tuple[int, int]:
        word_bits = (self.cfg.core.words_per_axon - 1).bit_length()
        axon, word = word_address >> word_bits, word_address & ((1 << word_bits) - 1)
        _require(axon < self.cfg.core.n_axons and word < self.cfg.core.words_per_axon,
                 P.Status.BAD_ADDRESS)
        return axon, word

    def _write_weights(self, args: bytes) -> bytes:
        core, first, words = self._block_write(args, 4, self.weight_bytes)
        k, width = self.cfg.core.weights_per_word, self.cfg.core.weight_width
        slots = [self._weight_slot(first + i) for i in range(len(words))]
        _require(all(w >> (k * width) == 0 for w in words), P.Status.BAD_VALUE)
        for (axon, word), value in zip(slots, words):
            for lane in range(k):
                raw = (value >> (lane * width)) & ((1 << width) - 1)
                core.weights[axon, word * k + lane] = raw - ((raw >> (width - 1)) << width)
        return b""

    def _read_weights(self, args: bytes) -> bytes:
        core, first, count = self._block_read(args, 4, self.weight_bytes)
        k, width = self.cfg.core.weights_per_word, self.cfg.core.weight_width
        out = bytearray()
        for axon, word in [self._weight_slot(first + i) for i in range(count)]:
            value = 0
            for lane in range(k):
                value |= (int(core.weights[axon, word * k + lane]) & ((1 << width) - 1)) \
                    << (lane * width)
            out += value.to_bytes(self.weight_bytes, "little")
        return bytes(out)

    def _neuron_range(self, first: int, count: int):
        _require(first + count <= self.cfg.core.n_neurons, P.Status.BAD_ADDRESS)
        return range(first, first + count)

    def _write_params(self, args: bytes) -> bytes:
        core, first, words = self._block_write(args, 2, self.param_bytes)
        neurons = self._neuron_range(first, len(words))
        layout, one = param_fields(self.cfg.core), self.cfg.core.decay_one
        _require(all(w >> word_width(layout) == 0 for w in words), P.Status.BAD_VALUE)
        values = [unpack_fields(layout, w) for w in words]
        _require(all(v["alpha"] <= one and v["beta"] <= one for v in values), P.Status.BAD_VALUE)
        for n, word in zip(neurons, words):
            core.write_param_word(n, word)
        return b""

    def _read_params(self, args: bytes) -> bytes:
        core, first, count = self._block_read(args, 2, self.param_bytes)
        return b"".join(core.param_word(n).to_bytes(self.param_bytes, "little")
                        for n in self._neuron_range(first, count))

    def _write_state(self, args: bytes) -> bytes:
        core, first, words = self._block_write(args, 2, self.state_bytes)
        neurons = self._neuron_range(first, len(words))
        _require(all(w >> word_width(state_fields(self.cfg.core)) == 0 for w in words),
                 P.Status.BAD_VALUE)
        for n, word in zip(neurons, words):
            core.write_state_word(n, word)
        return b""

    def _read_state(self, args: bytes) -> bytes:
        core, first, count = self._block_read(args, 2, self.state_bytes)
        return b"".join(core.state_word(n).to_bytes(self.state_bytes, "little")
                        for n in self._neuron_range(first, count))

    # Route table and registers.

    def _table_args(self, args: bytes, entry_bytes: int, depth: int):
        _require(len(args) > 2 and (len(args) - 2) % entry_bytes == 0, P.Status.BAD_LENGTH)
        first = int.from_bytes(args[:2], "little")
        entries = [args[i:i + entry_bytes] for i in range(2, len(args), entry_bytes)]
        _require(first + len(entries) <= depth, P.Status.BAD_ADDRESS)
        return first, entries

    def _table_read_args(self, args: bytes, entry_bytes: int, depth: int):
        _require(len(args) == 4, P.Status.BAD_LENGTH)
        first, count = struct.unpack("<HH", args)
        _require(1 <= count and 3 + count * entry_bytes <= P.MAX_PAYLOAD, P.Status.BAD_LENGTH)
        _require(first + count <= depth, P.Status.BAD_ADDRESS)
        return range(first, first + count)

    def _write_route_index(self, args: bytes) -> bytes:
        first, entries = self._table_args(args, 4, self.cfg.n_sources)
        pairs = [struct.unpack("<HH", e) for e in entries]
        _require(all(s + c <= self.cfg.route_entries for s, c in pairs), P.Status.BAD_VALUE)
        for source, (start, count) in enumerate(pairs, first):
            self.route_start[source], self.route_count[source] = start, count
        return b""

    def _read_route_index(self, args: bytes) -> bytes:
        return b"".join(struct.pack("<HH", self.route_start[s], self.route_count[s])
                        for s in self._table_read_args(args, 4, self.cfg.n_sources))

    def _write_route_dest(self, args: bytes) -> bytes:
        first, entries = self._table_args(args, 3, self.cfg.route_entries)
        dests = [struct.unpack("<BH", e) for e in entries]
        for core, axon in dests:
            if core == P.HOST_CORE:
                _require(axon == 0, P.Status.BAD_VALUE)
            else:
                _require(core < self.cfg.n_cores and axon < self.cfg.core.n_axons,
                         P.Status.BAD_VALUE)
        for entry, (core, axon) in enumerate(dests, first):
            self.dest_core[entry], self.dest_axon[entry] = core, axon
        return b""

    def _read_route_dest(self, args: bytes) -> bytes:
        return b"".join(struct.pack("<BH", self.dest_core[e], self.dest_axon[e])
                        for e in self._table_read_args(args, 3, self.cfg.route_entries))

    def _write_regs(self, args: bytes) -> bytes:
        first, entries = self._table_args(args, 4, P.N_REGS)
        values = [int.from_bytes(e, "little") for e in entries]
        _require(all(v & ~P.REG_MASKS[P.Reg(r)] == 0 for r, v in enumerate(values, first)),
                 P.Status.BAD_VALUE)
        self.regs[first:first + len(values)] = values
        return b""

    def _read_regs(self, args: bytes) -> bytes:
        return b"".join(struct.pack("<I", self.regs[r])
                        for r in self._table_read_args(args, 4, P.N_REGS))

    # Learning (plastic cores).

    def _learn_target(self, args: bytes):
        """Check core and region of a learning request's head; return (core model, region)."""
        core, region = args[0], args[1]
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

    def _write_learn(self, args: bytes) -> bytes:
        _require(len(args) >= P.LEARN_HEAD, P.Status.BAD_LENGTH)
        core, region = self._learn_target(args)
        nbytes = P.learn_item_bytes(self.cfg.core, region)
        items = args[P.LEARN_HEAD:]
        _require(items and len(items) % nbytes == 0, P.Status.BAD_LENGTH)
        words = [int.from_bytes(items[i:i + nbytes], "little")
                 for i in range(0, len(items), nbytes)]
        first = int.from_bytes(args[2:6], "little")
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

    def _read_learn(self, args: bytes) -> bytes:
        _require(len(args) == P.LEARN_HEAD + 2, P.Status.BAD_LENGTH)
        core, region = self._learn_target(args)
        nbytes = P.learn_item_bytes(self.cfg.core, region)
        first, count = struct.unpack("<IH", args[2:])
        _require(1 <= count and 3 + count * nbytes <= P.MAX_PAYLOAD, P.Status.BAD_LENGTH)
        return b"".join(core.read_region(region, address).to_bytes(nbytes, "little")
                        for address in self._learn_addresses(region, first, count))

    # Running.

    def _input(self, args: bytes) -> bytes:
        _require(len(args) % 2 == 0, P.Status.BAD_LENGTH)
        return self._input_ids(np.frombuffer(args, dtype="<u2").astype(np.int64))

    def _input8(self, args: bytes) -> bytes:
        return self._input_ids(np.frombuffer(args, dtype=np.uint8).astype(np.int64))

    def _input_ids(self, inputs: np.ndarray) -> bytes:
        _require(not inputs.size or inputs.max() < self.cfg.n_inputs, P.Status.BAD_ADDRESS)
        sources = self.cfg.input_source(0) + inputs
        routed = int(self.route_count[sources].sum())
        _require(self.host_events + routed <= self.cfg.max_host_events, P.Status.LIMIT)
        self.host_events += routed
        for source in sources:
            self._route(int(source))
        return b""

    def _tick(self, args: bytes) -> bytes:
        _require(len(args) == 2, P.Status.BAD_LENGTH)
        steps = int.from_bytes(args, "little")
        _require(steps >= 1, P.Status.BAD_VALUE)
        for _ in range(steps):
            self.run_step()
        return struct.pack("<I", self.step & 0xFFFFFFFF)

    def _fetch(self, args: bytes) -> bytes:
        _require(len(args) == 2, P.Status.BAD_LENGTH)
        limit = min(int.from_bytes(args, "little"), len(self.host_out), P.FETCH_MAX)
        out = bytearray(struct.pack("<H", limit))
        for _ in range(limit):
            step, source = self.host_out.popleft()
            out += struct.pack(P.FETCH_ENTRY_FORMAT, step & 0xFFFFFFFF, source)
        return bytes(out)

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
