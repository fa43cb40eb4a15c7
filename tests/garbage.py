"""Seeded link garbage for fuzzing the chip (model and gateware share one generator)."""

import random

from spikefab import protocol as P

KINDS = ("junk", "flip", "truncate", "oversize", "burst", "empty")


def garbage_chunk(rng: random.Random, good_frame: bytes) -> tuple[str, bytes]:
    """Return (kind, bytes ending in a delimiter): random bytes, a bit flip in `good_frame`, a
    truncated frame, an oversize frame, a burst of short bad frames, or empty frames."""
    kind = rng.choice(KINDS)
    if kind == "junk":
        chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
    elif kind == "flip":
        frame = bytearray(good_frame)
        frame[rng.randrange(len(frame) - 1)] ^= 1 << rng.randrange(8)
        chunk = bytes(frame)
    elif kind == "truncate":
        chunk = good_frame[:rng.randrange(1, len(good_frame) - 1)]
    elif kind == "oversize":
        chunk = bytes(rng.randrange(1, 256) for _ in range(P.MAX_ENCODED + rng.randrange(1, 12)))
    elif kind == "burst":
        chunk = b"".join(bytes(rng.randrange(1, 256) for _ in range(5)) + b"\x00"
                         for _ in range(rng.randrange(2, 6)))
    else:
        chunk = b"\x00"
    return kind, chunk + b"\x00"          # a delimiter ends whatever is pending
