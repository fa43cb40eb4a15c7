"""The numeric specification of on-chip plasticity, shared by the golden model and the gateware.

`docs/plasticity.md` is the prose version: widths, the register map, the config regions and the
stochastic-rounding LFSR.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .spec import CoreConfig

__all__ = [
    "TRACE_WIDTH", "TRACE_MAX", "TRACE_DECAY_BITS", "FACTOR_WIDTH", "ERROR_ACC_WIDTH",
    "NEURON_FACTOR_WIDTH", "Q_WIDTH", "MAX_SHIFT", "LFSR_WIDTH", "LFSR_TOGGLE", "LFSR_JUMP",
    "REGION_SHIFT", "Region", "Reg", "PreMode", "PostMode", "FactorMode", "LearnRegisters",
    "lfsr_step", "lfsr_jump", "LfsrStream", "split_bounds", "bounds_word", "READ_ONLY",
    "register_width", "check_register", "plastic_config_error", "region_width", "RULES",
    "rule_registers",
]

TRACE_WIDTH = 8                  #: unsigned pre and post traces
TRACE_MAX = (1 << TRACE_WIDTH) - 1
TRACE_DECAY_BITS = 8             #: trace decays are integers over 2**8, 0..256
FACTOR_WIDTH = 8                 #: signed third factor m_i and host factor h_i
ERROR_ACC_WIDTH = 16             #: signed accumulated factor u_i
NEURON_FACTOR_WIDTH = 16         #: signed P_i = m_i * post_i and D_i = m_i * y_i (exact)
Q_WIDTH = 25                     #: signed q_ij = P_i * pre_j - D_i * s_j (exact)
MAX_SHIFT = 24                   #: rounding shift 0..24
LFSR_WIDTH = 32
LFSR_TOGGLE = 0x80200003         #: Galois, right shift: x^32 + x^22 + x^2 + x + 1 (maximal)
LFSR_JUMP = 24                   #: LFSR steps per consuming synapse update
REGION_SHIFT = 20                #: config address = region << 20 | index


class Region(IntEnum):
    """Regions of the LEARN config space (the top bits of the config address)."""
    REGISTERS = 0
    MASK = 1
    FACTOR = 2
    TARGET = 3
    PRE_TRACE = 4
    POST_TRACE = 5
    ERROR_ACC = 6


class Reg(IntEnum):
    """Run-time learning registers (region REGISTERS)."""
    ENABLE = 0
    PRE_MODE = 1
    POST_MODE = 2
    FACTOR_MODE = 3
    DEPRESSION = 4
    M_UNIT = 5
    SHIFT = 6
    BOUNDS = 7
    X_DECAY = 8
    X_INC = 9
    Y_DECAY = 10
    Y_INC = 11
    WINDOW = 12
    THRESHOLD = 13
    PERIOD = 14
    SEED_LO = 15
    SEED_HI = 16
    LFSR_LO = 17
    LFSR_HI = 18
    EPOCH = 19


READ_ONLY = (Reg.LFSR_LO, Reg.LFSR_HI, Reg.EPOCH)


class PreMode(IntEnum):
    TRACE = 0
    SPIKE = 1


class PostMode(IntEnum):
    SURROGATE = 0
    SPIKE = 1
    TRACE = 2


class FactorMode(IntEnum):
    ONE = 0
    HOST = 1
    ERROR = 2


def register_width(cfg: CoreConfig, reg: Reg) -> int:
    """Width in bits of register `reg`'s data."""
    return {
        Reg.ENABLE: 1, Reg.PRE_MODE: 1, Reg.POST_MODE: 2, Reg.FACTOR_MODE: 2, Reg.DEPRESSION: 1,
        Reg.M_UNIT: FACTOR_WIDTH, Reg.SHIFT: 5, Reg.BOUNDS: 2 * cfg.weight_width,
        Reg.X_DECAY: TRACE_DECAY_BITS + 1, Reg.X_INC: TRACE_WIDTH,
        Reg.Y_DECAY: TRACE_DECAY_BITS + 1, Reg.Y_INC: TRACE_WIDTH,
        Reg.WINDOW: cfg.voltage_width - 1, Reg.THRESHOLD: ERROR_ACC_WIDTH - 1, Reg.PERIOD: 8,
        Reg.SEED_LO: 16, Reg.SEED_HI: 16, Reg.LFSR_LO: 16, Reg.LFSR_HI: 16, Reg.EPOCH: 8,
    }[Reg(reg)]


def region_width(cfg: CoreConfig, region: int) -> int:
    """Width in bits of a data word of LEARN region `region` other than REGISTERS (whose
    widths are per register, `register_width`); a wider word is refused."""
    return {Region.MASK: cfg.weights_per_word, Region.FACTOR: FACTOR_WIDTH, Region.TARGET: 1,
            Region.PRE_TRACE: TRACE_WIDTH + 1, Region.POST_TRACE: TRACE_WIDTH,
            Region.ERROR_ACC: ERROR_ACC_WIDTH}[Region(region)]


def _signed(value: int, width: int) -> int:
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def split_bounds(cfg: CoreConfig, word: int) -> tuple[int, int]:
    """Return (w_min, w_max) of a BOUNDS register word."""
    w = cfg.weight_width
    return _signed(word, w), _signed(word >> w, w)


def bounds_word(cfg: CoreConfig, w_min: int, w_max: int) -> int:
    w = cfg.weight_width
    mask = (1 << w) - 1
    return (w_min & mask) | ((w_max & mask) << w)


def check_register(cfg: CoreConfig, reg: int, word: int, seed_lo: int = 0) -> bool:
    """Whether writing `word` to register index `reg` is allowed (see the register table)."""
    if not 0 <= reg < len(Reg) or Reg(reg) in READ_ONLY:
        return False
    reg = Reg(reg)
    if word >> register_width(cfg, reg):
        return False
    if reg in (Reg.POST_MODE, Reg.FACTOR_MODE):
        return word != 3
    if reg == Reg.M_UNIT:
        return word != 0x80
    if reg == Reg.SHIFT:
        return word <= MAX_SHIFT
    if reg == Reg.BOUNDS:
        w_min, w_max = split_bounds(cfg, word)
        return w_min <= w_max
    if reg in (Reg.X_DECAY, Reg.Y_DECAY):
        return word <= 1 << TRACE_DECAY_BITS
    if reg == Reg.PERIOD:
        return word != 0
    if reg == Reg.SEED_HI:
        return (word << 16 | seed_lo) != 0
    return True


def plastic_config_error(cfg: CoreConfig) -> str | None:
    """Why a core with this configuration cannot be plastic, or None if it can."""
    word_bits = (cfg.words_per_axon - 1).bit_length()
    if cfg.n_axons << word_bits > 1 << REGION_SHIFT:
        return "a plastic core needs at most 2**20 synapse-memory addresses"
    if max(cfg.n_axons, cfg.n_neurons) > 1 << REGION_SHIFT:
        return "too many neurons or axons"
    if cfg.weight_width > 16:
        return "weights wider than 16 bits"
    return None


@dataclass
class LearnRegisters:
    """The register values, as Python ints (power-up values by default)."""
    enable: int = 0
    pre_mode: int = PreMode.TRACE
    post_mode: int = PostMode.SURROGATE
    factor_mode: int = FactorMode.ONE
    depression: int = 0
    m_unit: int = 0
    shift: int = 0
    w_min: int | None = None     #: None: the weight range's minimum
    w_max: int | None = None
    x_decay: int = 0
    x_inc: int = 0
    y_decay: int = 0
    y_inc: int = 0
    window: int = 0
    threshold: int = 0
    period: int = 1


# LFSR -------------------------------------------------------------------------------------------

def lfsr_step(state: int) -> int:
    """Advance the Galois LFSR by one step."""
    out = state & 1
    state >>= 1
    return state ^ LFSR_TOGGLE if out else state


def lfsr_jump(state: int, steps: int = LFSR_JUMP) -> int:
    for _ in range(steps):
        state = lfsr_step(state)
    return state


def _jump_matrix_columns(steps: int) -> list[int]:
    """Column b of the GF(2) matrix of `steps` LFSR steps is the image of basis vector 2**b."""
    return [lfsr_jump(1 << b, steps) for b in range(LFSR_WIDTH)]


_JUMP_POWERS = None


def _jump_powers(block: int) -> np.ndarray:
    """Bit matrices (rows: new state bits, columns: old) of 1..block jumps, (block, 32, 32)."""
    global _JUMP_POWERS
    if _JUMP_POWERS is None:
        cols = np.array(_jump_matrix_columns(LFSR_JUMP), dtype=np.int64)
        jump = (cols[None, :] >> np.arange(LFSR_WIDTH, dtype=np.int64)[:, None]) & 1
        powers = [jump]
        for _ in range(block - 1):
            powers.append(jump @ powers[-1] % 2)
        _JUMP_POWERS = np.stack(powers)
    return _JUMP_POWERS


class LfsrStream:
    """Vectorised LFSR: draw many consecutive jump states at once, bit-exact with `lfsr_jump`."""

    BLOCK = 1024

    def __init__(self, state: int = 1):
        self.state = state
        # float64 matrix products are exact here (sums of at most 32 ones; values < 2**32) and
        # use BLAS, which NumPy has no integer path for.
        powers = _jump_powers(self.BLOCK)
        self._powers = powers.reshape(-1, LFSR_WIDTH).astype(np.float64)   # (BLOCK*32, 32)
        self._weights = (1 << np.arange(LFSR_WIDTH, dtype=np.int64)).astype(np.float64)

    def draw(self, count: int) -> np.ndarray:
        """Return the next `count` states (each after one more 24-step jump) as int64."""
        out = np.empty(count, dtype=np.int64)
        done = 0
        while done < count:
            n = min(self.BLOCK, count - done)
            bits = ((self.state >> np.arange(LFSR_WIDTH, dtype=np.int64)) & 1).astype(np.float64)
            new_bits = (self._powers[:n * LFSR_WIDTH] @ bits).reshape(n, LFSR_WIDTH) % 2
            states = (new_bits @ self._weights).astype(np.int64)
            out[done:done + n] = states
            self.state = int(states[-1])
            done += n
        return out


# Named rules ------------------------------------------------------------------------------------

#: The rules of the literature as register presets (the table in `docs/plasticity.md`); the
#: numeric registers (rates, decays, window, bounds ...) are the caller's.
RULES = {
    "stdp": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE, factor_mode=FactorMode.ONE,
                 depression=1),
    "reward_stdp": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE,
                        factor_mode=FactorMode.HOST, depression=1),
    "superspike": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SURROGATE,
                       factor_mode=FactorMode.HOST, depression=0),
    "decolle": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SURROGATE,
                    factor_mode=FactorMode.ERROR, depression=0),
    "delta": dict(pre_mode=PreMode.SPIKE, post_mode=PostMode.SPIKE,
                  factor_mode=FactorMode.ERROR, depression=0),
}


def rule_registers(cfg: CoreConfig, rule: str | None = None, *, seed: int | None = None,
                   **values) -> list[int]:
    """Return the words of registers ENABLE (0) .. PERIOD (14), or .. SEED_HI (16) with a
    `seed`, for rule preset `rule` (a key of `RULES`, or None) overridden by `values`.

    `values` are `LearnRegisters` fields (m_unit signed, w_min/w_max signed weights, enable
    defaults to 1); every register not named takes its power-up value, so the words define
    the rule completely. Raises ValueError naming a refused value.
    """
    if rule is not None and rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; known: {', '.join(RULES)}")
    fields = set(LearnRegisters.__dataclass_fields__)
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"unknown learning registers: {', '.join(sorted(unknown))}")
    regs = LearnRegisters(enable=1, **RULES.get(rule, {}))
    for name, value in values.items():
        setattr(regs, name, value)
    lo, hi = cfg.weight_range
    w_min = lo if regs.w_min is None else regs.w_min
    w_max = hi if regs.w_max is None else regs.w_max
    if not lo <= w_min <= w_max <= hi:
        raise ValueError(f"bounds must satisfy {lo} <= w_min <= w_max <= {hi}, "
                         f"not {w_min}, {w_max}")
    if not -128 < regs.m_unit < 128:
        raise ValueError(f"m_unit must be in -127..127, not {regs.m_unit}")
    words = []
    for reg in Reg:
        if reg > Reg.PERIOD:
            break
        if reg == Reg.BOUNDS:
            word = bounds_word(cfg, w_min, w_max)
        elif reg == Reg.M_UNIT:
            word = int(regs.m_unit) & 0xFF
        else:
            word = int(getattr(regs, reg.name.lower()))
        if word < 0 or not check_register(cfg, reg, word):
            raise ValueError(f"learning register {reg.name} refuses {word}")
        words.append(word)
    if seed is not None:
        if not 0 < seed < 1 << LFSR_WIDTH:
            raise ValueError(f"seed must be in 1..2**32-1, not {seed}")
        words += [seed & 0xFFFF, seed >> 16]
    return words
