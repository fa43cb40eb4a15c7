"""The host-link protocol: framing, opcodes, status codes and every request's layout, as data.

One module, imported by the gateware, the chip's golden model and the host, so the three cannot
disagree on a constant. Each request is one row of `REQUESTS` (head fields and widths, item kind
and size, read or write, plastic-only, statuses); `docs/protocol.md` is the prose version, and a
test checks its tables against this one.

A frame on the byte stream is `COBS(payload ‖ CRC16(payload)) 0x00`: Consistent Overhead Byte
Stuffing removes every zero byte from the body, so 0x00 only ever delimits frames and a receiver
resynchronises at the next 0x00 after any error. The CRC is CRC-16/IBM-3740 (a.k.a. CCITT-FALSE:
polynomial 0x1021, initial value 0xFFFF, no reflection), sent big-endian. Every multi-byte field
inside a payload is little-endian.
"""

from __future__ import annotations

import binascii
import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cobs import cobs

from .learning import ERROR_ACC_WIDTH, FACTOR_WIDTH, TRACE_WIDTH, Region
from .learning import Reg as LearnReg
from .spec import (
    ChipConfig,
    Field,
    pack_fields,
    param_fields,
    state_fields,
    unpack_fields,
    word_width,
)

__all__ = [
    "VERSION", "DELIMITER", "Reg", "REG_MASKS", "N_REGS", "MAX_PAYLOAD", "MAX_ENCODED", "Op",
    "Status", "REPLY_FLAG",
    "ERROR_OP", "crc16", "encode_frame", "decode_frame", "FrameError", "request", "HOST_CORE",
    "Access", "ItemKind", "ITEMS", "Request", "REQUESTS", "item_bytes", "pack_items",
    "unpack_items", "pack_struct", "unpack_struct", "fields_bytes", "struct_format",
    "IDENTIFY_FIELDS", "STATUS_FIELDS", "STATUS_CORE_FIELDS",
    "LEARN_OPS", "LEARN_HEAD", "learn_item_bytes", "learn_depth",
]

VERSION = 1
DELIMITER = 0x00
#: Largest payload (opcode, tag, arguments) in either direction, before the CRC and COBS.
MAX_PAYLOAD = 1024
#: Largest encoded frame body (COBS adds at most one byte per 254), without the delimiter.
MAX_ENCODED = MAX_PAYLOAD + 2 + (MAX_PAYLOAD + 2) // 254 + 1
#: Replies carry the request's opcode with this bit set.
REPLY_FLAG = 0x80
#: Opcode of the reply to a frame that could not be decoded (its own opcode is unknown).
ERROR_OP = 0xFF
#: Route destination "core" value meaning "send to the host".
HOST_CORE = 0xFF


class Op(enum.IntEnum):
    """Request opcodes (payload byte 0)."""
    IDENTIFY = 0x01        #: -> version and capabilities
    READ_STATUS = 0x02     #: -> step, host-link counters, per-core drop counters
    RESET = 0x03           #: clear neuron state, step, buffers and counters; keep configuration
    WRITE_WEIGHTS = 0x10   #: core u8, word u32, words...
    READ_WEIGHTS = 0x11    #: core u8, word u32, count u16 -> words
    WRITE_PARAMS = 0x12    #: core u8, neuron u16, words...
    READ_PARAMS = 0x13     #: core u8, neuron u16, count u16 -> words
    WRITE_STATE = 0x14     #: core u8, neuron u16, words...
    READ_STATE = 0x15      #: core u8, neuron u16, count u16 -> words
    WRITE_ROUTE_INDEX = 0x16  #: source u16, (start u16, count u16)...
    READ_ROUTE_INDEX = 0x17   #: source u16, count u16 -> (start u16, count u16)...
    WRITE_ROUTE_DEST = 0x18   #: entry u16, (core u8, axon u16)...
    READ_ROUTE_DEST = 0x19    #: entry u16, count u16 -> (core u8, axon u16)...
    INPUT = 0x20           #: input u16... : events of the current step
    INPUT8 = 0x23          #: input u8... : the same with one byte per id (ids 0..255)
    TICK = 0x21            #: steps u16 -> step u32 after the last one
    FETCH = 0x22           #: max u16 -> count u16, (step u32, source u16)...
    WRITE_REGS = 0x30      #: first u16, values u32...
    READ_REGS = 0x31       #: first u16, count u16 -> values u32...
    WRITE_LEARN = 0x40     #: core u8, region u8, first u32, items... (plastic chips only)
    READ_LEARN = 0x41      #: core u8, region u8, first u32, count u16 -> items...


class Reg(enum.IntEnum):
    """Chip registers (WRITE_REGS / READ_REGS): 32-bit words, 0 at power-up, kept by RESET."""
    SCRATCH = 0x00         #: free for the host: a link check, a session marker


#: Writable bits of each register; a value with other bits set is refused (BAD_VALUE).
REG_MASKS = {Reg.SCRATCH: 0xFFFF_FFFF}
N_REGS = len(Reg)


class Status(enum.IntEnum):
    """Reply status (reply payload byte 2). Anything but OK means nothing was changed."""
    OK = 0
    BAD_CRC = 1          #: the frame's CRC did not match
    BAD_FRAME = 2        #: COBS decoding failed or the frame is shorter than opcode + tag + CRC
    TOO_LONG = 3         #: over MAX_ENCODED bytes before the delimiter, or payload > MAX_PAYLOAD
    UNKNOWN_OP = 4       #: no such opcode
    BAD_LENGTH = 5       #: the arguments' length does not fit the opcode
    BAD_ADDRESS = 6      #: a core (of a core memory), neuron, word, route entry or input id
    BAD_VALUE = 7        #: a field value out of range (a decay above 2**F, a route destination)
    LIMIT = 8            #: more input events in this step than the chip accepts
    NOT_PLASTIC = 9      #: a learning request to a core built without the plasticity unit


class FrameError(ValueError):
    """A frame could not be decoded; `status` says why."""

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status


def crc16(data: bytes) -> int:
    """CRC-16/IBM-3740 of `data`.

    `binascii.crc_hqx` is this CRC (polynomial 0x1021, MSB first) given the initial value 0xFFFF,
    in C, so the host frames input events fast; `tests/test_protocol.py` checks it against the
    `crc` package and a bitwise reference."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(payload: bytes) -> bytes:
    """Return the bytes that carry `payload` on the link, delimiter included."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD ({MAX_PAYLOAD})")
    return cobs.encode(payload + crc16(payload).to_bytes(2, "big")) + bytes([DELIMITER])


def decode_frame(body: bytes) -> bytes:
    """Decode one frame body (the bytes between two delimiters); return its payload.

    Raises `FrameError` with the status a receiver reports for it.
    """
    if len(body) > MAX_ENCODED:
        raise FrameError(Status.TOO_LONG, f"frame of {len(body)} bytes exceeds {MAX_ENCODED}")
    try:
        data = cobs.decode(body)
    except cobs.DecodeError as exc:
        raise FrameError(Status.BAD_FRAME, f"COBS decoding failed: {exc}") from None
    if len(data) < 4:
        raise FrameError(Status.BAD_FRAME, f"frame of {len(data)} bytes is too short")
    if len(data) > MAX_PAYLOAD + 2:
        raise FrameError(Status.TOO_LONG, f"payload of {len(data) - 2} bytes exceeds "
                                          f"{MAX_PAYLOAD}")
    payload, check = data[:-2], int.from_bytes(data[-2:], "big")
    if crc16(payload) != check:
        raise FrameError(Status.BAD_CRC, "CRC mismatch")
    return payload


def request(op: Op, tag: int, args: bytes = b"") -> bytes:
    """Return the encoded frame of a request."""
    return encode_frame(bytes([int(op), tag & 0xFF]) + args)


def reply_payload(op: int, tag: int, status: Status, data: bytes = b"") -> bytes:
    return bytes([op | REPLY_FLAG, tag & 0xFF, int(status)]) + data


# The requests, as data ---------------------------------------------------------------------------
#
# Every request is one `Request` row of `REQUESTS`: its head (the fixed fields after opcode and
# tag), the kind of its items, whether the items travel in the request (WRITE) or in the reply
# (READ), the fixed fields of its reply and the statuses it can return. The host client
# (`host/link.py`), the golden model (`sim/chip.py`) and the gateware (`hw/chip.py`, whose
# header layouts are `data.StructLayout`s of these fields) all read this table;
# `tests/test_protocol_doc.py` checks `docs/protocol.md` against it.

def u(name: str, width: int) -> Field:
    """An unsigned little-endian field of `width` bits (8, 16 or 32 on the wire)."""
    return Field(name, width, False)


def struct_format(fields) -> str:
    """The `struct` format of byte-wide unsigned fields, little-endian."""
    return "<" + "".join({8: "B", 16: "H", 32: "I"}[f.width] for f in fields)


def fields_bytes(fields) -> int:
    return sum(f.width for f in fields) // 8


def pack_struct(fields, **values) -> bytes:
    """Byte-wide unsigned `fields`, little-endian, from `values` by name; raise `ValueError` for
    a missing or out-of-range value."""
    try:
        return struct.pack(struct_format(fields), *[values[f.name] for f in fields])
    except (KeyError, struct.error) as exc:
        raise ValueError(f"fields {[f.name for f in fields]} from {values}: {exc}") from None


def unpack_struct(fields, data: bytes, offset: int = 0) -> dict:
    """The byte-wide unsigned `fields` of `data` at `offset`, by name."""
    return dict(zip((f.name for f in fields), struct.unpack_from(struct_format(fields), data,
                                                                 offset)))


class Access(enum.Enum):
    """Which way a request's items travel."""
    CONTROL = "control"   #: no items either way
    WRITE = "write"       #: the request carries items after its head
    READ = "read"         #: the reply carries items after its fixed fields


@dataclass(frozen=True)
class ItemKind:
    """One kind of item: a packed word of `bits(cfg)` bits, or a record of byte-wide `fields`.

    `by_region`: the size depends on the LEARN region named in the request's head
    (`learn_item_bytes`), so it is known only once the head has been checked."""
    name: str
    fields: tuple[Field, ...] = ()
    bits: Callable[[ChipConfig], int] | None = None
    by_region: bool = False

    def nbytes(self, cfg: ChipConfig | None = None, region: int | None = None) -> int:
        """Bytes of one item (`cfg` is needed for packed words and LEARN items only)."""
        if self.by_region:
            if region is None:
                raise ValueError(f"the size of a {self.name} item depends on its region")
            return learn_item_bytes(cfg.core, region)
        return word_bytes(self.bits(cfg)) if self.bits else fields_bytes(self.fields)

    def word(self, **values) -> int:
        """A record item's fields packed LSB first (`spec.pack_fields`: range-checked)."""
        return pack_fields(self.fields, values)

    def values(self, word: int) -> tuple[int, ...]:
        """A record item's field values, in field order."""
        return tuple(unpack_fields(self.fields, word).values())


ITEMS = {kind.name: kind for kind in (
    ItemKind("weights", bits=lambda cfg: cfg.core.weights_per_word * cfg.core.weight_width),
    ItemKind("params", bits=lambda cfg: word_width(param_fields(cfg.core))),
    ItemKind("state", bits=lambda cfg: word_width(state_fields(cfg.core))),
    ItemKind("index", fields=(u("start", 16), u("count", 16))),
    ItemKind("dest", fields=(u("core", 8), u("axon", 16))),
    ItemKind("input", fields=(u("id", 16),)),
    ItemKind("input8", fields=(u("id", 8),)),
    ItemKind("reg", fields=(u("value", 32),)),
    ItemKind("learn", by_region=True),
    ItemKind("spike", fields=(u("step", 32), u("source", 16))),
)}


def item_bytes(cfg: ChipConfig | None, kind: str, region: int | None = None) -> int:
    """Bytes of one item of `kind` (an `ITEMS` key) on a chip of `cfg`; "learn" needs `region`."""
    return ITEMS[kind].nbytes(cfg, region)


def pack_items(words, nbytes: int) -> bytes:
    """Items (ints) as `nbytes` little-endian bytes each."""
    return b"".join(int(w).to_bytes(nbytes, "little") for w in words)


def unpack_items(data: bytes, nbytes: int) -> list[int]:
    """The little-endian `nbytes`-byte items of `data` (whose length is a multiple of it)."""
    if nbytes in (1, 2, 4, 8):      # input ids and most words: decoded in C
        return np.frombuffer(data, dtype=f"<u{nbytes}").tolist()
    return [int.from_bytes(data[i:i + nbytes], "little") for i in range(0, len(data), nbytes)]


_S = Status


@dataclass(frozen=True)
class Request:
    """One request of the protocol (see the section comment above).

    `head`: the fields after opcode and tag, in order (a READ's head ends with `count`, the
    number of items asked for). `item`: the `ITEMS` kind of the items, or None. `min_items`:
    fewest items a WRITE carries. `reply`: fixed reply data fields, before any items. `statuses`:
    every status the request can be answered with (OK included); a plastic-only request is also
    answered UNKNOWN_OP by a chip without plastic cores."""
    op: Op
    access: Access
    head: tuple[Field, ...] = ()
    item: str | None = None
    statuses: frozenset = frozenset()
    plastic: bool = False
    min_items: int = 1
    reply: tuple[Field, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "statuses", frozenset(self.statuses) | {_S.OK})

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def head_bytes(self) -> int:
        return fields_bytes(self.head)

    @property
    def reply_bytes(self) -> int:
        """Bytes of the reply's fixed fields (READ_STATUS: without the per-core part)."""
        return fields_bytes(self.reply)

    def pack_head(self, **values) -> bytes:
        """The head's bytes; raise `ValueError` for a missing or out-of-range field."""
        return pack_struct(self.head, **values)

    def unpack_head(self, args: bytes) -> dict:
        """The head fields at the start of `args` (at least `head_bytes` long)."""
        return unpack_struct(self.head, args)

    def pack_reply(self, **values) -> bytes:
        """The reply's fixed fields (before any items)."""
        return pack_struct(self.reply, **values)

    def unpack_reply(self, data: bytes) -> dict:
        return unpack_struct(self.reply, data)

    def item_bytes(self, cfg: ChipConfig | None = None, region: int | None = None) -> int:
        return item_bytes(cfg, self.item, region)

    def max_items(self, cfg: ChipConfig | None = None, region: int | None = None) -> int:
        """Most items one frame carries: a WRITE's request, a READ's reply (`MAX_PAYLOAD`)."""
        room = MAX_PAYLOAD - 2 - self.head_bytes if self.access is Access.WRITE else \
            MAX_PAYLOAD - 3 - self.reply_bytes
        return room // self.item_bytes(cfg, region)


#: Fields of the IDENTIFY reply: the protocol version, the `ChipConfig` / `CoreConfig` fields of
#: the same names, and `MAX_PAYLOAD`.
IDENTIFY_FIELDS = (
    u("version", 8), u("n_cores", 8), u("n_neurons", 16), u("n_axons", 16), u("n_inputs", 16),
    u("weights_per_word", 8), u("weight_width", 8), u("current_width", 8),
    u("voltage_width", 8), u("decay_width", 8), u("refractory_width", 8), u("step_width", 8),
    u("max_events_per_step", 32), u("route_entries", 16), u("max_host_events", 16),
    u("host_buffer", 16), u("max_payload", 16))
#: READ_STATUS reply: these chip fields, then `STATUS_CORE_FIELDS` for each core.
STATUS_FIELDS = (
    u("step", 32), u("host_events", 16), u("host_pending", 16), u("host_dropped", 32),
    u("crc_errors", 32), u("frame_errors", 32), u("uart_framing_errors", 32),
    u("uart_overflows", 32))
STATUS_CORE_FIELDS = (u("dropped_bad_axon", 32), u("dropped_overflow", 32))

_CORE, _FIRST16, _FIRST32, _COUNT = u("core", 8), u("first", 16), u("first", 32), u("count", 16)
_LEARN = (_CORE, u("region", 8), _FIRST32)
_WRITE = {_S.BAD_LENGTH, _S.BAD_ADDRESS, _S.BAD_VALUE}
_READ = {_S.BAD_LENGTH, _S.BAD_ADDRESS}
_W, _R, _C = Access.WRITE, Access.READ, Access.CONTROL

#: Every request, by opcode (in `Op` order).
REQUESTS = {r.op: r for r in (
    Request(Op.IDENTIFY, _C, reply=IDENTIFY_FIELDS, statuses={_S.BAD_LENGTH}),
    Request(Op.READ_STATUS, _C, reply=STATUS_FIELDS, statuses={_S.BAD_LENGTH}),
    Request(Op.RESET, _C, statuses={_S.BAD_LENGTH}),
    Request(Op.WRITE_WEIGHTS, _W, (_CORE, _FIRST32), "weights", _WRITE),
    Request(Op.READ_WEIGHTS, _R, (_CORE, _FIRST32, _COUNT), "weights", _READ),
    Request(Op.WRITE_PARAMS, _W, (_CORE, _FIRST16), "params", _WRITE),
    Request(Op.READ_PARAMS, _R, (_CORE, _FIRST16, _COUNT), "params", _READ),
    Request(Op.WRITE_STATE, _W, (_CORE, _FIRST16), "state", _WRITE),
    Request(Op.READ_STATE, _R, (_CORE, _FIRST16, _COUNT), "state", _READ),
    Request(Op.WRITE_ROUTE_INDEX, _W, (_FIRST16,), "index", _WRITE),
    Request(Op.READ_ROUTE_INDEX, _R, (_FIRST16, _COUNT), "index", _READ),
    Request(Op.WRITE_ROUTE_DEST, _W, (_FIRST16,), "dest", _WRITE),
    Request(Op.READ_ROUTE_DEST, _R, (_FIRST16, _COUNT), "dest", _READ),
    Request(Op.INPUT, _W, (), "input", {_S.BAD_LENGTH, _S.BAD_ADDRESS, _S.LIMIT}, min_items=0),
    Request(Op.INPUT8, _W, (), "input8", {_S.BAD_ADDRESS, _S.LIMIT}, min_items=0),
    Request(Op.TICK, _C, (u("steps", 16),), reply=(u("step", 32),),
            statuses={_S.BAD_LENGTH, _S.BAD_VALUE}),
    Request(Op.FETCH, _R, (u("max", 16),), "spike", {_S.BAD_LENGTH}, reply=(u("n", 16),)),
    Request(Op.WRITE_REGS, _W, (_FIRST16,), "reg", _WRITE),
    Request(Op.READ_REGS, _R, (_FIRST16, _COUNT), "reg", _READ),
    Request(Op.WRITE_LEARN, _W, _LEARN, "learn", _WRITE | {_S.NOT_PLASTIC}, plastic=True),
    Request(Op.READ_LEARN, _R, _LEARN + (_COUNT,), "learn", _READ | {_S.NOT_PLASTIC},
            plastic=True),
)}
assert list(REQUESTS) == list(Op), "REQUESTS must hold every opcode, in Op order"

#: `struct` formats of the IDENTIFY and READ_STATUS replies (from the fields above).
IDENTIFY_FORMAT = struct_format(IDENTIFY_FIELDS)
STATUS_FORMAT = struct_format(STATUS_FIELDS)
STATUS_CORE_FORMAT = struct_format(STATUS_CORE_FIELDS)
#: One FETCH entry (step u32, source u16) and the most entries one reply holds.
FETCH_ENTRY_FORMAT = struct_format(ITEMS["spike"].fields)
FETCH_MAX = REQUESTS[Op.FETCH].max_items()


def identify_values(cfg: ChipConfig) -> dict:
    """The IDENTIFY reply's fields for `cfg`, by name."""
    return {f.name: VERSION if f.name == "version" else MAX_PAYLOAD if f.name == "max_payload"
            else getattr(cfg.core if hasattr(cfg.core, f.name) else cfg, f.name)
            for f in IDENTIFY_FIELDS}


def identify_data(cfg: ChipConfig) -> bytes:
    """The data of the IDENTIFY reply for a `spikefab.spec.ChipConfig`."""
    return pack_struct(IDENTIFY_FIELDS, **identify_values(cfg))


def word_bytes(bits: int) -> int:
    """Bytes that carry a packed word of `bits` bits (weights, parameters, state)."""
    return (bits + 7) // 8


# Learning (WRITE_LEARN / READ_LEARN) -----------------------------------------------------------

#: Opcodes a chip decodes only if at least one of its cores is plastic (UNKNOWN_OP otherwise).
LEARN_OPS = tuple(op for op, r in REQUESTS.items() if r.plastic)
#: Bytes of the WRITE_LEARN head (core u8, region u8, first u32); READ_LEARN adds count u16.
LEARN_HEAD = REQUESTS[Op.WRITE_LEARN].head_bytes


def learn_item_bytes(core, region: int) -> int:
    """Bytes of one item of LEARN region `region` on a core of `spec.CoreConfig` `core`."""
    return {Region.REGISTERS: 4, Region.MASK: word_bytes(core.weights_per_word),
            Region.FACTOR: word_bytes(FACTOR_WIDTH), Region.TARGET: 1,
            Region.PRE_TRACE: word_bytes(TRACE_WIDTH + 1),
            Region.POST_TRACE: word_bytes(TRACE_WIDTH),
            Region.ERROR_ACC: word_bytes(ERROR_ACC_WIDTH)}[Region(region)]


def learn_depth(core, region: int) -> int:
    """Addresses of LEARN region `region`: first + count must not exceed it (MASK: the synapse
    word addresses, which are also checked one by one like WRITE_WEIGHTS' words)."""
    word_bits = (core.words_per_axon - 1).bit_length()
    return {Region.REGISTERS: len(LearnReg), Region.MASK: core.n_axons << word_bits,
            Region.PRE_TRACE: core.n_axons}.get(Region(region), core.n_neurons)
