"""The core's gateware under Verilator (or Icarus), checked cycle by cycle against the model.

Every scenario is seeded (the seed is in the test id and in every failure message); after every
tick the bench compares each spike (neuron, step), the status counters and every neuron's V, I and
refractory count read back through the config port.
"""

import numpy as np
import pytest

from spikefab.host.networks import poisson_events, random_params, random_weights
from spikefab.sim import CoreModel
from spikefab.spec import CoreConfig, NeuronParams
from spikefab.verify.core_bench import clear_model
from spikefab.verify.rtlsim import make_scenario, run_scenario


def expected_spikes(cfg, params, weights, steps, init_state=None, clear_steps=()):
    model = CoreModel(cfg, params, weights)
    if init_state is not None:
        model.v, model.i, model.ref = (np.asarray(a, dtype=np.int64) for a in init_state)
    result = []
    for t, axons in enumerate(steps):
        if t in clear_steps:
            clear_model(model)
        model.events(axons)
        result.extend(model.tick())
    return result


def run_and_check(cfg, params, weights, steps, *, seed, init_state=None, **options):
    print(f"seed {seed}")
    result = run_scenario(cfg, make_scenario(params, weights, steps, init_state=init_state,
                                             seed=seed, **options))
    # The bench already compared every step; this guards the result plumbing itself.
    assert list(result["spike_neurons"]) == [int(x) for x in expected_spikes(
        cfg, params, weights, steps, init_state, options.get("clear_steps", ()))]
    return result


def with_bad_axons(rng, steps, cfg, fraction):
    """Sprinkle out-of-range axon ids (A..65535) into the event lists."""
    out = []
    for axons in steps:
        bad = rng.integers(cfg.n_axons, 1 << 16, rng.binomial(len(axons) + 1, fraction))
        out.append(rng.permutation(np.concatenate([axons, bad]).astype(np.int64)))
    return out


def test_default_core_1000_steps_at_several_activity_levels():
    """256 x 256, K = 2: 1000 steps in four segments of 1, 5, 15 and 40 % input activity."""
    seed = 20261124
    cfg = CoreConfig()
    rng = np.random.default_rng(seed)
    params, weights = random_params(cfg, rng), random_weights(cfg, rng)
    rates = np.repeat([0.01, 0.05, 0.15, 0.40], 250)
    steps = with_bad_axons(rng, poisson_events(rng, len(rates), cfg.n_axons, rates), cfg, 0.01)
    result = run_and_check(cfg, params, weights, steps, seed=seed, gap_prob=0.1, stall_prob=0.2)
    counts = np.bincount(result["spike_steps"], minlength=len(steps))
    # The scenario must exercise the neurons: spikes in every activity segment.
    assert all(counts[s:s + 250].sum() > 0 for s in range(0, 1000, 250)), counts


SMALL_CASES = {
    # name: (config, seed)
    "N1_K1": (CoreConfig(n_neurons=1, n_axons=3, weights_per_word=1), 1),
    "N3_K3": (CoreConfig(n_neurons=3, n_axons=5, weights_per_word=3), 2),
    "N3_K1": (CoreConfig(n_neurons=3, n_axons=2, weights_per_word=1), 3),
    "N16_K4_narrow": (CoreConfig(n_neurons=16, n_axons=9, weights_per_word=4, weight_width=4,
                                 current_width=8, voltage_width=10, decay_width=4,
                                 refractory_width=2, step_width=8, max_events_per_step=6), 4),
    "N32_K8_cap": (CoreConfig(n_neurons=32, n_axons=16, weights_per_word=8,
                              max_events_per_step=3), 5),
}


@pytest.mark.parametrize("name", SMALL_CASES)
def test_small_and_odd_cores_with_back_pressure(name):
    """Small N, K = 1 and K > 1, narrow widths, step counter wrap, per-step event cap."""
    cfg, seed = SMALL_CASES[name]
    rng = np.random.default_rng(seed)
    params = random_params(cfg, rng, threshold_scale=2.0)
    weights = random_weights(cfg, rng)
    steps = with_bad_axons(rng, poisson_events(rng, 300, cfg.n_axons, 0.4), cfg, 0.05)
    run_and_check(cfg, params, weights, steps, seed=seed, gap_prob=0.3, stall_prob=0.4,
                  verify_config=True, clear_steps=[100, 101, 250])


EDGE = CoreConfig(n_neurons=8, n_axons=4, weights_per_word=2)


def edge_params(**fields):
    params = NeuronParams.zeros(EDGE)
    for name, values in fields.items():
        getattr(params, name)[:] = values
    params.validate(EDGE)
    return params


def test_saturation_of_v_and_i_with_maximal_weights_and_no_decay():
    one, vmax = EDGE.decay_one, EDGE.voltage_range[1]
    params = edge_params(alpha=one, beta=one, threshold=vmax,
                         reset=[0, 1] * 4, refractory=[0, 0, 3, 3, 0, 0, 15, 15])
    weights = np.array([[127] * 4 + [-128] * 4] * 4)
    steps = [[0, 1, 2, 3]] * 40 + [[]] * 5
    run_and_check(EDGE, params, weights, steps, seed=11, stall_prob=0.5)


def test_threshold_exactly_reached_and_both_reset_modes():
    # beta = alpha = 0: V equals the step's input; neurons 0..3 reach exactly the threshold,
    # neurons 4..7 one above it.
    params = edge_params(threshold=100, reset=[0, 1, 0, 1, 0, 1, 0, 1])
    weights = np.array([[100] * 4 + [101] * 4, [50] * 8, [0] * 8, [-128] * 8])
    steps = [[0], [1, 1], [1, 1, 2], [0, 3], [2]] * 10
    result = run_and_check(EDGE, params, weights, steps, seed=12)
    assert set(result["spike_neurons"]) == {4, 5, 6, 7}


def test_zero_and_maximal_decays_negative_weights_bias_and_refractory():
    one = EDGE.decay_one
    params = edge_params(alpha=[0, one, 0, one, one // 2, 1, one - 1, 3],
                         beta=[0, 0, one, one, one // 2, one - 1, 1, 7],
                         threshold=[0, 5, 200, 32767, 300, 64, 1, 1000],
                         bias=[-5, 3, 0, -32768, 32767, 7, -1, 0],
                         refractory=[0, 1, 2, 15, 4, 0, 7, 1],
                         reset=[0, 1, 1, 0, 1, 0, 1, 0])
    rng = np.random.default_rng(13)
    weights = rng.integers(-128, 128, (4, 8))
    init = (rng.integers(-32768, 32768, 8), rng.integers(-32768, 32768, 8), rng.integers(0, 16, 8))
    steps = poisson_events(rng, 200, 4, 0.5)
    run_and_check(EDGE, params, weights, steps, seed=13, init_state=init, gap_prob=0.2,
                  stall_prob=0.3)
