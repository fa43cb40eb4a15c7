"""Golden model of the plasticity unit: a LIF core that learns, bit-exact with `docs/plasticity.md`.

`PlasticCoreModel` is a `CoreModel` whose tick is followed by the learning step (neuron pass, axon
pass with synapse updates, epoch counter). Integer arithmetic only, vectorised over neurons and
axons; the stochastic-rounding LFSR is drawn in blocks (`spikefab.learning.LfsrStream`) and
consumed in exactly the gateware's order: axon ascending, then neuron ascending.
"""

from __future__ import annotations

import numpy as np

from spikefab.learning import (
    ERROR_ACC_WIDTH,
    FACTOR_WIDTH,
    TRACE_DECAY_BITS,
    TRACE_MAX,
    TRACE_WIDTH,
    FactorMode,
    LearnRegisters,
    LfsrStream,
    PostMode,
    PreMode,
    Reg,
    Region,
    bounds_word,
    check_register,
    plastic_config_error,
    region_width,
    split_bounds,
)
from spikefab.spec import CoreConfig, NeuronParams, saturate

from .lif import CoreModel, lif_update

__all__ = ["PlasticCoreModel"]


def _decay_trace(trace, decay, spikes, inc):
    """The trace update of the spec: min(255, floor(decay * trace / 2**8) + spike * inc)."""
    return np.minimum(TRACE_MAX, ((trace * decay) >> TRACE_DECAY_BITS) + spikes * inc)


class PlasticCoreModel(CoreModel):
    """A LIF core with the plasticity unit (see `docs/plasticity.md`).

    Learning state (int64 arrays): `mask` (A x N, 1 = plastic), pre trace `x` and pre spike `s_pre`
    (A), post trace `y`, accumulated factor `u`, host factor `h` and `target` (N); registers in
    `regs` (a `LearnRegisters`), the LFSR state in `lfsr.state`, the epoch counter `epoch`.
    `updates` counts synapse updates (consuming ones) and `rows` the rows swept, for benchmarks.
    """

    def __init__(self, cfg: CoreConfig | None = None, params: NeuronParams | None = None,
                 weights=None):
        cfg = cfg or CoreConfig()
        problem = plastic_config_error(cfg)
        if problem:
            raise ValueError(problem)
        super().__init__(cfg, params, weights)
        a, n = cfg.n_axons, cfg.n_neurons
        self.mask = np.zeros((a, n), dtype=bool)
        self.x = np.zeros(a, dtype=np.int64)
        self.s_pre = np.zeros(a, dtype=np.int64)
        self.y = np.zeros(n, dtype=np.int64)
        self.u = np.zeros(n, dtype=np.int64)
        self.h = np.zeros(n, dtype=np.int64)
        self.target = np.zeros(n, dtype=np.int64)
        self.regs = LearnRegisters()
        self.regs.w_min, self.regs.w_max = cfg.weight_range
        self.seed_lo, self.seed_hi = 1, 0
        self.lfsr = LfsrStream(1)
        self.epoch = 0
        self.updates = 0
        self.rows = 0

    # Configuration --------------------------------------------------------------------------

    def configure(self, **values):
        """Set registers by name (e.g. enable=1, shift=4, w_min=-8); raise ValueError if refused."""
        cfg = self.cfg
        if "w_min" in values or "w_max" in values:
            w_min = values.pop("w_min", self.regs.w_min)
            w_max = values.pop("w_max", self.regs.w_max)
            self.write_register(Reg.BOUNDS, bounds_word(cfg, w_min, w_max))
        for name, value in values.items():
            reg = Reg[name.upper()]
            word = int(value) & ((1 << 8) - 1) if reg == Reg.M_UNIT else int(value)
            if reg == Reg.M_UNIT and not -128 < int(value) < 128:
                raise ValueError(f"m_unit must be in -127..127, not {value}")
            self.write_register(reg, word)

    def seed(self, value: int):
        """Load the LFSR with a nonzero 32-bit seed (writes SEED_LO, then SEED_HI)."""
        self.write_register(Reg.SEED_LO, value & 0xFFFF)
        self.write_register(Reg.SEED_HI, value >> 16)

    def write_register(self, reg: int, word: int):
        """Write a register word as the config port does; raise ValueError if it is refused."""
        if not check_register(self.cfg, reg, word, self.seed_lo):
            raise ValueError(f"register {reg} refuses {word:#x}")
        reg, regs = Reg(reg), self.regs
        if reg == Reg.BOUNDS:
            regs.w_min, regs.w_max = split_bounds(self.cfg, word)
        elif reg == Reg.M_UNIT:
            regs.m_unit = word - 256 if word >= 128 else word
        elif reg == Reg.SEED_LO:
            self.seed_lo = word
        elif reg == Reg.SEED_HI:
            self.seed_hi = word
            self.lfsr.state = word << 16 | self.seed_lo
        else:
            setattr(regs, reg.name.lower(), word)
            if reg == Reg.PERIOD:
                self.epoch = 0

    def read_register(self, reg: int) -> int:
        reg, regs = Reg(reg), self.regs
        if reg == Reg.BOUNDS:
            return bounds_word(self.cfg, regs.w_min, regs.w_max)
        if reg == Reg.M_UNIT:
            return regs.m_unit & 0xFF
        if reg == Reg.SEED_LO:
            return self.seed_lo
        if reg == Reg.SEED_HI:
            return self.seed_hi
        if reg == Reg.LFSR_LO:
            return self.lfsr.state & 0xFFFF
        if reg == Reg.LFSR_HI:
            return self.lfsr.state >> 16
        if reg == Reg.EPOCH:
            return self.epoch
        return int(getattr(regs, reg.name.lower()))

    def set_mask(self, mask):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask must have shape {self.mask.shape}, not {mask.shape}")
        self.mask = mask.copy()

    def set_factors(self, factors):
        """Set the host factors h_i of the coming step (FACTOR_MODE HOST), signed 8 bits."""
        factors = np.asarray(factors, dtype=np.int64)
        lo, hi = -(1 << (FACTOR_WIDTH - 1)), (1 << (FACTOR_WIDTH - 1)) - 1
        if factors.shape != self.h.shape or (factors.size and (factors.min() < lo or
                                                               factors.max() > hi)):
            raise ValueError(f"factors must have shape {self.h.shape} and values in {lo}..{hi}")
        self.h = factors.copy()

    def set_targets(self, neurons):
        """Mark `neurons` as target spikes of the coming step (FACTOR_MODE ERROR)."""
        neurons = np.asarray(neurons, dtype=np.int64)
        if neurons.size and (neurons.min() < 0 or neurons.max() >= self.cfg.n_neurons):
            raise ValueError("target neuron out of range")
        self.target[neurons] = 1

    def read_region(self, region: int, index: int) -> int:
        """Read a LEARN config word (region, index) as the gateware returns it."""
        k = self.cfg.weights_per_word
        region = Region(region)
        if region == Region.REGISTERS:
            return self.read_register(index)
        if region == Region.MASK:
            axon, word = self._split_word(index)
            return sum(int(self.mask[axon, word * k + lane]) << lane for lane in range(k))
        if region == Region.FACTOR:
            return int(self.h[index]) & 0xFF
        if region == Region.TARGET:
            return int(self.target[index])
        if region == Region.PRE_TRACE:
            return int(self.x[index]) | int(self.s_pre[index]) << TRACE_WIDTH
        if region == Region.POST_TRACE:
            return int(self.y[index])
        return int(self.u[index]) & ((1 << ERROR_ACC_WIDTH) - 1)

    def write_region(self, region: int, index: int, word: int):
        """Write a LEARN config word (region, index) as the config port does (REGISTERS through
        `write_register`); raise ValueError if the port would refuse it."""
        region = Region(region)
        if region == Region.REGISTERS:
            self.write_register(index, word)
            return
        depth = self.cfg.n_axons if region == Region.PRE_TRACE else self.cfg.n_neurons
        if word >> region_width(self.cfg, region) or (region != Region.MASK and
                                                      not 0 <= index < depth):
            raise ValueError(f"LEARN region {region.name} refuses {word:#x} at {index}")
        if region == Region.MASK:
            axon, slot = self._split_word(index)
            k = self.cfg.weights_per_word
            if axon >= self.cfg.n_axons or slot >= self.cfg.words_per_axon:
                raise ValueError(f"no synapse word {index}")
            for lane in range(k):
                self.mask[axon, slot * k + lane] = bool(word >> lane & 1)
        elif region == Region.FACTOR:
            self.h[index] = word - (word >> (FACTOR_WIDTH - 1) << FACTOR_WIDTH)
        elif region == Region.TARGET:
            self.target[index] = word
        elif region == Region.PRE_TRACE:
            self.x[index], self.s_pre[index] = word & TRACE_MAX, word >> TRACE_WIDTH
        elif region == Region.POST_TRACE:
            self.y[index] = word
        else:
            self.u[index] = word - (word >> (ERROR_ACC_WIDTH - 1) << ERROR_ACC_WIDTH)

    def _split_word(self, index: int) -> tuple[int, int]:
        word_bits = (self.cfg.words_per_axon - 1).bit_length()
        return index >> word_bits, index & ((1 << word_bits) - 1)

    def clear(self):
        """What CLEAR does to the learning state (the LIF state is cleared by the caller)."""
        for array in (self.x, self.s_pre, self.y, self.u, self.h, self.target):
            array[:] = 0
        self.epoch = 0

    # Time step ------------------------------------------------------------------------------

    def _accepted(self, axons):
        if self.regs.enable:
            self.s_pre[np.asarray(axons, dtype=np.int64)] = 1

    def tick(self) -> np.ndarray:
        """Update every neuron, then run the learning step if enabled; return the spike ids."""
        self.v, self.i, self.ref, spike, v_sum, refractory = lif_update(
            self.cfg, self.params, self.v, self.i, self.ref, self.acc, detail=True)
        if self.regs.enable:
            self._learn(spike.astype(np.int64), v_sum, refractory)
        self.acc = np.zeros_like(self.acc)
        self.events_this_step = 0
        self.step += 1
        return np.flatnonzero(spike)

    def run(self, raster) -> np.ndarray:
        """Run one step per row of `raster` (T x A event counts); return spikes as bool T x N."""
        raster = np.asarray(raster)
        if raster.ndim != 2 or raster.shape[1] != self.cfg.n_axons:
            raise ValueError(f"raster must have shape (T, {self.cfg.n_axons}), not {raster.shape}")
        spikes = np.zeros((len(raster), self.cfg.n_neurons), dtype=bool)
        for t, row in enumerate(raster):
            self.events(np.repeat(np.arange(self.cfg.n_axons), row))
            spikes[t, self.tick()] = True
        return spikes

    def neuron_factors(self, s_post, v_sum, refractory):
        """Neuron pass: update y, u, h, target; return (P, D, apply-step flag)."""
        regs = self.regs
        self.y = _decay_trace(self.y, regs.y_decay, s_post, regs.y_inc)
        if regs.factor_mode == FactorMode.ONE:
            m_raw = np.full_like(self.u, regs.m_unit)
        elif regs.factor_mode == FactorMode.HOST:
            m_raw = self.h
        else:
            m_raw = regs.m_unit * (self.target - s_post)
        self.u = saturate(self.u + m_raw, ERROR_ACC_WIDTH)
        apply_step = self.epoch == regs.period - 1
        applies = apply_step & (np.abs(self.u) >= regs.threshold)
        m = np.where(applies, saturate(self.u, FACTOR_WIDTH), 0)
        self.u = np.where(applies, 0, self.u)
        if regs.post_mode == PostMode.SURROGATE:
            post = (~refractory & (np.abs(v_sum - self.params.threshold) <= regs.window))
        elif regs.post_mode == PostMode.SPIKE:
            post = s_post
        else:
            post = self.y
        p = m * post.astype(np.int64)
        d = m * self.y if regs.depression else np.zeros_like(m)
        self.h = np.zeros_like(self.h)
        self.target = np.zeros_like(self.target)
        return p, d, apply_step

    def _learn(self, s_post, v_sum, refractory):
        regs = self.regs
        p, d, apply_step = self.neuron_factors(s_post, v_sum, refractory)
        s_pre = self.s_pre
        self.x = _decay_trace(self.x, regs.x_decay, s_pre, regs.x_inc)
        pre = self.x if regs.pre_mode == PreMode.TRACE else s_pre
        self.s_pre = np.zeros_like(s_pre)
        self.epoch = 0 if self.epoch == regs.period - 1 else self.epoch + 1
        if not apply_step or not (p.any() or d.any()):
            return
        active = (pre != 0) | ((s_pre != 0) & bool(regs.depression))
        rows = np.flatnonzero(active)
        self.rows += rows.size
        if not rows.size:
            return
        q = pre[rows, None] * p[None, :] - s_pre[rows, None] * d[None, :]
        consume = (q != 0) & self.mask[rows]
        count = int(np.count_nonzero(consume))
        if not count:
            return
        self.updates += count
        r = self.lfsr.draw(count) & ((1 << regs.shift) - 1)
        delta = (q[consume] + r) >> regs.shift       # int64 >> is floor division by 2**shift
        block = self.weights[rows]
        block[consume] = np.clip(block[consume] + delta, regs.w_min, regs.w_max)
        self.weights[rows] = block
