"""Supervised on-chip learning of a synthetic DVS task: bars moving in four directions.

A small self-contained event-camera generator (a bright bar crossing a 16 x 16 sensor, ON events
where a pixel brightens, OFF where it darkens, plus background noise events) makes clips of 20
steps; each pixel and polarity is one axon (512 axons). Four readout neurons learn on the chip
with the three-factor rule of `docs/plasticity.md` in its DECOLLE-like configuration: PRE TRACE,
POST SURROGATE (membrane within a window of the threshold), FACTOR ERROR (error = target spike -
output spike, the host sends the target spike train of the correct class). A clip is classified
by the readout neuron with most spikes, with learning off, on held-out clips.

Runs on the golden model (`PlasticCoreModel`, bit-exact with the gateware); `--rtl STEPS` also
runs the first STEPS training steps on the gateware under Verilator, checking every weight after
every step. Writes `docs/img/dvs_bars.png` (learning curve, example clip, learned weights).

    python examples/dvs_bars.py [--train 600] [--test 300] [--seed 1] [--rtl 150]
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

SIZE = 16
CLIP = 20            # steps with the bar moving
GAP = 6              # blank steps after a clip (state decays)
DIRECTIONS = ["right", "left", "down", "up"]
CFG = CoreConfig(n_neurons=4, n_axons=2 * SIZE * SIZE, weights_per_word=2)
RULE = dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SURROGATE, factor_mode=FactorMode.ERROR,
            m_unit=4, shift=8, x_decay=180, x_inc=100, window=300, w_min=-127, w_max=127)
PARAMS = dict(alpha=0, beta=3277, threshold=150, refractory=0)
SEED = 0x5EED


def bar_clip(rng, direction: int, noise: float = 0.01) -> list[np.ndarray]:
    """Events (axon ids) of one clip: axon = polarity * SIZE^2 + y * SIZE + x (polarity 1 = ON)."""
    width = int(rng.integers(2, 4))
    speed = rng.choice([0.75, 1.0, 1.25])
    start = rng.uniform(-width, SIZE / 2)
    coords = np.arange(SIZE)
    previous = np.zeros((SIZE, SIZE), dtype=bool)
    steps = []
    for t in range(CLIP + 1):
        pos = start + speed * t
        lit = (coords >= pos) & (coords < pos + width)           # along the motion axis
        if DIRECTIONS[direction] in ("left", "up"):
            lit = lit[::-1]
        frame = np.tile(lit, (SIZE, 1))                            # frame[y, x]: vertical bar
        if DIRECTIONS[direction] in ("down", "up"):
            frame = frame.T
        on = frame & ~previous
        off = previous & ~frame
        previous = frame
        if t == 0:
            continue
        ids = np.concatenate([SIZE * SIZE + np.flatnonzero(on), np.flatnonzero(off)])
        noise_ids = np.flatnonzero(rng.random(2 * SIZE * SIZE) < noise)
        steps.append(np.unique(np.concatenate([ids, noise_ids])))
    return steps


def make_set(rng, count: int):
    labels = rng.integers(0, len(DIRECTIONS), count)
    return [bar_clip(rng, int(label)) for label in labels], labels


def build_model():
    model = PlasticCoreModel(CFG, NeuronParams.uniform(CFG, **PARAMS))
    model.set_mask(np.ones((CFG.n_axons, CFG.n_neurons), dtype=bool))
    model.seed(SEED)
    model.configure(**RULE)
    return model


def target_train(label: int, t: int) -> list[int]:
    """The host's target spikes: the correct class fires every other step of the clip."""
    return [label] if t % 2 == 1 else []


def present(model, clip, label=None) -> np.ndarray:
    """Run one clip (with targets if `label` is given) and the gap; return spike counts."""
    counts = np.zeros(CFG.n_neurons, dtype=np.int64)
    for t, events in enumerate(clip):
        if label is not None:
            model.set_targets(target_train(label, t))
        model.events(events)
        counts[model.tick()] += 1
    for _ in range(GAP):
        model.tick()
    return counts


def accuracy(model, clips, labels) -> float:
    model.configure(enable=0)
    correct = 0
    for clip, label in zip(clips, labels):
        counts = present(model, clip)
        correct += counts.argmax() == label and counts.max() > 0 and \
            np.count_nonzero(counts == counts.max()) == 1
    model.configure(enable=1)
    return correct / len(labels)


def run(n_train: int, n_test: int, seed: int, rtl_steps: int, out: Path):
    rng = np.random.default_rng(seed)
    train, train_labels = make_set(rng, n_train)
    test, test_labels = make_set(rng, n_test)
    check, check_labels = make_set(rng, 100)
    model = build_model()
    if rtl_steps:
        check_on_gateware(train, train_labels, rtl_steps, seed)
    model.configure(enable=1)
    curve, began = [], time.time()
    for i, (clip, label) in enumerate(zip(train, train_labels)):
        present(model, clip, int(label))
        if (i + 1) % 50 == 0:
            acc = accuracy(model, check, check_labels)
            curve.append((i + 1, acc))
            print(f"  {i + 1:4d} training clips: validation accuracy {acc:.1%} "
                  f"({time.time() - began:.0f} s)", flush=True)
    test_acc = accuracy(model, test, test_labels)
    print(f"held-out accuracy on {n_test} clips (learning off): {test_acc:.1%}")
    plot(out, curve, test_acc, test[0], test_labels[0], model.weights)
    return test_acc


def check_on_gateware(train, labels, steps: int, seed: int):
    """The first training steps on the gateware; every weight compared after every step."""
    from spikeforge.hw.rtlsim import make_plastic_scenario, run_plastic_scenario
    from spikeforge.learning import Reg, bounds_word

    events, targets = [], []
    for clip, label in zip(train, labels):
        for t, ids in enumerate(clip):
            events.append(ids)
            row = np.zeros(CFG.n_neurons, dtype=np.int64)
            row[target_train(int(label), t)] = 1
            targets.append(row)
        events += [np.zeros(0, dtype=np.int64)] * GAP
        targets += [np.zeros(CFG.n_neurons, dtype=np.int64)] * GAP
        if len(events) >= steps:
            break
    events, targets = events[:steps], np.array(targets[:steps])
    writes = [(0, Reg.SEED_LO, SEED & 0xFFFF), (0, Reg.SEED_HI, SEED >> 16),
              (0, Reg.BOUNDS, bounds_word(CFG, RULE["w_min"], RULE["w_max"]))]
    writes += [(0, Reg[k.upper()], int(v) & 0xFF if k == "m_unit" else int(v))
               for k, v in RULE.items() if not k.startswith("w_")]
    writes += [(0, Reg.ENABLE, 1)]
    model = build_model()
    scenario = make_plastic_scenario(model.params, model.weights, model.mask, events, writes,
                                     targets=targets, seed=seed)
    result = run_plastic_scenario(CFG, scenario)
    print(f"gateware: {steps} training steps, {int(result['updates'].sum())} synapse updates, "
          f"every weight equal to the golden model's after every step")


def plot(out, curve, test_acc, clip, label, weights):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(14, 6))
    ax = axes[0, 0]
    clips, acc = np.array(curve).T
    ax.plot(clips, acc * 100, marker="o")
    ax.axhline(test_acc * 100, color="tab:green", ls="--", label=f"held out {test_acc:.1%}")
    ax.set(title="learning curve", xlabel="training clips", ylabel="validation accuracy (%)",
           ylim=(0, 100))
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    image = np.zeros((SIZE, SIZE))
    for t, ids in enumerate(clip):
        on = ids[ids >= SIZE * SIZE] - SIZE * SIZE
        image.flat[on] = t + 1
    ax.imshow(image, cmap="viridis")
    ax.set(title=f"test clip ({DIRECTIONS[label]}): ON event time", xticks=[], yticks=[])
    lim = np.abs(weights).max() or 1
    for n in range(CFG.n_neurons):
        for row, (name, offset) in enumerate((("ON", SIZE * SIZE), ("OFF", 0))):
            ax = axes[row, n + 1]
            ax.imshow(weights[offset:offset + SIZE * SIZE, n].reshape(SIZE, SIZE),
                      cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set(title=f"neuron '{DIRECTIONS[n]}' {name}", xticks=[], yticks=[])
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rtl", type=int, default=0, metavar="STEPS")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs/img/dvs_bars.png")
    args = parser.parse_args(argv)
    acc = run(args.train, args.test, args.seed, args.rtl, args.out)
    return 0 if acc >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
