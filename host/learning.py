"""Host side of on-chip learning: rules, masks, third factors, targets and read-back, as arrays.

Every function takes a `ChipClient` (any transport: the golden model, the simulated board, a
board) and a plastic core's index, and speaks WRITE_LEARN / READ_LEARN / the weight requests of
`docs/protocol.md`. The chip checks each request whole before it changes anything, so a refused
request (`ChipError`, e.g. NOT_PLASTIC or BAD_VALUE) leaves the core as it was.

    configure_rule(client, 0, "stdp", m_unit=3, shift=4, x_decay=200, x_inc=60, seed=7)
    write_mask(client, 0, mask)                  # (A, N) bool, True = plastic
    for t in range(steps):
        client.input(ids[t])
        send_targets(client, 0, targets[t])      # FACTOR_MODE ERROR: who should spike now
        client.tick()
    weights = read_weight_matrix(client, 0)      # (A, N) signed
"""

from __future__ import annotations

import numpy as np

from spikefab import protocol as P
from spikefab.learning import (
    ERROR_ACC_WIDTH,
    FACTOR_WIDTH,
    TRACE_MAX,
    TRACE_WIDTH,
    Reg,
    Region,
    rule_registers,
)
from spikefab.spec import pack_weight_word, unpack_weight_word

from .link import ChipError

__all__ = ["configure_rule", "read_rule", "write_mask", "read_mask", "send_factors",
           "send_targets", "read_traces", "write_weight_matrix", "read_weight_matrix",
           "plastic_cores"]


def plastic_cores(client) -> tuple[int, ...]:
    """Probe which cores are plastic (one READ_LEARN per core; none on a chip without
    plastic cores, which answers UNKNOWN_OP)."""
    found = []
    for core in range(client.config.n_cores):
        try:
            client.read_learn(core, Region.REGISTERS, Reg.ENABLE, 1)
        except ChipError as exc:
            if exc.status == P.Status.UNKNOWN_OP:
                return ()
            if exc.status != P.Status.NOT_PLASTIC:
                raise
            continue
        found.append(core)
    return tuple(found)


def configure_rule(client, core: int, rule: str | None = None, *, seed: int | None = None,
                   **values):
    """Set every learning register of `core` in one request: preset `rule`
    (`spikefab.learning.RULES`) overridden by `values` (LearnRegisters fields; enable=1
    unless given), and the LFSR seed if `seed` is given. See `rule_registers`."""
    client.write_learn(core, Region.REGISTERS, 0, rule_registers(client.config.core, rule,
                                                                  seed=seed, **values))


def read_rule(client, core: int) -> dict[str, int]:
    """Every learning register of `core` by name (raw words: M_UNIT and BOUNDS packed)."""
    words = client.read_learn(core, Region.REGISTERS, 0, len(Reg))
    return {reg.name.lower(): word for reg, word in zip(Reg, words)}


def _word_addresses(cfg):
    """Synapse word addresses of every axon's row, row by row."""
    word_bits = (cfg.words_per_axon - 1).bit_length()
    return [(axon << word_bits) for axon in range(cfg.n_axons)]


def _write_rows(write, cfg, words_per_row):
    """Write rows of words; rows are contiguous when N/K is a power of two (one request)."""
    if cfg.words_per_axon & (cfg.words_per_axon - 1) == 0:
        write(0, [w for row in words_per_row for w in row])
    else:
        for first, row in zip(_word_addresses(cfg), words_per_row):
            write(first, row)


def _read_rows(read, cfg):
    words = cfg.words_per_axon
    if words & (words - 1) == 0:
        flat = read(0, cfg.n_axons * words)
        return [flat[a * words:(a + 1) * words] for a in range(cfg.n_axons)]
    return [read(first, words) for first in _word_addresses(cfg)]


def write_mask(client, core: int, mask):
    """Set the plastic mask of `core`: (A, N) bools, True = plastic."""
    cfg = client.config.core
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (cfg.n_axons, cfg.n_neurons):
        raise ValueError(f"mask must have shape {(cfg.n_axons, cfg.n_neurons)}, "
                         f"not {mask.shape}")
    k = cfg.weights_per_word
    lanes = 1 << np.arange(k)
    rows = [[int(mask[a, j * k:(j + 1) * k] @ lanes) for j in range(cfg.words_per_axon)]
            for a in range(cfg.n_axons)]
    _write_rows(lambda first, words: client.write_learn(core, Region.MASK, first, words),
                cfg, rows)


def read_mask(client, core: int) -> np.ndarray:
    cfg = client.config.core
    rows = _read_rows(lambda first, n: client.read_learn(core, Region.MASK, first, n), cfg)
    k = cfg.weights_per_word
    return np.array([[bool(w >> lane & 1) for w in row for lane in range(k)] for row in rows],
                    dtype=bool)


def send_factors(client, core: int, factors, first: int = 0):
    """Set the host third factors h_i (signed 8 bits) of neurons first, first + 1, ... for
    the coming step (FACTOR_MODE HOST); the step's learning consumes them."""
    factors = np.asarray(factors, dtype=np.int64).ravel()
    lo, hi = -(1 << (FACTOR_WIDTH - 1)), (1 << (FACTOR_WIDTH - 1)) - 1
    if factors.size and (factors.min() < lo or factors.max() > hi):
        raise ValueError(f"third factors must be in {lo}..{hi}")
    client.write_learn(core, Region.FACTOR, first, factors & ((1 << FACTOR_WIDTH) - 1))


def send_targets(client, core: int, neurons):
    """Mark `neurons` as target spikes of the coming step (FACTOR_MODE ERROR): one request
    writing the target bits of the range they span (1 for the listed neurons, 0 for the
    others in the range). Nothing is sent for an empty list."""
    neurons = np.unique(np.asarray(neurons, dtype=np.int64).ravel())
    if not neurons.size:
        return
    first = int(neurons[0])
    bits = np.zeros(int(neurons[-1]) - first + 1, dtype=np.int64)
    bits[neurons - first] = 1
    client.write_learn(core, Region.TARGET, first, bits)


def read_traces(client, core: int) -> dict[str, np.ndarray]:
    """The learning state of `core`: pre traces `x` and pre spikes `s_pre` (per axon), post
    traces `y` and accumulated factors `u` (per neuron)."""
    cfg = client.config.core
    pre = np.array(client.read_learn(core, Region.PRE_TRACE, 0, cfg.n_axons), dtype=np.int64)
    y = np.array(client.read_learn(core, Region.POST_TRACE, 0, cfg.n_neurons), dtype=np.int64)
    u = np.array(client.read_learn(core, Region.ERROR_ACC, 0, cfg.n_neurons), dtype=np.int64)
    u -= (u >> (ERROR_ACC_WIDTH - 1)) << ERROR_ACC_WIDTH
    return {"x": pre & TRACE_MAX, "s_pre": pre >> TRACE_WIDTH, "y": y, "u": u}


def write_weight_matrix(client, core: int, weights):
    """Write the (A, N) weight matrix of `core`."""
    cfg = client.config.core
    weights = np.asarray(weights, dtype=np.int64)
    if weights.shape != (cfg.n_axons, cfg.n_neurons):
        raise ValueError(f"weights must have shape {(cfg.n_axons, cfg.n_neurons)}, "
                         f"not {weights.shape}")
    k = cfg.weights_per_word
    rows = [[pack_weight_word(cfg, row[j * k:(j + 1) * k]) for j in range(cfg.words_per_axon)]
            for row in weights]
    _write_rows(lambda first, words: client.write_weights(core, first, words), cfg, rows)


def read_weight_matrix(client, core: int) -> np.ndarray:
    """Read the (A, N) weight matrix of `core` (signed)."""
    cfg = client.config.core
    rows = _read_rows(lambda first, n: client.read_weights(core, first, n), cfg)
    return np.array([[w for word in row for w in unpack_weight_word(cfg, word)]
                     for row in rows], dtype=np.int64)
