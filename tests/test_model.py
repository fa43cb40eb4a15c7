"""Golden model against cases computed by hand from docs/numerics.md."""

import numpy as np
import pytest

from spikefab.host.networks import events_to_raster, poisson_events, random_params, random_weights
from spikefab.sim import CoreModel
from spikefab.spec import CoreConfig, NeuronParams, ResetMode, mul_decay

SMALL = CoreConfig(n_neurons=4, n_axons=4, weights_per_word=1)
HALF = SMALL.decay_one // 2  # beta = 0.5


def model_with(cfg=SMALL, **params):
    return CoreModel(cfg, NeuronParams.uniform(cfg, **params))


def test_plain_lif_integrates_leaks_and_fires():
    m = model_with(alpha=0, beta=HALF, threshold=100)
    m.weights[0, 0] = 60
    trace = []
    for _ in range(3):
        m.event(0)
        spikes = m.tick()
        trace.append((int(m.i[0]), int(m.v[0]), 0 in spikes))
    # V: 0*0.5+60=60; 60*0.5+60=90; 90*0.5+60=105 > 100 -> spike, reset to zero.
    assert trace == [(60, 60, False), (60, 90, False), (60, 0, True)]
    assert list(m.tick()) == [] and m.v[0] == 0 and m.i[0] == 0


def test_decay_rounds_toward_zero():
    assert list(mul_decay(np.array([-3, 3, -1, 1, 7]), HALF, SMALL.decay_width)) == [-1, 1, 0, 0, 3]
    m = model_with(beta=HALF, threshold=100)
    m.v[:] = [-3, 3, -101, 101]
    m.tick()
    assert list(m.v) == [-1, 1, -50, 50]


def test_threshold_exactly_reached_does_not_fire_one_above_does():
    m = model_with(alpha=0, beta=0, threshold=100)
    m.weights[0] = [100, 101, 99, 0]
    m.event(0)
    assert list(m.tick()) == [1]
    assert list(m.v) == [100, 0, 99, 0]


def test_subtract_reset_keeps_the_excess():
    m = model_with(alpha=0, beta=0, threshold=100, reset=ResetMode.SUBTRACT)
    m.weights[0, 0] = 127
    m.event(0)
    assert list(m.tick()) == [0] and m.v[0] == 27


def test_refractory_holds_v_and_blocks_spikes_while_current_integrates():
    m = model_with(alpha=HALF, beta=SMALL.decay_one, threshold=50, refractory=2,
                   reset=ResetMode.SUBTRACT)
    m.weights[0, 0] = 100
    log = []
    for _ in range(4):
        m.event(0)
        log.append((0 in m.tick(), int(m.v[0]), int(m.i[0]), int(m.ref[0])))
    # t0: I=100, V=100>50 spike -> V=50, ref=2.  t1,t2: held (V=50), I=50+100=150 then 175.
    # t3: I=87+100=187, V=50+187=237 > 50 -> spike -> V=187.
    assert log == [(True, 50, 100, 2), (False, 50, 150, 1), (False, 50, 175, 0),
                   (True, 187, 187, 2)]


def test_current_filter_and_bias_enter_the_current():
    m = model_with(alpha=HALF, beta=0, threshold=30000, bias=10)
    m.weights[0, 0] = 64
    m.event(0)
    m.tick()
    assert (m.i[0], m.v[0]) == (74, 74)     # I = 0 + 64 + 10; V = 0 + I
    m.tick()
    assert (m.i[0], m.v[0]) == (47, 47)     # I = 37 + 0 + 10
    assert (m.i[1], m.v[1]) == (15, 15)     # bias alone: 10 then 5 + 10


def test_saturation_of_current_and_membrane():
    cfg = CoreConfig(n_neurons=2, n_axons=1, weights_per_word=1, current_width=8,
                     voltage_width=10, weight_width=8)
    m = CoreModel(cfg, NeuronParams.uniform(cfg, alpha=cfg.decay_one, beta=cfg.decay_one,
                                            threshold=cfg.voltage_range[1]))
    m.weights[0] = [127, -128]
    for _ in range(10):
        m.event(0)
        m.tick()
    assert list(m.i) == [127, -128]           # I saturates at the 8-bit bounds
    assert list(m.v) == [511, -512]           # V saturates at the 10-bit bounds, never wraps


def test_bad_axon_and_step_overflow_are_counted_not_wrapped():
    cfg = SMALL.replace(max_events_per_step=2)
    m = CoreModel(cfg, NeuronParams.uniform(cfg, beta=0, threshold=1000))
    m.weights[1] = 1
    assert not m.event(4) and not m.event(-1) and m.dropped_bad_axon == 2
    assert m.events([1, 1, 1, 7]) == 2
    assert (m.dropped_overflow, m.dropped_bad_axon) == (1, 3)
    m.tick()
    assert list(m.v) == [2, 2, 2, 2]
    assert m.events([1, 1]) == 2 and m.dropped_overflow == 1   # the cap is per step


def test_accumulator_width_covers_the_event_cap():
    cfg = CoreConfig(max_events_per_step=65535)
    assert cfg.accumulator_width == 24
    assert 65535 * 128 <= 2 ** 23


def test_run_equals_event_by_event_stepping():
    cfg = CoreConfig(n_neurons=32, n_axons=16, weights_per_word=4)
    rng = np.random.default_rng(7)
    params, weights = random_params(cfg, rng), random_weights(cfg, rng)
    steps = poisson_events(rng, 200, cfg.n_axons, 0.2)
    fast = CoreModel(cfg, params, weights).run(events_to_raster(steps, cfg.n_axons))
    slow_model = CoreModel(cfg, params, weights)
    slow = np.zeros_like(fast)
    for t, axons in enumerate(steps):
        for a in axons:
            slow_model.event(int(a))
        slow[t, slow_model.tick()] = True
    assert fast.any() and (fast == slow).all()


def test_model_rejects_out_of_range_weights_and_params():
    with pytest.raises(ValueError, match="weights must be in -128..127"):
        CoreModel(SMALL, weights=np.full((4, 4), 128))
    with pytest.raises(ValueError, match=r"beta must be in 0..4096"):
        NeuronParams.uniform(SMALL, beta=4097)
    with pytest.raises(ValueError, match="threshold must be in 0..32767"):
        NeuronParams.uniform(SMALL, threshold=-1)


def test_state_word_roundtrip():
    m = model_with()
    m.v[2], m.i[2], m.ref[2] = -32768, 32767, 15
    word = m.state_word(2)
    other = model_with()
    other.write_state_word(2, word)
    assert (other.v[2], other.i[2], other.ref[2]) == (-32768, 32767, 15)


def test_network_parameters_are_checked_when_added():
    from spikefab.host.network import Network
    net = Network()
    with pytest.raises(ValueError, match="hidden.threshold must be whole numbers"):
        net.add_population("hidden", 3, threshold=10.5)
    with pytest.raises(ValueError, match=r"hidden.bias must be one integer or 3 of them"):
        net.add_population("hidden", 3, bias=[1, 2])
    net.add_population("hidden", 3, threshold=[10, 20, 40000])
    with pytest.raises(ValueError, match="could never fire"):
        net.reference(SMALL, {}, 1)


def test_subtract_reset_tests_the_sum_before_subtracting_again():
    # docs/numerics.md, Relation to snnTorch: beta = 0.5, inputs [2.5, 0.5, 0, 0] thresholds
    # spike at steps 0 and 1 here (snnTorch with reset_delay=False spikes only at step 0).
    m = model_with(alpha=0, beta=HALF, threshold=100, reset=ResetMode.SUBTRACT)
    m.weights[0, 0], m.weights[1, 0] = 125, 50
    raster = np.array([[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert list(m.run(raster)[:, 0]) == [True, True, False, False]
    assert m.v[0] == 6  # V: 250 - 100 = 150; 75 + 50 - 100 = 25; 12; 6
