"""Framing and CRC against independent implementations and known check values."""

import random

import pytest
from cobs import cobs

from spikefab import protocol as P


def test_crc_is_crc16_ibm_3740_check_value():
    assert P.crc16(b"123456789") == 0x29B1   # the catalogued check value of CRC-16/IBM-3740


def test_crc_matches_a_bitwise_reference():
    def bitwise(data):
        crc = 0xFFFF
        for byte in data:
            crc ^= byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        return crc
    rng = random.Random(5)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        assert P.crc16(data) == bitwise(data)


def test_frame_has_one_delimiter_and_roundtrips():
    rng = random.Random(6)
    for length in [2, 3, 253, 254, 255, 600, P.MAX_PAYLOAD]:
        payload = bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)]) for _ in range(length))
        frame = P.encode_frame(payload)
        assert frame.count(0) == 1 and frame[-1] == 0
        assert len(frame) - 1 <= P.MAX_ENCODED
        assert P.decode_frame(frame[:-1]) == payload


@pytest.mark.parametrize("body, status", [
    (cobs.encode(b"\x01\x02\x00\x00")[:-1], P.Status.BAD_FRAME),   # truncated COBS block
    (cobs.encode(b"\x01\x02"), P.Status.BAD_FRAME),               # too short for a CRC
    (bytes([1]) * (P.MAX_ENCODED + 1), P.Status.TOO_LONG),
])
def test_undecodable_frames_name_their_status(body, status):
    with pytest.raises(P.FrameError) as info:
        P.decode_frame(body)
    assert info.value.status == status


def test_single_bit_flips_are_caught_by_the_crc_or_framing():
    frame = P.request(P.Op.TICK, 7, b"\x05\x00")[:-1]
    for position in range(len(frame)):
        for bit in range(8):
            corrupted = bytearray(frame)
            corrupted[position] ^= 1 << bit
            if 0 in corrupted:
                continue        # a flip to 0x00 splits the frame: the receiver sees two frames
            with pytest.raises(P.FrameError):
                P.decode_frame(bytes(corrupted))


def test_oversize_payload_is_refused_by_the_encoder():
    with pytest.raises(ValueError, match="exceeds MAX_PAYLOAD"):
        P.encode_frame(bytes(P.MAX_PAYLOAD + 1))


def test_crc_equals_the_crc_package():
    from crc import Calculator, Crc16
    rng = random.Random(3)
    calculator = Calculator(Crc16.IBM_3740)
    for n in (0, 1, 2, 7, 100, 1026):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert P.crc16(data) == calculator.checksum(data)
