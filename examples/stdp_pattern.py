"""STDP finds a repeating spike pattern hidden in noise (Masquelier, Guyonneau & Thorpe 2008).

A few LIF neurons (`NEURONS`) listen to A afferents that fire as Poisson noise. Half of them
repeat one frozen 50-step spike pattern at random times (a quarter of the 50-step windows, never
twice in a row); in between, and for the other half all the time, they fire at the same rate, so
the pattern is invisible in the rates. Pair-based STDP on the chip (`docs/plasticity.md`: PRE
TRACE, POST SPIKE, FACTOR ONE, DEPRESSION) is the only learning; with `--anneal` the host also
rewrites rule registers on a fixed schedule (`ANNEAL`), never anything that depends on where the
pattern is. The potentiation window is short (X_DECAY 226, tau ~ 8.5 steps, X_INC 240) next to
the depression window (tau ~ 36 steps).

The neurons compete through lateral inhibition, as in Masquelier & Thorpe's competitive
networks, built the way the chip builds recurrence: the router delivers each output spike of
step t to `INH_FANOUT` axons of the same core at step t + 1, whose weights are fixed (mask 0,
never learned) and negative (`INH_WEIGHT`) onto every other neuron. `run_network` feeds the
core model exactly those events. The goal (as in the paper): after learning (tested with
learning off) some neuron fires inside the pattern in >= 90 % of presentations and rarely
outside it (at most 1 spike/s). The neuron reported is chosen on the last learning chunk,
before the test. Status over seeds: see `docs/plasticity.md`.

Runs on the golden model (`PlasticCoreModel`, bit-exact with the gateware); `--rtl STEPS` also
runs the first STEPS steps on the gateware under Verilator and checks every weight after every
step (the recurrent axons driven by the model's spikes of the step before, as input events:
what the router delivers). Writes `docs/img/stdp_pattern.png` and prints the figures of merit.

    python examples/stdp_pattern.py [--seconds 150] [--seed 1] [--neurons 6] [--rtl 200]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spikefab.learning import FactorMode, PostMode, PreMode
from spikefab.sim.plasticity import PlasticCoreModel
from spikefab.spec import CoreConfig, NeuronParams

A = 400              # afferents
PATTERN = 50         # steps (1 step = 1 ms)
RATE = 0.025         # spikes per afferent per step (25 Hz)
TEST_STEPS = 20_000  # the test after learning, learning off
CHUNK = 5_000        # steps per point of the learning curve
NEURONS = 6          # output neurons competing through lateral inhibition
INH_FANOUT = 32      # recurrent axons per output neuron (the router's fan-out of its spike)
INH_WEIGHT = -128    # fixed (mask 0) weight of a recurrent axon onto every other neuron
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


def core_config(neurons: int, fanout: int) -> CoreConfig:
    """The core: A input axons, then `fanout` recurrent axons per output neuron."""
    return CoreConfig(n_neurons=neurons, n_axons=A + neurons * fanout, weights_per_word=1)


def recurrent_axons(spiking, fanout: int):
    """The axons the router delivers neuron spikes to at the next step (`fanout` per neuron)."""
    spiking = np.asarray(spiking, dtype=np.int64)
    return (A + spiking[:, None] * fanout + np.arange(fanout)[None, :]).ravel()


def build_model(rng, params=None, rule=None, neurons=NEURONS, fanout=INH_FANOUT,
                inh_weight=INH_WEIGHT):
    """The plastic core: random plastic input weights, fixed lateral inhibition (mask 0)."""
    cfg = core_config(neurons, fanout)
    params = NeuronParams.uniform(cfg, **(params or PARAMS))
    weights = np.zeros((cfg.n_axons, neurons), dtype=np.int64)
    weights[:A] = rng.integers(*INITIAL_WEIGHTS, (A, neurons))
    for k in range(neurons):
        weights[recurrent_axons([k], fanout)] = inh_weight
        weights[recurrent_axons([k], fanout), k] = 0      # no self-inhibition
    model = PlasticCoreModel(cfg, params, weights)
    mask = np.zeros((cfg.n_axons, neurons), dtype=bool)
    mask[:A] = True
    model.set_mask(mask)
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


def run_network(model, raster, fanout: int, previous=(), events=None):
    """Run one step per row of `raster`; return (spikes T x N bool, the last step's spike ids).

    Step t's output spikes reach the recurrent axons at step t + 1 (`recurrent_axons`), after
    the step's input events, as the router delivers them on the chip; `previous` are the spike
    ids of the step before `raster`'s first. With `events` (a list), append each step's axons."""
    spikes = np.zeros((len(raster), model.cfg.n_neurons), dtype=bool)
    previous = np.asarray(previous, dtype=np.int64)
    for t, row in enumerate(raster):
        axons = np.concatenate([np.flatnonzero(row), recurrent_axons(previous, fanout)])
        if events is not None:
            events.append(axons)
        model.events(axons)
        previous = model.tick()
        spikes[t, previous] = True
    return spikes, previous


def best_neuron(spikes, starts) -> int:
    """The neuron that marks the pattern best: most hits minus windows without it that it hits."""
    scores = [score(spikes[:, k], starts) for k in range(spikes.shape[1])]
    return int(np.argmax([s.hits - s.false_windows for s in scores]))


def learn(seconds: float, seed: int, *, params=None, rule=None, schedule=(),
          neurons: int = NEURONS, fanout: int = INH_FANOUT, inh_weight: int = INH_WEIGHT,
          rtl_steps: int = 0, progress: bool = True):
    """Learn for `seconds`, then test with learning off; return a dict of the results.

    The neuron reported (`best`) is chosen on the last learning chunk (learning on), before the
    test, so the test's numbers are not a pick among the test's own outcomes."""
    learn_steps = int(seconds * 1000) // CHUNK * CHUNK
    raster, starts, involved = make_input(seed, learn_steps + TEST_STEPS)
    model = build_model(np.random.default_rng([seed, 1]), params, rule, neurons, fanout,
                        inh_weight)
    initial = model.weights[:A].copy()
    if rtl_steps:
        check_on_gateware(build_model(np.random.default_rng([seed, 1]), params, rule, neurons,
                                      fanout, inh_weight), raster[:rtl_steps], seed, fanout)
    writes = {int(f * learn_steps) // CHUNK * CHUNK: regs for f, regs in schedule}
    spikes = np.zeros((len(raster), neurons), dtype=bool)
    curve = []
    previous = ()
    model.configure(enable=1)
    bar = tqdm(total=learn_steps // 1000, unit="s", desc="learning (simulated s)",
               disable=not progress)
    for t0 in range(0, learn_steps, CHUNK):
        if t0 in writes:
            model.configure(**writes[t0])
        spikes[t0:t0 + CHUNK], previous = run_network(model, raster[t0:t0 + CHUNK], fanout,
                                                      previous)
        here = starts[(starts >= t0) & (starts < t0 + CHUNK)] - t0
        chunk = [score(spikes[t0:t0 + CHUNK, k], here) for k in range(neurons)]
        curve.append((t0 + CHUNK, [s.hits for s in chunk], [s.false_rate for s in chunk]))
        lead = chunk[best_neuron(spikes[t0:t0 + CHUNK], here)]
        bar.update(CHUNK // 1000)
        bar.set_postfix(hits=f"{lead.hits:.0%}", outside=f"{lead.false_rate:.1f}/s")
    bar.close()
    last = learn_steps - CHUNK
    best = (best_neuron(spikes[last:learn_steps], starts[(starts >= last) & (starts <
                                                                             learn_steps)] - last)
            if learn_steps else 0)
    model.configure(enable=0)
    spikes[learn_steps:], _ = run_network(model, raster[learn_steps:], fanout, previous)
    test_starts = starts[starts >= learn_steps] - learn_steps
    tests = [score(spikes[learn_steps:, k], test_starts) for k in range(neurons)]
    return dict(test=tests[best], tests=tests, best=best, curve=curve, raster=raster,
                starts=starts, involved=involved, schedule=schedule, spikes=spikes,
                initial=initial, final=model.weights[:A].copy(), learn_steps=learn_steps)


def check_on_gateware(model, raster, seed: int, fanout: int):
    """Run the first steps on the gateware; the bench compares every weight after every step.

    The recurrent axons are driven by the golden model's own spikes of the previous step, as
    input events: what the router would deliver on the chip."""
    from spikefab.learning import Reg
    from spikefab.verify.rtlsim import make_plastic_scenario, run_plastic_scenario

    writes = [(0, Reg.SEED_LO, LFSR_SEED & 0xFFFF), (0, Reg.SEED_HI, LFSR_SEED >> 16)]
    writes += [(0, reg, model.read_register(reg)) for reg in Reg
               if reg not in (Reg.ENABLE, Reg.SEED_LO, Reg.SEED_HI, Reg.LFSR_LO, Reg.LFSR_HI,
                              Reg.EPOCH)]
    writes += [(0, Reg.ENABLE, 1)]
    params, weights, mask = model.params, model.weights.copy(), model.mask.copy()
    events = []
    model.configure(enable=1)
    spikes, _ = run_network(model, raster, fanout, events=events)
    scenario = make_plastic_scenario(params, weights, mask, events, writes, seed=seed,
                                     check_every=1)
    result = run_plastic_scenario(model.cfg, scenario)
    updates = int(result["updates"].sum())
    print(f"gateware: {len(raster)} steps, {updates} synapse updates, "
          f"{int(spikes.sum())} output spikes fed back to {fanout} inhibitory axons each, every "
          f"weight equal to the golden model's after every step")
    return updates


def report(result) -> str:
    t, best = result["test"], result["best"]
    others = ", ".join(f"{s.hits:.0%} / {s.false_rate:.1f}" for k, s in enumerate(result["tests"])
                       if k != best)
    return (f"test (learning off, {TEST_STEPS / 1000:.0f} s, {t.presentations} presentations): "
            f"neuron {best} (chosen on the last learning chunk) fires inside the pattern in "
            f"{t.hits:.1%} of presentations; outside it {t.false_rate:.2f} spikes/s, a spike in "
            f"{t.false_windows:.1%} of the {t.windows} windows without the pattern"
            + (f"; the other neurons (hits / outside): {others}" if others else ""))


def selective(score: Score) -> bool:
    """The paper's goal: >= 90 % of the presentations, at most 1 spike/s outside the pattern."""
    return score.hits >= 0.9 and score.false_rate <= 1.0


def plot(out, r):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raster, starts, involved, spikes = r["raster"], r["starts"], r["involved"], r["spikes"]
    t, best = r["test"], r["best"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    ax = axes[0, 0]
    t0 = r["learn_steps"] + 1000
    shown = raster[t0:t0 + 400]
    order = np.concatenate([involved, np.setdiff1d(np.arange(A), involved)])
    ts, ks = np.nonzero(shown[:, order])
    ax.scatter(ts, ks, s=0.5, c="k")
    for s in starts[(starts >= t0) & (starts < t0 + 400)] - t0:
        ax.axvspan(s, s + PATTERN, color="tab:orange", alpha=0.3)
    for k in range(spikes.shape[1]):
        for s in np.flatnonzero(spikes[t0:t0 + 400, k]):
            ax.axvline(s, color="tab:red" if k == best else "tab:blue",
                       lw=1.5 if k == best else 0.8, ls="-" if k == best else "--")
    ax.set(title=f"after learning: input (pattern afferents first), pattern (orange),\n"
                 f"spikes of neuron {best} (red) and of the others (blue)", xlabel="step (ms)",
           ylabel="afferent")
    ax.title.set_fontsize(9)
    ax = axes[0, 1]
    steps = np.array([c[0] for c in r["curve"]]) / 1000
    hits = np.array([c[1] for c in r["curve"]]) * 100
    false = np.array([c[2] for c in r["curve"]])
    for k in range(hits.shape[1]):
        if k != best:
            ax.plot(steps, hits[:, k], color="tab:blue", alpha=0.25, lw=0.8)
            ax.plot(steps, false[:, k], color="tab:orange", alpha=0.25, lw=0.8)
    ax.plot(steps, hits[:, best], color="tab:blue",
            label=f"neuron {best}: presentations with a spike (%)")
    ax.plot(steps, false[:, best], color="tab:orange",
            label=f"neuron {best}: spikes/s outside the pattern")
    for f, _ in r["schedule"]:
        ax.axvline(f * r["learn_steps"] / 1000, color="grey", ls=":", lw=1)
    note = "; dotted: host rewrites registers" if r["schedule"] else ""
    ax.set(title=f"learning curve ({CHUNK // 1000} s windows; faint: the other neurons{note})",
           xlabel="time (s)", ylim=(0, None))
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    mask = np.zeros(A, dtype=bool)
    mask[involved] = True
    final = r["final"][:, best]
    ax.hist([final[mask], final[~mask]], bins=32, label=["pattern afferents", "others"])
    ax.hist(r["initial"][:, best], bins=32, histtype="step", color="k", label="initial")
    ax.set(title=f"final input weights of neuron {best}", xlabel="weight", ylabel="afferents")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.axis("off")
    lines = [f"test with learning off ({TEST_STEPS / 1000:.0f} s), neuron {best}:",
             f"{t.hits:.1%} of {t.presentations} presentations get a spike",
             f"{t.false_rate:.2f} spikes/s outside the pattern",
             f"{t.false_windows:.1%} of {t.windows} windows without the pattern get a spike",
             "", "all neurons (hits / spikes/s outside):"]
    lines += [f"  {k}: {s.hits:.0%} / {s.false_rate:.2f}" for k, s in enumerate(r["tests"])]
    ax.text(0, 0.5, "\n".join(lines), fontsize=11, va="center")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="learning time (s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="input realization (pattern, times, noise) and initial weights")
    parser.add_argument("--threshold", type=int, default=PARAMS["threshold"])
    parser.add_argument("--neurons", type=int, default=NEURONS,
                        help="output neurons with lateral inhibition (1: a single neuron)")
    parser.add_argument("--fanout", type=int, default=INH_FANOUT,
                        help=f"inhibitory axons per neuron (weight {INH_WEIGHT} each)")
    parser.add_argument("--anneal", action="store_true",
                        help="after half the learning time: Y_INC 85, SHIFT 8 (see ANNEAL)")
    parser.add_argument("--rtl", type=int, default=0, metavar="STEPS",
                        help="also check the first STEPS steps on the gateware")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs/img/stdp_pattern.png")
    args = parser.parse_args(argv)
    result = learn(args.seconds, args.seed, params=dict(PARAMS, threshold=args.threshold),
                   schedule=ANNEAL if args.anneal else (), neurons=args.neurons,
                   fanout=args.fanout, rtl_steps=args.rtl)
    print(report(result))
    plot(args.out, result)
    return 0 if selective(result["test"]) else 1


if __name__ == "__main__":
    sys.exit(main())
