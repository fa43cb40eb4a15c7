"""STDP finds a repeating spike pattern hidden in noise (Masquelier, Guyonneau & Thorpe 2008).

One LIF neuron listens to A afferents that fire as Poisson noise. Half of them repeat one frozen
50-step spike pattern at random times (a quarter of the 50-step windows, never twice in a row);
in between, and for the other half all the time, they fire at the same rate, so the pattern is
invisible in the rates. Pair-based STDP on the chip (`docs/plasticity.md`: PRE TRACE, POST
SPIKE, FACTOR ONE, DEPRESSION) is the only learning. The goal (as in the paper): after learning
(run with learning off) the neuron fires inside the pattern in >= 90 % of presentations and
rarely outside it (here: below 1 spike/s). Status, see docs/plasticity.md: the hit rate is
reached, the false-alarm rate is not yet (about 11 spikes/s with these parameters).

Runs on the golden model (`PlasticCoreModel`, bit-exact with the gateware); `--rtl STEPS` also
runs the first STEPS steps on the gateware under Verilator and checks every weight after every
step. Writes `docs/img/stdp_pattern.png` and prints the figures of merit.

    python examples/stdp_pattern.py [--seconds 150] [--seed 1] [--rtl 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from spikeforge.learning import FactorMode, PostMode, PreMode
from spikeforge.sim.plasticity import PlasticCoreModel
from spikeforge.spec import CoreConfig, NeuronParams

A = 400              # afferents
PATTERN = 50         # steps (1 step = 1 ms)
RATE = 0.025         # spikes per afferent per step (25 Hz)
CFG = CoreConfig(n_neurons=1, n_axons=A, weights_per_word=1)
RULE = dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE, factor_mode=FactorMode.ONE,
            depression=1, m_unit=1, shift=7, x_decay=241, x_inc=120, y_decay=249, y_inc=75,
            w_min=0, w_max=127)
PARAMS = dict(alpha=0, beta=3707, threshold=4500, refractory=5)


def make_input(rng, steps: int):
    """Return (raster T x A of 0/1, pattern start steps, the pattern afferents)."""
    raster = (rng.random((steps, A)) < RATE).astype(np.int64)
    involved = rng.permutation(A)[:A // 2]
    pattern = (rng.random((PATTERN, A // 2)) < RATE).astype(np.int64)
    starts, window, previous = [], 0, False
    while (window + 1) * PATTERN <= steps:
        if not previous and rng.random() < 1 / 3:    # 1/3 of free windows ~ 1/4 of all
            start = window * PATTERN
            raster[start:start + PATTERN, involved] = pattern
            starts.append(start)
            previous = True
        else:
            previous = False
        window += 1
    return raster, np.array(starts), involved


def build_model(rng):
    params = NeuronParams.uniform(CFG, **PARAMS)
    weights = rng.integers(40, 90, (A, 1))
    model = PlasticCoreModel(CFG, params, weights)
    model.set_mask(np.ones((A, 1), dtype=bool))
    model.seed(0xC0FFEE)
    model.configure(**RULE)
    return model


def score(spikes, starts, steps):
    """Hit rate (a spike inside a presentation) and false alarms (spikes outside) per second."""
    inside = np.zeros(steps, dtype=bool)
    for s in starts:
        inside[s:s + PATTERN] = True
    times = np.flatnonzero(spikes)
    hits = np.mean([spikes[s:s + PATTERN].any() for s in starts]) if len(starts) else 0.0
    outside = int(np.count_nonzero(~inside[times]))
    return float(hits), outside / (np.count_nonzero(~inside) / 1000), times


def run(seconds: float, seed: int, rtl_steps: int, out: Path):
    rng = np.random.default_rng(seed)
    learn_steps, test_steps = int(seconds * 1000), 20_000
    raster, starts, involved = make_input(rng, learn_steps + test_steps)
    model = build_model(rng)
    initial = model.weights[:, 0].copy()
    if rtl_steps:
        check_on_gateware(model, raster[:rtl_steps], seed)
    spikes = np.zeros(len(raster), dtype=bool)
    began, chunk = time.time(), 5000
    curve = []
    model.configure(enable=1)
    for t0 in range(0, learn_steps, chunk):
        spikes[t0:t0 + chunk] = model.run(raster[t0:min(t0 + chunk, learn_steps)])[:, 0]
        window = [s for s in starts if t0 <= s < t0 + chunk]
        hits, false_rate, _ = score(spikes[t0:t0 + chunk], np.array(window) - t0, chunk)
        curve.append((t0 + chunk, hits, false_rate))
        print(f"  learning {(t0 + chunk) / 1000:6.1f} s: hits {hits:5.1%}, "
              f"{false_rate:5.1f} spikes/s outside the pattern "
              f"({time.time() - began:.0f} s)", flush=True)
    model.configure(enable=0)
    test = model.run(raster[learn_steps:])[:, 0]
    spikes[learn_steps:] = test
    test_starts = starts[starts >= learn_steps] - learn_steps
    hits, false_rate, times = score(test, test_starts, test_steps)
    print(f"test (learning off, {test_steps / 1000:.0f} s, {len(test_starts)} presentations): "
          f"neuron fires inside the pattern in {hits:.1%} of presentations; "
          f"{false_rate:.2f} spikes/s outside it")
    plot(out, raster, starts, involved, spikes, initial, model.weights[:, 0], curve,
         learn_steps, hits, false_rate)
    return hits, false_rate


def check_on_gateware(model, raster, seed):
    """Run the first steps on the gateware; the bench compares every weight after every step."""
    from spikeforge.hw.rtlsim import make_plastic_scenario, run_plastic_scenario
    from spikeforge.learning import Reg, bounds_word

    writes = [(0, Reg.SEED_LO, 0xC0FFEE & 0xFFFF), (0, Reg.SEED_HI, 0xC0FFEE >> 16),
              (0, Reg.BOUNDS, bounds_word(CFG, RULE["w_min"], RULE["w_max"]))]
    writes += [(0, Reg[k.upper()], int(v)) for k, v in RULE.items() if not k.startswith("w_")]
    writes += [(0, Reg.ENABLE, 1)]
    events = [np.flatnonzero(row) for row in raster]
    scenario = make_plastic_scenario(model.params, model.weights, model.mask, events, writes,
                                     seed=seed, check_every=1)
    result = run_plastic_scenario(CFG, scenario)
    print(f"gateware: {len(raster)} steps, {int(result['updates'].sum())} synapse updates, "
          f"every weight equal to the golden model's after every step")


def plot(out, raster, starts, involved, spikes, initial, final, curve, learn_steps, hits,
         false_rate):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    ax = axes[0, 0]
    t0 = learn_steps + 1000
    shown = raster[t0:t0 + 400]
    order = np.concatenate([involved, np.setdiff1d(np.arange(A), involved)])
    ts, ks = np.nonzero(shown[:, order])
    ax.scatter(ts, ks, s=0.5, c="k")
    for s in starts[(starts >= t0) & (starts < t0 + 400)] - t0:
        ax.axvspan(s, s + PATTERN, color="tab:orange", alpha=0.3)
    for t in np.flatnonzero(spikes[t0:t0 + 400]):
        ax.axvline(t, color="tab:red", lw=1.5)
    ax.set(title="after learning: input (pattern afferents first), pattern (orange), "
                 "output spikes (red)", xlabel="step (ms)", ylabel="afferent")
    ax.title.set_fontsize(9)
    ax = axes[0, 1]
    steps, hit, false = np.array(curve).T
    ax.plot(steps / 1000, hit * 100, label="presentations with a spike (%)")
    ax.plot(steps / 1000, false, label="spikes/s outside the pattern")
    ax.set(title="learning curve (5 s windows)", xlabel="time (s)", ylim=(0, None))
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    mask = np.zeros(A, dtype=bool)
    mask[involved] = True
    ax.hist([final[mask], final[~mask]], bins=32, label=["pattern afferents", "others"])
    ax.hist(initial, bins=32, histtype="step", color="k", label="initial")
    ax.set(title="final weights", xlabel="weight", ylabel="afferents")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.axis("off")
    ax.text(0, 0.5, f"test with learning off:\n{hits:.1%} of presentations get a spike\n"
                    f"{false_rate:.2f} spikes/s outside the pattern", fontsize=12)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="learning time (s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rtl", type=int, default=0, metavar="STEPS",
                        help="also check the first STEPS steps on the gateware")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs/img/stdp_pattern.png")
    args = parser.parse_args(argv)
    hits, false_rate = run(args.seconds, args.seed, args.rtl, args.out)
    return 0 if hits >= 0.9 and false_rate < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
