"""The host-link protocol: framing, opcodes, status codes and field encodings.

One module, imported by the gateware, the chip's golden model and the host, so the three cannot
disagree on a constant. `docs/protocol.md` is the prose version.

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

from cobs import cobs

from .learning import ERROR_ACC_WIDTH, FACTOR_WIDTH, TRACE_WIDTH, Region
from .learning import Reg as LearnReg

__all__ = [
    "VERSION", "DELIMITER", "Reg", "REG_MASKS", "N_REGS", "MAX_PAYLOAD", "MAX_ENCODED", "Op",
    "Status", "REPLY_FLAG",
    "ERROR_OP", "crc16", "encode_frame", "decode_frame", "FrameError", "request", "HOST_CORE",
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


# Field helpers (little-endian) -----------------------------------------------------------------

def u16(value: int) -> bytes:
    return struct.pack("<H", value)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def identify_data(cfg) -> bytes:
    """The data of the IDENTIFY reply for a `spikefab.spec.ChipConfig`."""
    k = cfg.core
    return struct.pack(
        IDENTIFY_FORMAT, VERSION, cfg.n_cores, k.n_neurons, k.n_axons, cfg.n_inputs,
        k.weights_per_word, k.weight_width, k.current_width, k.voltage_width, k.decay_width,
        k.refractory_width, k.step_width, k.max_events_per_step, cfg.route_entries,
        cfg.max_host_events, cfg.host_buffer, MAX_PAYLOAD)


#: Field layout of the IDENTIFY reply data (see `identify_data`).
IDENTIFY_FORMAT = "<BBHHHBBBBBBBIHHHH"
#: READ_STATUS reply: chip fields, then per core (dropped_bad_axon, dropped_overflow).
STATUS_FORMAT = "<IHHIIIII"
STATUS_CORE_FORMAT = "<II"
#: Bytes of one FETCH entry (step u32, source u16) and the most entries one reply holds.
FETCH_ENTRY_FORMAT = "<IH"
FETCH_MAX = (MAX_PAYLOAD - 3 - 2) // 6


def word_bytes(bits: int) -> int:
    """Bytes that carry a packed word of `bits` bits (weights, parameters, state)."""
    return (bits + 7) // 8


# Learning (WRITE_LEARN / READ_LEARN) -----------------------------------------------------------

#: Opcodes a chip decodes only if at least one of its cores is plastic (UNKNOWN_OP otherwise).
LEARN_OPS = (Op.WRITE_LEARN, Op.READ_LEARN)
#: Bytes of the WRITE_LEARN head (core u8, region u8, first u32); READ_LEARN adds count u16.
LEARN_HEAD = 6


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
