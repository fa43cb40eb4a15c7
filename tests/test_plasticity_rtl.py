"""The plastic core's gateware under Verilator, checked against the golden model after every step.

Every rule variant of `docs/plasticity.md` runs for 500 steps on one small plastic core (one
Verilator build): after every step the bench compares every weight, trace, accumulated factor,
the LFSR and the epoch counter with `PlasticCoreModel`, checks that changed weights are plastic
and inside the bounds, and that TICK-to-STEP_END takes exactly the documented cycles.
"""

import numpy as np
import pytest

from spikefab.host.networks import poisson_events, random_params
from spikefab.learning import FactorMode, PostMode, PreMode, Reg, bounds_word
from spikefab.spec import CoreConfig
from spikefab.verify.plasticity_bench import TICK_TO_STEP_END
from spikefab.verify.rtlsim import make_plastic_scenario, run_plastic_scenario

CFG = CoreConfig(n_neurons=8, n_axons=6, weights_per_word=2)

# name: register values (besides ENABLE, SEED and BOUNDS); factor source per step
VARIANTS = {
    "stdp": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE, factor_mode=FactorMode.ONE,
                 depression=1, m_unit=3, shift=4, x_decay=200, x_inc=60, y_decay=180, y_inc=70),
    "reward_stdp": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE,
                        factor_mode=FactorMode.HOST, depression=1, shift=5, x_decay=220,
                        x_inc=90, y_decay=220, y_inc=90),
    "surrogate_host_error": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SURROGATE,
                                 factor_mode=FactorMode.HOST, shift=6, x_decay=230, x_inc=100,
                                 window=3000),
    "error_triggered_epochs": dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SURROGATE,
                                   factor_mode=FactorMode.ERROR, m_unit=9, threshold=10,
                                   period=3, shift=3, x_decay=240, x_inc=50, window=3000),
    "spike_pre_trace_post_error": dict(pre_mode=PreMode.SPIKE, post_mode=PostMode.TRACE,
                                       factor_mode=FactorMode.ERROR, m_unit=-5, shift=2,
                                       y_decay=128, y_inc=255),
    "spike_spike_one_exact": dict(pre_mode=PreMode.SPIKE, post_mode=PostMode.SPIKE,
                                  factor_mode=FactorMode.ONE, depression=0, m_unit=1, shift=0,
                                  y_decay=64, y_inc=1, period=2),
}


def register_writes(cfg, values, *, step=0, seed=0x2468ACE1, w_min=-40, w_max=50):
    writes = [(step, Reg.SEED_LO, seed & 0xFFFF), (step, Reg.SEED_HI, seed >> 16),
              (step, Reg.BOUNDS, bounds_word(cfg, w_min, w_max))]
    for name, value in values.items():
        word = int(value) & 0xFF if name == "m_unit" else int(value)
        writes.append((step, Reg[name.upper()], word))
    return writes + [(step, Reg.ENABLE, 1)]


def scenario_for(variant, steps, seed, cfg=CFG, **options):
    rng = np.random.default_rng(seed)
    params = random_params(cfg, rng, threshold_scale=0.5)
    weights = rng.integers(-30, 45, (cfg.n_axons, cfg.n_neurons))
    mask = rng.random((cfg.n_axons, cfg.n_neurons)) < 0.8
    events = poisson_events(rng, steps, cfg.n_axons, 0.35)
    factors = np.where(rng.random((steps, cfg.n_neurons)) < 0.3,
                       rng.integers(-128, 128, (steps, cfg.n_neurons)), 0)
    targets = rng.random((steps, cfg.n_neurons)) < 0.2
    writes = register_writes(cfg, VARIANTS[variant])
    return params, make_plastic_scenario(params, weights, mask, events, writes, factors=factors,
                                         targets=targets, seed=seed, **options)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rule_variant_500_steps_bit_exact(variant):
    seed = 100 + list(VARIANTS).index(variant)
    print(f"seed {seed}")
    _, scenario = scenario_for(variant, 500, seed)
    result = run_plastic_scenario(CFG, scenario)
    # The run must exercise learning: rows swept and weights written by the learning step.
    print("rows", result["rows"].sum(), "updates", result["updates"].sum())
    assert result["rows"].sum() > 50 and result["updates"].sum() > 300, (
        result["rows"].sum(), result["updates"].sum())
    assert not np.array_equal(result["final_weights"], scenario["weights"])


def test_rules_change_at_run_time_with_refused_writes_and_back_pressure():
    """Disabled (base tick cost), STDP, then ERROR rules, refused values, disabled, re-seeded;
    CLEAR (the protocol's RESET) in between; every register read back after every write batch."""
    seed = 200
    print(f"seed {seed}")
    steps = 360
    params, scenario = scenario_for("stdp", steps, seed, gap_prob=0.2, stall_prob=0.3,
                                    check_every=3, clear_steps=[100, 101, 300])
    writes = [(0, Reg.ENABLE, 0)]
    writes += [(50, reg, word) for _, reg, word in register_writes(CFG, VARIANTS["stdp"])]
    bad = [(Reg.SHIFT, 25), (Reg.POST_MODE, 3), (Reg.M_UNIT, 0x80), (Reg.PERIOD, 0),
           (Reg.X_DECAY, 257), (Reg.BOUNDS, bounds_word(CFG, 5, 4)), (Reg.LFSR_LO, 3),
           (Reg.EPOCH, 1), (25, 0), (Reg.ENABLE, 2), (Reg.SEED_HI, 0)]
    writes += [(150, Reg.SEED_LO, 0)] + [(150, reg, word) for reg, word in bad]
    writes += [(150, reg, word) for _, reg, word in register_writes(
        CFG, VARIANTS["error_triggered_epochs"], seed=0x13579BDF, w_min=-20, w_max=20)]
    writes += [(240, Reg.ENABLE, 0), (270, Reg.ENABLE, 1), (270, Reg.PERIOD, 1),
               (270, Reg.BOUNDS, bounds_word(CFG, -128, 127))]
    scenario["reg_writes"] = np.asarray(writes, dtype=np.int64)
    result = run_plastic_scenario(CFG, scenario)
    assert result["updates"][:50].sum() == 0 and result["updates"][50:150].sum() > 100
    assert result["updates"][240:270].sum() == 0 and result["updates"][270:].sum() > 50


def test_run_time_cycle_cost_without_back_pressure_including_disabled_steps():
    seed = 201
    print(f"seed {seed}")
    params, scenario = scenario_for("surrogate_host_error", 120, seed, gap_prob=0.2)
    writes = [tuple(w) for w in scenario["reg_writes"]]
    scenario["reg_writes"] = np.asarray(writes + [(40, Reg.ENABLE, 0), (80, Reg.ENABLE, 1)],
                                        dtype=np.int64)
    result = run_plastic_scenario(CFG, scenario)   # the bench checks every step's cycles
    assert (result["tick_cycles"][40:80] == TICK_TO_STEP_END(CFG)).all()   # as without learning
    assert result["rows"][:40].sum() > 10


ODD = {
    "K1": CoreConfig(n_neurons=3, n_axons=5, weights_per_word=1),
    "K4_narrow": CoreConfig(n_neurons=16, n_axons=9, weights_per_word=4, weight_width=4,
                            current_width=8, voltage_width=10, decay_width=4,
                            refractory_width=2, step_width=8),
}


@pytest.mark.parametrize("name", ODD)
def test_odd_cores_learn_bit_exactly(name):
    """K = 1 and K = 4 with 4-bit weights (bounds at the weight range), error-driven surrogate."""
    cfg = ODD[name]
    seed = 300 + list(ODD).index(name)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    steps = 250
    params = random_params(cfg, rng, threshold_scale=1.0)
    lo, hi = cfg.weight_range
    weights = rng.integers(lo, hi + 1, (cfg.n_axons, cfg.n_neurons))
    mask = rng.random((cfg.n_axons, cfg.n_neurons)) < 0.7
    events = poisson_events(rng, steps, cfg.n_axons, 0.4)
    targets = rng.random((steps, cfg.n_neurons)) < 0.3
    values = dict(VARIANTS["error_triggered_epochs"], threshold=0, period=1, shift=6,
                  window=(1 << (cfg.voltage_width - 1)) - 1)
    writes = register_writes(cfg, values, w_min=lo, w_max=hi)
    writes += [(125, Reg.PRE_MODE, PreMode.SPIKE), (125, Reg.POST_MODE, PostMode.TRACE),
               (125, Reg.Y_DECAY, 200), (125, Reg.Y_INC, 120)]
    scenario = make_plastic_scenario(params, weights, mask, events, writes, targets=targets,
                                     seed=seed, stall_prob=0.2, check_every=2)
    result = run_plastic_scenario(cfg, scenario)
    assert result["updates"][:125].sum() > 20 and result["updates"][125:].sum() > 20
