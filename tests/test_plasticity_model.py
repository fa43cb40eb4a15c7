"""The plasticity golden model against hand-computed cases of `docs/plasticity.md`."""

import numpy as np
import pytest

from spikefab.learning import (
    LFSR_JUMP,
    LFSR_TOGGLE,
    LFSR_WIDTH,
    FactorMode,
    LfsrStream,
    PostMode,
    PreMode,
    Reg,
    lfsr_jump,
    lfsr_step,
)
from spikefab.sim.plasticity import PlasticCoreModel
from spikefab.spec import CoreConfig, NeuronParams

CFG = CoreConfig(n_neurons=4, n_axons=3, weights_per_word=2)


def _gf2_matrix_power(columns, exponent):
    """Columns (ints) of M**exponent for a GF(2) matrix given by its columns."""
    def apply(matrix, vector):
        result, bit = 0, 0
        while vector:
            if vector & 1:
                result ^= matrix[bit]
            vector >>= 1
            bit += 1
        return result
    result = [1 << b for b in range(LFSR_WIDTH)]
    while exponent:
        if exponent & 1:
            result = [apply(columns, c) for c in result]
        columns = [apply(columns, c) for c in columns]
        exponent >>= 1
    return result


def test_lfsr_has_maximal_period():
    """The step matrix has order exactly 2**32 - 1 (prime factors 3, 5, 17, 257, 65537)."""
    step = [lfsr_step(1 << b) for b in range(LFSR_WIDTH)]
    identity = [1 << b for b in range(LFSR_WIDTH)]
    order = (1 << 32) - 1
    assert _gf2_matrix_power(step, order) == identity
    for prime in (3, 5, 17, 257, 65537):
        assert _gf2_matrix_power(step, order // prime) != identity, prime


def test_lfsr_step_by_hand():
    assert lfsr_step(1) == LFSR_TOGGLE          # the output bit was 1: shift, then toggle
    assert lfsr_step(2) == 1
    assert lfsr_step(0x80000000) == 0x40000000
    assert lfsr_jump(1, 2) == lfsr_step(LFSR_TOGGLE) == (LFSR_TOGGLE >> 1) ^ LFSR_TOGGLE


def test_vectorised_lfsr_equals_the_step_definition():
    seed = 0x1234ABCD
    stream = LfsrStream(seed)
    drawn = list(stream.draw(1500)) + list(stream.draw(30))
    state, expected = seed, []
    for _ in range(1530):
        state = lfsr_jump(state, LFSR_JUMP)
        expected.append(state)
    assert drawn == expected
    assert stream.state == state


def plastic(weights=None, **regs):
    params = NeuronParams.uniform(CFG, beta=0, threshold=100)
    model = PlasticCoreModel(CFG, params, weights if weights is not None else np.zeros((3, 4)))
    model.set_mask(np.ones((3, 4), dtype=bool))
    model.configure(enable=1, **regs)
    return model


def test_traces_decay_jump_and_saturate():
    model = plastic(x_decay=128, x_inc=100, y_decay=256, y_inc=200)
    model.event(0)
    model.event(0)          # two events on one axon: still one pre spike
    model.event(2)
    model.tick()
    assert list(model.x) == [100, 0, 100]
    model.event(0)
    model.tick()
    assert list(model.x) == [min(255, 50 + 100), 0, 50]
    model.tick()
    assert list(model.x) == [75, 0, 25]
    # y: neuron 1 spikes every step (weight 101 > threshold 100), no decay: 200, then 255.
    model.set_weights([[0, 101, 0, 0]] * 3)
    model.event(1)
    model.tick()
    assert list(model.y) == [0, 200, 0, 0]
    model.event(1)
    model.tick()
    assert list(model.y) == [0, 255, 0, 0]


def test_pair_stdp_by_hand_with_exact_rounding():
    """shift 0 (no rounding): potentiation M*x at a post spike, depression M*y at a pre spike."""
    weights = np.zeros((3, 4), dtype=np.int64)
    weights[1, 2] = 101          # axon 1 makes neuron 2 fire
    model = plastic(weights, pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE,
                    factor_mode=FactorMode.ONE, depression=1, m_unit=1, x_decay=128, x_inc=20,
                    y_decay=128, y_inc=30, shift=0)
    model.event(0)               # step 0: pre spike on axon 0; no post spike
    model.tick()
    # y = 0 everywhere: depression D*s = 0; no post spike: no potentiation.
    assert model.weights[0].tolist() == [0, 0, 0, 0]
    model.event(1)               # step 1: neuron 2 fires; x0 = 10, x1 = 20
    model.tick()
    # Potentiation of neuron 2 from every axon by x_j: axon 0 +10, axon 1 +20 then
    # depression on axon 1 (pre spike) by M*y_2 = 30: 101 + 20 - 30.
    assert model.weights[:, 2].tolist() == [10, 91, 0]
    assert model.weights[:, [0, 1, 3]].tolist() == [[0, 0, 0]] * 3
    model.event(0)               # step 2: pre spike on axon 0 after the post spike
    model.tick()
    # y_2 = 15: depression of synapse 0->2 by 15; x0 = 5 + 20 but no post spike.
    assert model.weights[:, 2].tolist() == [10 - 15, 91, 0]


def test_stochastic_rounding_uses_24_lfsr_steps_per_consuming_update():
    """Two consuming updates (neurons 1, 3 of axon 0), q = 5 * 7 each, shift 3."""
    model = plastic(pre_mode=PreMode.SPIKE, post_mode=PostMode.TRACE,
                    factor_mode=FactorMode.HOST, y_decay=256, shift=3)
    model.seed(0xDEADBEEF)
    model.y[:] = [0, 7, 0, 7]
    model.set_factors([3, 5, 0, 5])    # neuron 0 has post 0: q = 0, consumes nothing
    model.event(0)
    model.tick()
    r1 = lfsr_jump(0xDEADBEEF) & 7
    r2 = lfsr_jump(lfsr_jump(0xDEADBEEF)) & 7
    assert model.weights[0].tolist() == [0, (35 + r1) >> 3, 0, (35 + r2) >> 3]
    assert model.lfsr.state == lfsr_jump(lfsr_jump(0xDEADBEEF))
    assert model.h.tolist() == [0, 0, 0, 0]       # one-shot
    model.tick()                                  # nothing written: nothing consumed
    assert model.lfsr.state == lfsr_jump(lfsr_jump(0xDEADBEEF))


def test_negative_updates_round_down_stochastically_and_unbiased():
    cfg = CoreConfig(n_neurons=64, n_axons=64, weights_per_word=2, weight_width=16)
    model = PlasticCoreModel(cfg, NeuronParams.uniform(cfg, beta=0, threshold=100))
    model.set_mask(np.ones((64, 64), dtype=bool))
    model.configure(enable=1, pre_mode=PreMode.SPIKE, post_mode=PostMode.TRACE,
                    factor_mode=FactorMode.HOST, y_decay=256, shift=4)
    model.y[:] = 1
    for _ in range(20):
        model.set_factors(np.full(64, -3))
        model.events(np.arange(64))
        model.tick()
    # E[dw] = -3/16 per step: -3.75 per synapse after 20 steps; floor keeps it within [-20, 0].
    mean = model.weights.mean()
    assert -3.75 - 0.2 < mean < -3.75 + 0.2, mean
    assert model.weights.min() >= -20 and model.weights.max() <= 0


def test_mask_bounds_and_counted_consumption():
    model = plastic(pre_mode=PreMode.SPIKE, post_mode=PostMode.SPIKE,
                    factor_mode=FactorMode.ONE, m_unit=100, shift=0, w_min=-5, w_max=60)
    model.set_weights([[101, 101, 101, 101], [0, 0, 0, 0], [-50, -50, -50, -50]])
    mask = np.ones((3, 4), dtype=bool)
    mask[0, 1] = mask[2, 3] = False
    model.set_mask(mask)
    state = model.lfsr.state
    model.events([0, 2])                 # sum 51 <= 100: no neuron fires
    model.tick()
    assert model.lfsr.state == state
    model.events([0])                    # 101 > 100: all fire, axon 0 spiked
    model.tick()
    # plastic synapses of axon 0 are clamped to w_max = 60; the fixed one keeps 101
    assert model.weights[0].tolist() == [60, 101, 60, 60]
    assert model.weights[2].tolist() == [-50] * 4    # axon 2 did not spike in this step
    assert model.lfsr.state == lfsr_jump(lfsr_jump(lfsr_jump(state)))


def test_error_mode_threshold_and_period():
    """ERROR: m_raw = M*(target - s); u accumulates; applied every 2nd step if |u| >= 3."""
    model = plastic(pre_mode=PreMode.SPIKE, post_mode=PostMode.SURROGATE,
                    factor_mode=FactorMode.ERROR, m_unit=2, window=1000, threshold=3, period=2,
                    shift=0)
    # surrogate window 1000 around threshold 100: every non-refractory neuron has post = 1
    for step in range(4):
        model.set_targets([0, 1])
        model.event(1)
        model.tick()
        if step == 0:
            assert model.u.tolist() == [2, 2, 0, 0] and model.weights[1].tolist() == [0] * 4
    # step 1 applies: u = 4 >= 3 -> m = 4, weights += 4 * 1 * 1 on axon 1 (spiked in step 1)
    # step 3 again: 4 more.
    assert model.weights[1].tolist() == [8, 8, 0, 0]
    assert model.u.tolist() == [0, 0, 0, 0]
    assert model.epoch == 0


def test_registers_refuse_bad_values():
    model = plastic()
    for reg, word in [(Reg.SHIFT, 25), (Reg.POST_MODE, 3), (Reg.FACTOR_MODE, 3),
                      (Reg.M_UNIT, 0x80), (Reg.X_DECAY, 257), (Reg.PERIOD, 0),
                      (Reg.LFSR_LO, 1), (Reg.BOUNDS, (5 & 0xFF) | ((4 & 0xFF) << 8)),
                      (99, 0)]:
        with pytest.raises(ValueError):
            model.write_register(reg, word)
    model.write_register(Reg.SEED_LO, 0)
    with pytest.raises(ValueError):
        model.write_register(Reg.SEED_HI, 0)


def test_disabled_learning_changes_nothing():
    model = plastic(pre_mode=PreMode.SPIKE, post_mode=PostMode.SPIKE, m_unit=5, x_inc=9)
    model.configure(enable=0)
    model.set_weights(np.full((3, 4), 101))
    for _ in range(5):
        model.events([0, 1])
        model.tick()
    assert (model.weights == 101).all() and not model.x.any() and not model.s_pre.any()
