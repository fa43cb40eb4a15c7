"""The event encoder against a plain per-event reference of docs/host.md's stages."""

import numpy as np
import pytest

from spikefab.host import encode
from spikefab.host.encode import Encoder, EncoderConfig
from spikefab.host.events import EVENTS_DTYPE


def reference(events, cfg: EncoderConfig, sensor):
    """One event at a time, the stages exactly as documented."""
    x0, y0, w, h = cfg.crop or (0, 0, *sensor)
    px, py = cfg.pool
    cw, ch = -(-w // px), -(-h // py)
    last_any, last_kept = {}, {}
    steps = {}
    t0 = int(events["t"][0])
    for e in events:
        t, x, y, on = int(e["t"]), int(e["x"]) - x0, int(e["y"]) - y0, bool(e["on"])
        if not (0 <= x < w and 0 <= y < h):
            continue
        if cfg.denoise_us:
            support = [last_any.get((x + dx, y + dy)) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                       if (dx, dy) != (0, 0)]
            last_any[(x, y)] = t
            if not any(s is not None and s >= t - cfg.denoise_us for s in support):
                continue
        if cfg.polarity == "on" and not on or cfg.polarity == "off" and on:
            continue
        cell = (y // py) * cw + x // px
        if cfg.polarity == "split" and not on:
            cell += cw * ch
        if cfg.refractory_us:
            if cell in last_kept and t < last_kept[cell] + cfg.refractory_us:
                continue
            last_kept[cell] = t
        steps.setdefault((t - t0) // cfg.dt_us, []).append(cell)
    cap = cfg.max_events_per_step
    return [(s, ids[:cap] if cap else ids) for s, ids in sorted(steps.items())]


def random_events(rng, n, sensor):
    events = np.zeros(n, EVENTS_DTYPE)
    # Bursts and gaps: some steps are crowded, some empty.
    events["t"] = np.sort(rng.integers(0, 40_000, n) + 100_000)
    events["x"], events["y"] = rng.integers(0, sensor[0], n), rng.integers(0, sensor[1], n)
    # Clustered pixels so that the denoiser finds neighbours.
    events["x"][::2] = np.clip(events["x"][1::2][: len(events["x"][::2])] + 1, 0, sensor[0] - 1)
    events["on"] = rng.random(n) < 0.6
    return events


CONFIGS = [
    EncoderConfig(),
    EncoderConfig(dt_us=500, pool=(3, 2), polarity="merge"),
    EncoderConfig(dt_us=700, crop=(2, 3, 13, 9), pool=(4, 4), polarity="split",
                  refractory_us=900, denoise_us=2500, max_events_per_step=6),
    EncoderConfig(dt_us=1000, pool=(5, 3), polarity="on", refractory_us=2000),
    EncoderConfig(dt_us=250, polarity="off", denoise_us=800, max_events_per_step=3),
]


@pytest.mark.parametrize("state", ["dense", "sparse"])
@pytest.mark.parametrize("k", range(len(CONFIGS)))
def test_encoder_matches_reference_in_any_chunking(k, state, monkeypatch):
    """Both kinds of per-pixel/per-input state (sparse: what a huge claimed sensor gets)."""
    if state == "sparse":
        monkeypatch.setattr(encode, "DENSE_KEYS", 0)
    seed = 100 + k
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    sensor = (20, 14)
    events = random_events(rng, 3000, sensor)
    cfg = CONFIGS[k]
    want = reference(events, cfg, sensor)
    enc = Encoder(cfg, sensor)
    cuts = np.sort(rng.integers(0, len(events), 12))
    got = []
    for chunk in np.split(events, cuts):
        got += enc.feed(chunk)
    got += enc.finish()
    assert [s for s, _ in got] == [s for s, _ in want], "steps differ"
    for (step, ids), (_, ref) in zip(got, want):
        assert list(ids) == ref, f"seed {seed}: step {step}: expected {ref}, got {list(ids)}"
    counts = enc.counts
    assert counts.events == len(events)
    assert counts.inputs == sum(len(r) for _, r in want)
    assert counts.inputs + counts.dropped() == len(events)
    assert max((int(i.max()) for _, i in got), default=0) < enc.n_inputs
    totals = np.bincount(np.concatenate([r for _, r in want]), minlength=enc.n_inputs)
    np.testing.assert_array_equal(enc.totals().ravel(), totals)


def test_bad_settings_give_clear_errors():
    with pytest.raises(ValueError, match="does not fit the 20x14 sensor"):
        Encoder(EncoderConfig(crop=(10, 0, 11, 14)), (20, 14))
    with pytest.raises(ValueError, match="polarity must be one of"):
        EncoderConfig(polarity="both")
    with pytest.raises(ValueError, match="dt must be"):
        EncoderConfig(dt_us=0)


def test_input_numbering():
    enc = Encoder(EncoderConfig(pool=(2, 2), polarity="split"), (6, 4))
    assert enc.shape == (2, 2, 3) and enc.n_inputs == 12
    events = np.zeros(2, EVENTS_DTYPE)
    events["t"] = [0, 1]
    events["x"], events["y"], events["on"] = [5, 5], [3, 3], [True, False]
    (step, ids), = enc.feed(events) + enc.finish()
    assert step == 0 and list(ids) == [5, 11]       # cell (2, 1): ON 1*3+2, OFF 6 + 5


def test_steps_counted_from_a_given_start():
    """With `start_us`, step k is [start + k·dt, start + (k+1)·dt) whatever the first event."""
    events = np.zeros(3, EVENTS_DTYPE)
    events["t"] = [2_999, 3_000, 7_500]
    events["x"] = [0, 1, 2]
    enc = Encoder(EncoderConfig(dt_us=1000, polarity="merge"), (4, 1), start_us=500)
    got = [(step, list(ids)) for step, ids in enc.feed(events[:2]) + enc.feed(events[2:])
           + enc.finish()]
    assert got == [(2, [0, 1]), (7, [2])]
    # Without a start, the first event starts step 0.
    enc = Encoder(EncoderConfig(dt_us=1000, polarity="merge"), (4, 1))
    assert [step for step, _ in enc.feed(events) + enc.finish()] == [0, 4]
    late = Encoder(EncoderConfig(), (4, 1), start_us=3_000)
    with pytest.raises(ValueError, match="event at 2999 us lies before the encoder's start"):
        late.feed(events)
    with pytest.raises(ValueError, match="start must be a time >= 0"):
        Encoder(EncoderConfig(), (4, 1), start_us=-1)


def test_memory_follows_the_events_not_the_claimed_sensor():
    """A 65535 x 65535 sensor (what crafted headers claim) with every stage on: a few events
    must not allocate per-pixel arrays of 4·10^9 entries (32 GiB)."""
    import tracemalloc
    events = np.zeros(3, EVENTS_DTYPE)
    events["t"] = [10, 20, 2000]
    events["x"], events["y"], events["on"] = [65534, 65533, 0], [65534, 65534, 0], [1, 0, 1]
    cfg = EncoderConfig(denoise_us=100, refractory_us=50, polarity="split")
    tracemalloc.start()
    try:
        enc = Encoder(cfg, (65535, 65535))
        got = enc.feed(events) + enc.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes traced"
    # Only the OFF event beside the first survives the denoiser: OFF cell (65533, 65534).
    assert enc.counts.denoised == 2
    assert [list(i) for _, i in got] == [[65535 * 65535 + 65534 * 65535 + 65533]]
