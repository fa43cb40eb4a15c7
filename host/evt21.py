"""Decode Prophesee EVT 2.1 event words (faery 0.7.1 cannot: its decoder is a `todo!`).

EVT 2.1 (Prophesee's "EVT 2.1 Format" page) is a stream of 64-bit little-endian words after the
`%` header. The top 4 bits give the word type:

| type | name | bits 59..54 | bits 53..32 | bits 31..0 |
|---|---|---|---|---|
| 0x0 / 0x1 | EVT_NEG / EVT_POS | time, low 6 bits | x (53..43), y (42..32) | valid |
| 0x8 | EVT_TIME_HIGH | time bits 33..6 (28 bits, 59..32) | | unused |
| 0xA | EXT_TRIGGER | time, low 6 bits | trigger id, value | unused |
| 0xE / 0xF | OTHERS / CONTINUED | vendor data | | |

A CD word stands for up to 32 events of one polarity, one time and one row: bit i of `valid`
set means an event at (x + i, y). Time = (last EVT_TIME_HIGH << 6) | low 6 bits, in µs, plus the
header's `% t0`; a TIME_HIGH smaller than the one before is a wrap of the 34-bit time and adds
2^34 µs. IMX636 sensors write the "legacy" layout (`endianness=legacy` in the header's format
line): the same word with its two 32-bit halves swapped. Trigger and vendor words carry no CD
events and are counted, not returned; the reserved types are an error (a corrupt file).
"""

from __future__ import annotations

import numpy as np

__all__ = ["WORD_BYTES", "decode_words", "Evt21State"]

WORD_BYTES = 8
CD_NEG, CD_POS, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xE, 0xF
KNOWN = (CD_NEG, CD_POS, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED)
TIME_HIGH_WRAP = 1 << 28
_BITS = np.arange(32, dtype=np.uint64)


class Evt21State:
    """What a decoder carries from one block of words to the next."""

    def __init__(self, t0: int = 0):
        self.t0 = int(t0)
        self.time_high = None          # the last TIME_HIGH (28 bits), None before the first
        self.wraps = 0                 # TIME_HIGH wraps seen so far
        self.words = 0                 # words decoded so far (for error positions)
        self.skipped = {"trigger": 0, "vendor": 0}


def decode_words(raw: np.ndarray, state: Evt21State, *, legacy: bool = False):
    """Decode `raw` (uint64 words as read from the file, little-endian) into (t, x, y, on)
    arrays of its CD events, in word order then x order; update `state`.

    Raises `ValueError` naming the first word of a reserved type.
    """
    words = raw.astype("<u8")
    if legacy:
        words = (words << np.uint64(32)) | (words >> np.uint64(32))
    kind = (words >> np.uint64(60)).astype(np.int64)
    bad = ~np.isin(kind, KNOWN)
    if bad.any():
        k = int(np.argmax(bad))
        n = state.words + k
        raise ValueError(f"word {n} (byte {n * WORD_BYTES} after the header) has the reserved "
                         f"EVT 2.1 type {kind[k]:#x}")
    high = _time_high(words, kind == TIME_HIGH, state)
    cd = (kind == CD_NEG) | (kind == CD_POS)
    state.skipped["trigger"] += int(np.count_nonzero(kind == EXT_TRIGGER))
    state.skipped["vendor"] += int(np.count_nonzero((kind == OTHERS) | (kind == CONTINUED)))
    state.words += len(words)
    w = words[cd]
    low = (w >> np.uint64(54)) & np.uint64(0x3F)
    base_x = ((w >> np.uint64(43)) & np.uint64(0x7FF)).astype(np.int64)
    row = ((w >> np.uint64(32)) & np.uint64(0x7FF)).astype(np.int64)
    valid = (w[:, None] >> _BITS) & np.uint64(1)
    word, bit = np.nonzero(valid)
    t = (high[cd][word] << np.uint64(6)) + low[word] + np.uint64(state.t0)
    return t, base_x[word] + bit, row[word], kind[cd][word] == CD_POS


def _time_high(words, is_high, state: Evt21State) -> np.ndarray:
    """Per word: the full time high part (wraps included) in force at that word."""
    value = ((words >> np.uint64(32)) & np.uint64(TIME_HIGH_WRAP - 1)).astype(np.int64)
    highs = value[is_high]
    previous = np.concatenate([[state.time_high if state.time_high is not None else 0],
                               highs[:-1]])
    wraps = state.wraps + np.cumsum(highs < previous)
    full = highs + wraps * TIME_HIGH_WRAP
    # Forward-fill: each word takes the latest TIME_HIGH at or before it.
    before = np.full(len(words), -1, np.int64)
    before[np.flatnonzero(is_high)] = np.arange(len(highs))
    before = np.maximum.accumulate(before) if len(before) else before
    carried = (state.time_high or 0) + state.wraps * TIME_HIGH_WRAP
    out = np.where(before >= 0, full[np.maximum(before, 0)] if len(full) else 0, carried)
    if len(highs):
        state.time_high, state.wraps = int(highs[-1]), int(wraps[-1])
    return out.astype(np.uint64)
