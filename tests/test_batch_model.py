"""The batched golden model against the per-sample one: same spikes, state and counters."""

import numpy as np
import pytest

from spikefab.host.networks import events_to_raster, poisson_events, random_params, random_weights
from spikefab.sim import CoreModel
from spikefab.sim.lif import BatchLIF, exact_weight_sums, lif_update
from spikefab.spec import CoreConfig, NeuronParams, ResetMode

CONFIGS = {
    "default": CoreConfig(n_neurons=32, n_axons=16, weights_per_word=4),
    "narrow": CoreConfig(n_neurons=16, n_axons=8, weights_per_word=1, weight_width=4,
                         voltage_width=8,
                         current_width=6, decay_width=3, max_events_per_step=5),
    "wide": CoreConfig(n_neurons=16, n_axons=8, weights_per_word=1, weight_width=16,
                       voltage_width=32, current_width=32, decay_width=16, refractory_width=8),
}


def per_sample(cfg, params, weights, raster):
    """The reference: events then tick, one step at a time."""
    model = CoreModel(cfg, params, weights)
    out = np.zeros((len(raster), cfg.n_neurons), dtype=bool)
    for t, row in enumerate(raster):
        model.events(np.repeat(np.arange(cfg.n_axons), row))
        out[t, model.tick()] = True
    return out, model


def random_case(cfg, seed, batch=6, steps=60, plain=False):
    """Random parameters (with `plain`: no current decay, no refractory period, the model's
    fastest path), weights and B x T x A rasters."""
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    params, weights = random_params(cfg, rng, threshold_scale=3.0), random_weights(cfg, rng)
    if plain:
        params.alpha[:] = 0
        params.refractory[:] = 0
    rasters = np.stack([events_to_raster(poisson_events(rng, steps, cfg.n_axons,
                                                        rng.uniform(0.05, 0.6)), cfg.n_axons)
                        for _ in range(batch)])
    rasters[:, ::7] *= 3   # some steps carry repeated events (and overflow the narrow cap)
    return params, weights, rasters


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("plain", [False, True])
def test_batch_equals_each_sample_run_alone(name, seed, masked, plain, monkeypatch):
    # Both reset implementations: masked (small batches) and arithmetic (large ones).
    monkeypatch.setattr("spikefab.sim.lif.MASKED_MAX", 1 << 30 if masked else 0)
    cfg = CONFIGS[name]
    params, weights, rasters = random_case(cfg, seed, plain=plain)
    model = CoreModel(cfg, params, weights)
    batch = model.run_batch(rasters)
    for b, raster in enumerate(rasters):
        alone, reference = per_sample(cfg, params, weights, raster)
        assert batch[b].any() and (batch[b] == alone).all(), f"sample {b}, seed {seed}"
        assert model.batch_dropped[b] == reference.dropped_overflow, f"sample {b}"
    assert model.step == 0 and not model.v.any()  # a batched run leaves the core alone
    assert name != "narrow" or model.batch_dropped.any()  # the event cap was exercised


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("plain", [False, True])
def test_run_equals_events_and_ticks_with_state_and_counters(name, plain):
    cfg = CONFIGS[name]
    params, weights, rasters = random_case(cfg, seed=11, batch=1, plain=plain)
    model = CoreModel(cfg, params, weights)
    model.events([0, 1, 1])          # pending events of the first step count against its cap
    reference = CoreModel(cfg, params, weights)
    reference.events([0, 1, 1])
    fast = model.run(rasters[0])
    slow = np.zeros_like(fast)
    for t, row in enumerate(rasters[0]):
        reference.events(np.repeat(np.arange(cfg.n_axons), row))
        slow[t, reference.tick()] = True
    assert (fast == slow).all()
    for name_ in ("v", "i", "ref"):
        assert (getattr(model, name_) == getattr(reference, name_)).all(), name_
    assert (model.step, model.dropped_overflow) == (reference.step, reference.dropped_overflow)
    assert model.v.dtype == np.int64


def test_batch_starts_from_the_present_state():
    cfg = CONFIGS["default"]
    params, weights, rasters = random_case(cfg, seed=5, batch=3)
    model = CoreModel(cfg, params, weights)
    model.run(rasters[0, :10])
    batch = model.run_batch(rasters[:, 10:])
    for b in range(3):
        alone = CoreModel(cfg, params, weights)
        alone.run(rasters[0, :10])
        assert (alone.run(rasters[b, 10:]) == batch[b]).all(), f"sample {b}"


@pytest.mark.parametrize("seed", [21, 22])
def test_extreme_state_rounds_and_saturates_like_lif_update(seed):
    # Saturated and negative states at the widest widths: the float64 path must still be exact.
    print(f"seed={seed}")
    cfg = CONFIGS["wide"]
    rng = np.random.default_rng(seed)
    params = random_params(cfg, rng)
    params.refractory[:] = 0
    v_lo, v_hi = cfg.voltage_range
    i_lo, i_hi = cfg.current_range
    shape = (5, cfg.n_neurons)
    v = rng.integers(v_lo, v_hi + 1, shape)
    i = rng.integers(i_lo, i_hi + 1, shape)
    acc = rng.integers(-(1 << 35), 1 << 35, shape)
    lif = BatchLIF(cfg, params, 5, (v, i, 0))
    spike = lif.step(acc.astype(np.float64))
    v2, i2, _, s2 = lif_update(cfg, params, v, i, np.zeros(shape, dtype=np.int64), acc)
    assert (spike == s2).all() and (lif.v == v2).all() and (lif.i == i2).all()


def test_exact_weight_sums_pick_a_precision_that_is_exact():
    weights = np.array([[2**15 - 1, -(2**15)], [1, 1]])
    big = np.array([[2**20, 3]])   # 2**20 * 2**15 > 2**24: needs float64
    assert exact_weight_sums(big, weights).tolist() == [[(2**15 - 1) * 2**20 + 3,
                                                         -(2**35) + 3]]
    assert exact_weight_sums(np.array([[1, 1]]), weights).tolist() == [[2**15, -(2**15) + 1]]
    with pytest.raises(ValueError, match="exceed 2\\*\\*53"):
        exact_weight_sums(np.array([[2**40, 0]]), weights)


def test_batched_runs_have_no_plasticity_and_rasters_must_be_counts():
    from spikefab.sim.plasticity import PlasticCoreModel
    from spikefab.spec import CoreConfig as C
    cfg = C(n_neurons=16, n_axons=16, weights_per_word=2)
    plastic = PlasticCoreModel(cfg, NeuronParams.uniform(cfg, threshold=100))
    with pytest.raises(ValueError, match="no plasticity"):
        plastic.run_batch(np.zeros((1, 2, 16), dtype=np.int64))
    with pytest.raises(ValueError, match="integer event counts"):
        CoreModel(cfg).run(np.full((2, 16), 0.5))
    with pytest.raises(ValueError, match=r"shape \(B, T, 16\)"):
        CoreModel(cfg).run_batch(np.zeros((2, 16), dtype=np.int64))


@pytest.mark.parametrize("seed", [31, 32])
def test_network_reference_batch_equals_each_sample(seed):
    from spikefab.host.network import Network
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    cfg = CoreConfig()
    net = Network()
    pixels = net.add_input("pixels", 40)
    hidden = net.add_population("hidden", 30, alpha=rng.integers(0, 4097, 30), beta=3800,
                                threshold=rng.integers(100, 400, 30), refractory=1,
                                reset=rng.integers(0, 2, 30))
    out = net.add_population("out", 5, beta=4000, threshold=150)
    net.connect(pixels, hidden, rng.integers(-40, 100, (40, 30)))
    net.connect(hidden, hidden, rng.integers(-60, 60, (30, 30)))    # recurrent: one-step delay
    net.connect(hidden, out, rng.integers(-20, 80, (30, 5)))
    rasters = (rng.random((4, 50, 40)) < 0.2).astype(np.int64)
    batch = net.reference(cfg, {"pixels": rasters.astype(bool)})   # 0/1 rasters may be bool
    for b in range(4):
        alone = net.reference(cfg, {"pixels": rasters[b]}, 50)
        for name in ("hidden", "out"):
            assert alone[name].shape == (50, net.populations[name].size)
            assert alone[name].any() and (batch[name][b] == alone[name]).all(), (name, b)


@pytest.mark.parametrize("seed", [41, 42])
@pytest.mark.parametrize("masked", [True, False])
def test_leaky_runs_that_skip_saturation_agree(seed, masked, monkeypatch):
    monkeypatch.setattr("spikefab.sim.lif.MASKED_MAX", 1 << 30 if masked else 0)
    # With beta < 1 and bounded currents the batched path proves V cannot saturate and skips
    # the clamp (asserted below); the spikes must not change.
    cfg = CoreConfig(n_neurons=16, n_axons=8, weights_per_word=1)
    params, weights, rasters = random_case(cfg, seed)
    params.beta[:] = np.random.default_rng(seed).integers(cfg.decay_one // 2,
                                                          cfg.decay_one * 7 // 8, 16)
    params.alpha[:] = 0
    params.refractory[:] = 0
    lif = BatchLIF(cfg, params, 1)
    currents = lif.currents(exact_weight_sums(rasters.reshape(-1, 8), weights))
    assert not lif._v_may_saturate(currents)
    model = CoreModel(cfg, params, weights)
    batch = model.run_batch(rasters)
    for b, raster in enumerate(rasters):
        alone, _ = per_sample(cfg, params, weights, raster)
        assert batch[b].any() and (batch[b] == alone).all(), f"sample {b}, seed {seed}"


@pytest.mark.parametrize("seed", range(51, 59))
def test_saturation_bound_near_the_membrane_range(seed):
    # Narrow V and currents close to its range, leaky neurons of both resets: whether the bound
    # skips the clamp or not, every sample must equal its own per-step run.
    cfg = CoreConfig(n_neurons=16, n_axons=8, weights_per_word=1, weight_width=6,
                     voltage_width=12, current_width=12)
    params, weights, rasters = random_case(cfg, seed, plain=True)
    rng = np.random.default_rng(seed)
    top = cfg.decay_one * (5 if seed % 2 else 31) // 8 // (1 if seed % 2 else 4)
    params.beta[:] = rng.integers(cfg.decay_one * 3 // 8, top, 16)  # 0.375..0.625 or ..0.97
    params.threshold[:] = rng.integers(0, 200, 16)
    params.bias[:] = rng.integers(-8, 9, 16)
    model = CoreModel(cfg, params, weights)
    batch = model.run_batch(rasters)
    for b, raster in enumerate(rasters):
        alone, _ = per_sample(cfg, params, weights, raster)
        assert (batch[b] == alone).all(), f"sample {b}, seed {seed}"


def test_network_reference_rejects_inputs_it_cannot_take():
    from spikefab.host.network import Network
    net = Network()
    group = net.add_input("in", 3)
    net.connect(group, net.add_population("p", 2, threshold=5), np.ones((3, 2), dtype=np.int64))
    cfg = CoreConfig()
    with pytest.raises(ValueError, match="no input group named 'other'"):
        net.reference(cfg, {"other": np.zeros((4, 3), dtype=np.int64)})
    with pytest.raises(ValueError, match=r"input 'in' must be steps x 3 or B x steps x 3"):
        net.reference(cfg, {"in": np.zeros((4, 2), dtype=np.int64)})
    with pytest.raises(ValueError, match="input 'in' must be whole numbers"):
        net.reference(cfg, {"in": np.full((4, 3), 0.5)})
    with pytest.raises(ValueError, match="fewer than 9 steps"):
        net.reference(cfg, {"in": np.zeros((4, 3), dtype=np.int64)}, 9)
    assert net.reference(cfg, {}, 3)["p"].shape == (3, 2)    # a group left out gets no events


@pytest.mark.parametrize("seed", [61, 62, 63])
def test_packed_weight_sums_are_exact_up_to_their_bound(seed):
    # Several weight columns share one float64 column; fields of either sign up to the bound M
    # (rows whose events all hit the extreme weights) must come apart exactly, for every k.
    from spikefab.sim.lif import PACK_MIN, WeightSums
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    weights = rng.integers(-128, 128, (24, 37))       # 37 columns: not a multiple of any k
    weights[:, 0], weights[:, 1], weights[0, 2] = -128, 127, -128
    sums = WeightSums(weights)
    seen = set()
    for most in (1, 2, 5, 20, 200):                   # k = 6, 5, 4, 4 and 1 (too wide)
        counts = rng.multinomial(most, np.full(24, 1 / 24), size=50)
        counts[0] = 0
        counts[0, 0] = most                            # field 0 of the first row: -128 * most
        fields, shift = sums.packing(most)
        if fields > 1:
            assert fields >= PACK_MIN and 1 << (shift - 1) > most * 128
            assert most * 128 * sum(1 << (i * shift) for i in range(fields)) <= 2**53
            assert most * 128 * sum(1 << (i * shift) for i in range(fields + 1)) > 2**53
        got = sums(counts, most)
        assert (got == counts @ weights).all(), (most, fields)
        assert got[0, 0] == -128 * most and got[0, 1] == 127 * most
        assert (sums(counts, most, pack=False) == got).all()
        seen.add(fields)
    assert seen == {6, 5, 4, 1}
    sums(rng.multinomial(20, np.full(24, 1 / 24), size=5), 20)   # prepares k = 4, s = 13 ...
    few = rng.multinomial(2, np.full(24, 1 / 24), size=50)
    assert sums.packing(2) == (4, 13)                  # ... which smaller sums reuse, exactly
    assert (sums(few, 2) == few @ weights).all()
    wide = rng.integers(-128, 128, (24, 768))           # k = 3 only on wide layers
    wide[:, 512] = -128
    counts = rng.multinomial(40, np.full(24, 1 / 24), size=30)
    assert sums.packing(40) == (1, 0) and WeightSums(wide).packing(40) == (3, 14)
    got = WeightSums(wide)(counts, 40)
    assert (got == counts @ wide).all() and (got[:, 512] == -128 * 40).all()


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("leak", [True, False])
def test_uniform_layer_with_packed_sums_equals_each_sample(reset, masked, leak, monkeypatch):
    # The benchmark's case: one parameter set for every neuron (0-d operands), many rows of
    # 8-bit weights at low activity (packed sums), both reset implementations; without a leak
    # (beta = 1) a wrong reset value persists instead of decaying to 0.
    from spikefab.sim import lif
    monkeypatch.setattr("spikefab.sim.lif.MASKED_MAX", 1 << 30 if masked else 0)
    unpacked = []
    original = lif.WeightSums._unpack
    monkeypatch.setattr(lif.WeightSums, "_unpack",
                        staticmethod(lambda *a: unpacked.append(1) or original(*a)))
    cfg = CoreConfig(n_neurons=24, n_axons=32, weights_per_word=1)
    rng = np.random.default_rng(71)
    weights = rng.integers(-40, 100, (32, 24))
    beta = cfg.decay_one * 15 // 16 if leak else cfg.decay_one
    params = NeuronParams.uniform(cfg, beta=beta, threshold=300,
                                  reset=getattr(ResetMode, reset.upper()))
    rasters = (rng.random((8, 40, 32)) < 0.1).astype(np.int64)
    batch = CoreModel(cfg, params, weights).run_batch(rasters)
    assert unpacked, "the packed weight sums were not used"
    for b, raster in enumerate(rasters):
        alone, _ = per_sample(cfg, params, weights, raster)
        assert batch[b].any() and (batch[b] == alone).all(), f"sample {b}"


@pytest.mark.parametrize("seed", [81, 82])
@pytest.mark.parametrize("end", ["low", "high"])
def test_membrane_saturation_that_acts_in_a_batch(seed, end):
    # An 8-bit membrane clamped at one end: at the bottom by negative weights without a leak,
    # at the top by large positive sums with a subtract reset (V = Vmax - theta afterwards).
    # The bound from the weights' span must keep that end's clamp on, and it must act as
    # lif_update's does: same spikes at every step and the same final membrane.
    print(f"seed={seed}")
    cfg = CoreConfig(n_neurons=16, n_axons=8, weights_per_word=1, weight_width=6,
                     voltage_width=8, current_width=12)
    rng = np.random.default_rng(seed)
    rasters = (rng.random((4, 60, 8)) < 0.5).astype(np.int64)
    if end == "low":
        weights = np.concatenate([rng.integers(-32, -20, (4, 16)), rng.integers(5, 31, (4, 16))])
        params = NeuronParams.uniform(cfg, beta=cfg.decay_one, threshold=100)
        rasters[:, :30, 4:] = 0    # pushed down first, then up: where the clamp left V decides
        rasters[:, 30:, :4] = 0    # when each neuron fires again
    else:
        weights = rng.integers(0, 32, (8, 16))
        params = NeuronParams.uniform(cfg, beta=cfg.decay_one // 2, threshold=40,
                                      reset=ResetMode.SUBTRACT)
    batch = CoreModel(cfg, params, weights).run_batch(rasters)
    for b, raster in enumerate(rasters):
        model, extreme = CoreModel(cfg, params, weights), 0
        for t, row in enumerate(raster):
            model.events(np.repeat(np.arange(8), row))
            assert (batch[b, t] == np.isin(np.arange(16), model.tick())).all(), (b, t)
            extreme = min(extreme, int(model.v.min())) if end == "low" else max(
                extreme, int(model.v.max()))
        fast = CoreModel(cfg, params, weights)
        fast.run(raster)
        assert (fast.v == model.v).all(), f"sample {b}"
        if end == "low":
            assert extreme == cfg.voltage_range[0] and batch[b].any()   # the clamp acted
        else:
            assert extreme == cfg.voltage_range[1] - 40                 # Vmax - theta
