"""The learning demonstrations of `examples/` on reduced, seeded runs of the golden model: each
still has to reach the issue's thresholds (and fails when learning does not work)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from spikefab.host.events import open_recording

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dvs():
    return example("dvs_bars")


def test_dvs_clips_are_event_files_read_back_and_encoded(dvs, tmp_path):
    """The data path of the DVS example: faery writes AEDAT4, the reader and encoder give the
    clips back on the steps the labels say."""
    seed = 7
    print(f"seed {seed}")
    data = dvs.make_data(tmp_path, {"few": 6}, seed)["few"]
    rec = open_recording(tmp_path / "bars_few.aedat4")
    assert (rec.format, rec.width, rec.height) == ("AEDAT4", dvs.SENSOR, dvs.SENSOR)
    events = rec.read()
    assert len(events) == data.events
    assert len(data.clips) == 6 and all(len(clip) == dvs.CLIP for clip in data.clips)
    for k, (clip, label) in enumerate(zip(data.clips, data.labels)):
        # The clip's events come from its own time slot of the recording (1 ms steps).
        here = events[(events["t"] >= k * dvs.PERIOD_US) & (events["t"] < k * dvs.PERIOD_US
                                                           + dvs.CLIP * dvs.DT_US)]
        ids = np.concatenate(clip)
        assert 0 < len(ids) <= len(here) and ids.max() < dvs.CFG.n_axons
        # ON cells (the first half of the inputs) move the way the label says: compare the
        # first and the last step where the bar is on the sensor (not just noise).
        horizontal = dvs.DIRECTIONS[label] in ("right", "left")
        sign = 1 if dvs.DIRECTIONS[label] in ("right", "down") else -1
        positions = [(ids_t % dvs.CELLS if horizontal else ids_t // dvs.CELLS)
                     for ids_t in (ids_t[ids_t < dvs.CELLS ** 2] for ids_t in clip)
                     if len(ids_t) >= 10]
        assert len(positions) >= 2, k
        moved = np.median(positions[-1]) - np.median(positions[0])
        assert sign * moved > 0, (k, dvs.DIRECTIONS[label], moved)


def test_dvs_readout_learns_directions_to_90_percent(dvs, tmp_path):
    """Three-factor learning of the readout from the event files reaches >= 90 % held out."""
    seed = 1
    print(f"seed {seed}")
    data = dvs.make_data(tmp_path, {"train": 1500, "val": 50, "test": 200}, seed)
    model, curve = dvs.learn(data, every=1500)
    accuracy = dvs.accuracy(model, data["test"])
    print(f"held-out accuracy {accuracy:.1%}")
    assert accuracy >= 0.9, f"seed {seed}: held-out accuracy {accuracy:.1%} < 90 %"
    # Learning did it: the untrained readout is at chance or below.
    assert dvs.accuracy(dvs.build_model(), data["test"]) < 0.4


#: The STDP test's seeds and learning time (s): each seed costs ~1 min (the model's stochastic
#: rounding dominates), so one seed here; docs/plasticity.md has all 8 seeds at 150 s.
STDP_SEEDS = (2,)
STDP_SECONDS = 90


@pytest.fixture(scope="module")
def stdp():
    return example("stdp_pattern")


def test_stdp_score_counts_hits_and_false_alarms(stdp):
    """The figures of merit on a hand-made spike train (50-step windows)."""
    spikes = np.zeros(400, dtype=bool)
    starts = [0, 100, 250]                 # windows 0, 2 and 5 hold the pattern
    spikes[[10, 120, 121, 60, 70, 330]] = True
    s = stdp.score(spikes, starts)
    assert (s.presentations, s.windows) == (3, 5)
    assert s.hits == pytest.approx(2 / 3)                # no spike in window 5
    assert s.false_rate == pytest.approx(3 / 0.25)       # 3 spikes in 5 x 50 ms
    assert s.false_windows == pytest.approx(2 / 5)       # windows 1 and 6


def test_stdp_inhibition_is_fixed_and_arrives_one_step_later(stdp):
    """The lateral inhibition as the chip's router builds it: neuron k's spike at step t is an
    event on its INH_FANOUT recurrent axons at step t + 1, weighted INH_WEIGHT onto every other
    neuron and 0 onto itself; those synapses are not plastic and never change while learning."""
    seed = 3
    print(f"seed {seed}")
    raster, _, _ = stdp.make_input(seed, 300)
    model = stdp.build_model(np.random.default_rng(seed))
    inhibitory = model.weights[stdp.A:].copy()
    model.configure(enable=1)
    events = []
    spikes, last = stdp.run_network(model, raster, stdp.INH_FANOUT, events=events)
    assert spikes.sum() > 10                 # untrained neurons fire: the loop is exercised
    for t in range(len(raster)):
        fed_back = np.sort(events[t][events[t] >= stdp.A])
        before = np.flatnonzero(spikes[t - 1]) if t else np.array([], dtype=np.int64)
        assert np.array_equal(fed_back, np.sort(stdp.recurrent_axons(before, stdp.INH_FANOUT)))
        assert np.array_equal(np.sort(events[t][events[t] < stdp.A]), np.flatnonzero(raster[t]))
    assert np.array_equal(last, np.flatnonzero(spikes[-1]))
    assert not model.mask[stdp.A:].any()
    assert np.array_equal(model.weights[stdp.A:], inhibitory)
    for k in range(stdp.NEURONS):
        rows = stdp.recurrent_axons([k], stdp.INH_FANOUT) - stdp.A
        assert (inhibitory[rows, k] == 0).all()
        assert (np.delete(inhibitory[rows], k, axis=1) == stdp.INH_WEIGHT).all()
    assert model.updates > 0 and not np.array_equal(model.weights[:stdp.A],
                                                    stdp.build_model(np.random.default_rng(
                                                        seed)).weights[:stdp.A])


@pytest.mark.parametrize("seed", STDP_SEEDS)
def test_stdp_some_neuron_becomes_selective_to_the_pattern(stdp, seed):
    """The example's network (NEURONS neurons with lateral inhibition), STDP_SECONDS of learning,
    then 20 s with learning off: the neuron chosen on the last learning chunk fires in >= 90 %
    of the presentations and at most 1 spike/s outside the pattern (and in at most 5 % of the
    windows without it), where every untrained neuron fires more than 5 spikes/s outside it."""
    print(f"seed {seed}")
    result = stdp.learn(STDP_SECONDS, seed, progress=False)
    test = result["test"]
    print(stdp.report(result))
    assert test.presentations > 80
    assert test.hits >= 0.9, f"seed {seed}: hits {test.hits:.1%} < 90 %"
    assert test.false_rate <= 1.0, f"seed {seed}: {test.false_rate:.2f} spikes/s outside"
    assert test.false_windows <= 0.05
    untrained = stdp.learn(0, seed, progress=False)["tests"]
    print("untrained, spikes/s outside the pattern: "
          + ", ".join(f"{s.false_rate:.1f}" for s in untrained))
    assert all(s.false_rate > 5 for s in untrained)
