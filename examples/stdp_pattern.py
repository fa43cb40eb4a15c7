"""STDP finds a repeating spike pattern hidden in noise (Masquelier, Guyonneau & Thorpe 2008).

One LIF neuron listens to A afferents that fire as Poisson noise. Half of them repeat one frozen
50-step spike pattern at random times (a quarter of the 50-step windows, never twice in a row);
in between, and for the other half all the time, they fire at the same rate, so the pattern is
invisible in the rates. Pair-based STDP on the chip (`docs/plasticity.md`: PRE TRACE, POST
SPIKE, FACTOR ONE, DEPRESSION) is the only learning; with `--anneal` the host also rewrites rule
registers on a fixed schedule (`ANNEAL`), never anything that depends on where the pattern is.
The goal (as in the paper): after learning (tested with learning off) the neuron fires inside the
pattern in >= 90 % of presentations and rarely outside it (below 1 spike/s). The potentiation
window is short (X_DECAY 226, tau ~ 8.5 steps, X_INC 240) next to the depression window (tau ~ 36
steps): with it the neuron can reach the selective state and keep it for tens of seconds.
Status, see `docs/plasticity.md`: reached for some seeds (the figure's and the test's), not for
others, where the neuron keeps firing 10-20 spikes/s outside the pattern.

Runs on the golden model (`PlasticCoreModel`, bit-exact with the gateware); `--rtl STEPS` also
runs the first STEPS steps on the gateware under Verilator and checks every weight after every
step. Writes `docs/img/stdp_pattern.png` and prints the figures of merit.

    python examples/stdp_pattern.py [--seconds 150] [--seed 5] [--rtl 200]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spikeforge.learning import FactorMode, PostMode, PreMode
from spikeforge.sim.plasticity import PlasticCoreModel
from spikeforge.spec import CoreConfig, NeuronParams

A = 400              # afferents
PATTERN = 50         # steps (1 step = 1 ms)
RATE = 0.025         # spikes per afferent per step (25 Hz)
TEST_STEPS = 20_000  # the test after learning, learning off
CHUNK = 5_000        # steps per point of the learning curve
CFG = CoreConfig(n_neurons=1, n_axons=A, weights_per_word=1)
RULE = dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE, factor_mode=FactorMode.ONE,
            depression=1, m_unit=1, shift=7, x_decay=226, x_inc=240, y_decay=249, y_inc=75,
            w_min=0, w_max=127)
#: `--anneal`: register writes of the host during learning (fraction of the learning time,
#: registers): after half the time, stronger depression at half the learning rate.
ANNEAL = ((0.5, dict(y_inc=85, shift=8)),)
PARAMS = dict(alpha=0, beta=3707, threshold=5500, refractory=5)
INITIAL_WEIGHTS = (40, 90)   # uniform integers in [low, high)
LFSR_SEED = 0xC0FFEE


@dataclass
class Score:
    """How selective the neuron is over a stretch of steps."""
    hits: float              # fraction of pattern presentations with at least one spike
    false_rate: float        # spikes per second outside the pattern
    false_windows: float     # fraction of the 50-step windows without the pattern with a spike
    presentations: int
    windows: int             # windows without the pattern


def make_input(seed: int, steps: int):
    """Return (raster T x A of 0/1, pattern start steps, the pattern afferents).

    The pattern, its times and the noise come from separate streams of `seed`, so a longer run
    sees the same pattern and begins with the same input as a shorter one."""
    pattern_rng, times_rng, noise_rng = (np.random.default_rng(s) for s in
                                         np.random.SeedSequence(seed).spawn(3))
    involved = pattern_rng.permutation(A)[:A // 2]
    pattern = (pattern_rng.random((PATTERN, A // 2)) < RATE).astype(np.int64)
    raster = (noise_rng.random((steps, A)) < RATE).astype(np.int64)
    starts, window, previous = [], 0, False
    while (window + 1) * PATTERN <= steps:
        if not previous and times_rng.random() < 1 / 3:    # 1/3 of free windows ~ 1/4 of all
            start = window * PATTERN
            raster[start:start + PATTERN, involved] = pattern
            starts.append(start)
            previous = True
        else:
            previous = False
        window += 1
    return raster, np.array(starts, dtype=np.int64), involved


def build_model(rng, params=None, rule=None):
    params = NeuronParams.uniform(CFG, **(params or PARAMS))
    weights = rng.integers(*INITIAL_WEIGHTS, (A, 1))
    model = PlasticCoreModel(CFG, params, weights)
    model.set_mask(np.ones((A, 1), dtype=bool))
    model.seed(LFSR_SEED)
    model.configure(**(rule or RULE))
    return model


def score(spikes, starts) -> Score:
    """Score a spike train (bool per step) against the pattern starts (steps from its start).

    The input is cut into 50-step windows, each holding a whole presentation or none."""
    steps = len(spikes) - len(spikes) % PATTERN
    per_window = spikes[:steps].reshape(-1, PATTERN).sum(axis=1)
    has_pattern = np.zeros(len(per_window), dtype=bool)
    has_pattern[np.asarray(starts, dtype=np.int64) // PATTERN] = True
    outside = per_window[~has_pattern]
    seconds_outside = len(outside) * PATTERN / 1000
    return Score(hits=float(np.mean(per_window[has_pattern] > 0)) if has_pattern.any() else 0.0,
                 false_rate=float(outside.sum() / seconds_outside) if len(outside) else 0.0,
                 false_windows=float(np.mean(outside > 0)) if len(outside) else 0.0,
                 presentations=int(has_pattern.sum()), windows=int(len(outside)))


def learn(seconds: float, seed: int, *, params=None, rule=None, schedule=(),
          rtl_steps: int = 0, progress: bool = True):
    """Learn for `seconds`, then test with learning off; return a dict of the results."""
    learn_steps = int(seconds * 1000) // CHUNK * CHUNK
    raster, starts, involved = make_input(seed, learn_steps + TEST_STEPS)
    model = build_model(np.random.default_rng([seed, 1]), params, rule)
    initial = model.weights[:, 0].copy()
    if rtl_steps:
        check_on_gateware(model, raster[:rtl_steps], seed)
    writes = {int(f * learn_steps) // CHUNK * CHUNK: regs for f, regs in schedule}
    spikes = np.zeros(len(raster), dtype=bool)
    curve = []
    model.configure(enable=1)
    bar = tqdm(total=learn_steps // 1000, unit="s", desc="learning (simulated s)",
               disable=not progress)
    for t0 in range(0, learn_steps, CHUNK):
        if t0 in writes:
            model.configure(**writes[t0])
        spikes[t0:t0 + CHUNK] = model.run(raster[t0:t0 + CHUNK])[:, 0]
        here = starts[(starts >= t0) & (starts < t0 + CHUNK)] - t0
        s = score(spikes[t0:t0 + CHUNK], here)
        curve.append((t0 + CHUNK, s.hits, s.false_rate))
        bar.update(CHUNK // 1000)
        bar.set_postfix(hits=f"{s.hits:.0%}", outside=f"{s.false_rate:.1f}/s")
    bar.close()
    model.configure(enable=0)
    spikes[learn_steps:] = model.run(raster[learn_steps:])[:, 0]
    test = score(spikes[learn_steps:], starts[starts >= learn_steps] - learn_steps)
    return dict(test=test, curve=curve, raster=raster, starts=starts, involved=involved,
                schedule=schedule,
                spikes=spikes, initial=initial, final=model.weights[:, 0].copy(),
                learn_steps=learn_steps)


def check_on_gateware(model, raster, seed: int):
    """Run the first steps on the gateware; the bench compares every weight after every step."""
    from spikeforge.hw.rtlsim import make_plastic_scenario, run_plastic_scenario
    from spikeforge.learning import Reg

    writes = [(0, Reg.SEED_LO, LFSR_SEED & 0xFFFF), (0, Reg.SEED_HI, LFSR_SEED >> 16)]
    writes += [(0, reg, model.read_register(reg)) for reg in Reg
               if reg not in (Reg.ENABLE, Reg.SEED_LO, Reg.SEED_HI, Reg.LFSR_LO, Reg.LFSR_HI,
                              Reg.EPOCH)]
    writes += [(0, Reg.ENABLE, 1)]
    events = [np.flatnonzero(row) for row in raster]
    scenario = make_plastic_scenario(model.params, model.weights, model.mask, events, writes,
                                     seed=seed, check_every=1)
    result = run_plastic_scenario(CFG, scenario)
    updates = int(result["updates"].sum())
    print(f"gateware: {len(raster)} steps, {updates} synapse updates, every weight equal to "
          f"the golden model's after every step")
    return updates


def report(result) -> str:
    t = result["test"]
    return (f"test (learning off, {TEST_STEPS / 1000:.0f} s, {t.presentations} presentations): "
            f"fires inside the pattern in {t.hits:.1%} of presentations; outside it "
            f"{t.false_rate:.2f} spikes/s, a spike in {t.false_windows:.1%} of the {t.windows} "
            f"windows without the pattern")


def plot(out, r):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raster, starts, involved, spikes = r["raster"], r["starts"], r["involved"], r["spikes"]
    t = r["test"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    ax = axes[0, 0]
    t0 = r["learn_steps"] + 1000
    shown = raster[t0:t0 + 400]
    order = np.concatenate([involved, np.setdiff1d(np.arange(A), involved)])
    ts, ks = np.nonzero(shown[:, order])
    ax.scatter(ts, ks, s=0.5, c="k")
    for s in starts[(starts >= t0) & (starts < t0 + 400)] - t0:
        ax.axvspan(s, s + PATTERN, color="tab:orange", alpha=0.3)
    for s in np.flatnonzero(spikes[t0:t0 + 400]):
        ax.axvline(s, color="tab:red", lw=1.5)
    ax.set(title="after learning: input (pattern afferents first), pattern (orange), "
                 "output spikes (red)", xlabel="step (ms)", ylabel="afferent")
    ax.title.set_fontsize(9)
    ax = axes[0, 1]
    steps, hit, false = np.array(r["curve"]).T
    ax.plot(steps / 1000, hit * 100, label="presentations with a spike (%)")
    ax.plot(steps / 1000, false, label="spikes/s outside the pattern")
    for f, _ in r["schedule"]:
        ax.axvline(f * r["learn_steps"] / 1000, color="grey", ls=":", lw=1)
    note = "; dotted: host rewrites registers" if r["schedule"] else ""
    ax.set(title=f"learning curve ({CHUNK // 1000} s windows{note})",
           xlabel="time (s)", ylim=(0, None))
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    mask = np.zeros(A, dtype=bool)
    mask[involved] = True
    ax.hist([r["final"][mask], r["final"][~mask]], bins=32, label=["pattern afferents", "others"])
    ax.hist(r["initial"], bins=32, histtype="step", color="k", label="initial")
    ax.set(title="final weights", xlabel="weight", ylabel="afferents")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.axis("off")
    ax.text(0, 0.5, f"test with learning off ({TEST_STEPS / 1000:.0f} s):\n"
                    f"{t.hits:.1%} of {t.presentations} presentations get a spike\n"
                    f"{t.false_rate:.2f} spikes/s outside the pattern\n"
                    f"{t.false_windows:.1%} of {t.windows} windows without the pattern "
                    f"get a spike", fontsize=12)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="learning time (s)")
    parser.add_argument("--seed", type=int, default=5,
                        help="input realization (pattern, times, noise) and initial weights")
    parser.add_argument("--threshold", type=int, default=PARAMS["threshold"])
    parser.add_argument("--anneal", action="store_true",
                        help="after half the learning time: Y_INC 85, SHIFT 8 (see ANNEAL)")
    parser.add_argument("--rtl", type=int, default=0, metavar="STEPS",
                        help="also check the first STEPS steps on the gateware")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs/img/stdp_pattern.png")
    args = parser.parse_args(argv)
    result = learn(args.seconds, args.seed, params=dict(PARAMS, threshold=args.threshold),
                   schedule=ANNEAL if args.anneal else (), rtl_steps=args.rtl)
    print(report(result))
    plot(args.out, result)
    t = result["test"]
    return 0 if t.hits >= 0.9 and t.false_rate < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
