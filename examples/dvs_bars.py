"""Supervised on-chip learning of a synthetic DVS task: bars moving in four directions.

The data are event files. The project's synthetic event camera (`spikefab.host.synthetic.
moving_bar`) films clips of a bar (4-6 px thick, three speeds, random start) crossing a 32 x 32
sensor to the right, left, down or up, with background noise; each data set (train, validation,
test) is one AEDAT4 recording written by faery (`host.events.write_recording`) plus a CSV of
clip start times and directions. The example then reads the recordings back
(`host.events.open_recording`) and encodes them like any camera file (`host.encode.Encoder`:
2 x 2 pooling, ON and OFF channels, 1 ms steps): 2 x 16 x 16 = 512 axons.

Four readout neurons learn on the chip with the three-factor rule of `docs/plasticity.md` in its
DECOLLE-like configuration: PRE TRACE, POST SURROGATE (membrane within a window of the
threshold), FACTOR ERROR (error = target spike - output spike; the host sends the target spike
train of the correct class). A clip is classified by the readout neuron with most spikes, with
learning off.

Runs on the golden model (`PlasticCoreModel`, bit-exact with the gateware); `--rtl STEPS` also
runs the first STEPS training steps on the gateware under Verilator, checking every weight after
every step. Writes `docs/img/dvs_bars.png` (learning curve, example clip, learned weights);
`--data DIR` keeps the event files there (default: a temporary directory).

    python examples/dvs_bars.py [--train 1500] [--val 100] [--test 300] [--seed 1] [--rtl 104]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spikefab.host.encode import Encoder, EncoderConfig
from spikefab.host.events import open_recording, write_recording
from spikefab.host.synthetic import moving_bar
from spikefab.learning import FactorMode, PostMode, PreMode
from spikefab.sim.plasticity import PlasticCoreModel
from spikefab.spec import CoreConfig, NeuronParams

SENSOR = 32                       # pixels per side
POOL = 2                          # pixels per input cell side
CELLS = SENSOR // POOL
DT_US = 1000                      # one time step
CLIP = 20                         # steps with the bar moving
GAP = 6                           # blank steps after a clip (state decays)
PERIOD_US = (CLIP + GAP) * DT_US  # clip k starts at k * PERIOD_US in its recording
DIRECTIONS = ("right", "left", "down", "up")
SPEEDS = (1.5, 2.0, 2.5)          # pixels per ms
NOISE_HZ = 5.0                    # background events per pixel and second
ENCODER = EncoderConfig(dt_us=DT_US, pool=(POOL, POOL), polarity="split", refractory_us=DT_US)
CFG = CoreConfig(n_neurons=4, n_axons=2 * CELLS * CELLS, weights_per_word=2)
RULE = dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SURROGATE, factor_mode=FactorMode.ERROR,
            m_unit=4, shift=8, x_decay=180, x_inc=100, window=300, w_min=-127, w_max=127)
PARAMS = dict(alpha=0, beta=3277, threshold=150, refractory=0)
SEED = 0x5EED
#: Learning-rate schedule: (fraction of the training clips, SHIFT) written by the host.
SCHEDULE = ((0.0, 8), (0.25, 9), (0.5, 10), (0.75, 11))


@dataclass
class DataSet:
    """Clips read back from a recording: `clips[k][t]` are the axon ids of step t of clip k."""
    recording: Path
    clips: list
    labels: np.ndarray
    events: int                   # events in the file


def film(path: Path, count: int, rng, directions=DIRECTIONS) -> Path:
    """Write `count` labelled clips as one AEDAT4 recording and a CSV of (start_us, direction);
    `directions` are names of `synthetic.DIRECTIONS` or angles in degrees."""
    labels = rng.integers(0, len(directions), count)
    parts, rows = [], []
    for k, label in enumerate(labels):
        thickness = float(rng.integers(4, 7))
        parts.append(moving_bar(
            SENSOR, SENSOR, direction=directions[label], speed=float(rng.choice(SPEEDS)),
            start=float(rng.uniform(-thickness, SENSOR / 2)), thickness=thickness,
            duration_us=CLIP * DT_US, noise_hz=NOISE_HZ, t0_us=k * PERIOD_US, seed=rng))
        rows.append((k * PERIOD_US, directions[label]))
    write_recording(path, np.concatenate(parts), (SENSOR, SENSOR))
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([("start_us", "direction"), *rows])
    return path


def load(path: Path, encoding: EncoderConfig = ENCODER, n_inputs: int = CFG.n_axons,
         directions=DIRECTIONS) -> DataSet:
    """Read a recording and its labels (indices into `directions`) back and encode it into
    per-step axon ids (`encoding`, which must give `n_inputs` inputs)."""
    with open(path.with_suffix(".csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    starts = [int(row["start_us"]) // DT_US for row in rows]
    names = [str(d) for d in directions]
    labels = np.array([names.index(row["direction"]) for row in rows])
    rec = open_recording(path)
    encoder = Encoder(encoding, (rec.width, rec.height), start_us=0)
    if encoder.n_inputs != n_inputs:
        raise ValueError(f"{path}: encodes to {encoder.n_inputs} inputs, not {n_inputs}")
    steps = {}
    for chunk in rec.chunks():
        steps.update(encoder.feed(chunk))
    steps.update(encoder.finish())
    empty = np.zeros(0, dtype=np.int64)
    clips = [[steps.get(s + t, empty) for t in range(CLIP)] for s in starts]
    return DataSet(path, clips, labels, encoder.counts.events)


def make_data(folder: Path, sizes: dict, seed: int, encoding: EncoderConfig = ENCODER,
              n_inputs: int = CFG.n_axons, directions=DIRECTIONS) -> dict:
    """Film and read back each data set (one recording per set; `load` for the encoding)."""
    rng = np.random.default_rng(seed)
    data = {}
    for name, count in sizes.items():
        path = film(folder / f"bars_{name}.aedat4", count, rng, directions)
        data[name] = load(path, encoding, n_inputs, directions)
        print(f"{name}: {count} clips, {data[name].events} events in {path.name} "
              f"({path.stat().st_size // 1024} kB), read back and encoded", flush=True)
    return data


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


def accuracy(model, data: DataSet) -> float:
    """Fraction of clips whose own class's neuron fires most, alone (learning off)."""
    model.configure(enable=0)
    correct = 0
    for clip, label in zip(data.clips, data.labels):
        counts = present(model, clip)
        correct += counts.argmax() == label and counts.max() > 0 and \
            np.count_nonzero(counts == counts.max()) == 1
    model.configure(enable=1)
    return correct / len(data.labels)


def learn(data: dict, every: int = 100, schedule=None):
    """Train on data['train'], validating every `every` clips; return (model, curve).

    `schedule`: ((fraction of the training clips, learning-rate shift), ...): the host rewrites
    the SHIFT register when training reaches that fraction (a decaying learning rate)."""
    model = build_model()
    model.configure(enable=1)
    curve = []
    train = data["train"]
    n = len(train.labels)
    shifts = {int(round(f * n)): shift for f, shift in (schedule or SCHEDULE)}
    bar = tqdm(total=len(train.labels), unit="clip", desc="training")
    for i, (clip, label) in enumerate(zip(train.clips, train.labels)):
        if i in shifts:
            model.configure(shift=shifts[i])
        present(model, clip, int(label))
        bar.update()
        if (i + 1) % every == 0 or i + 1 == len(train.labels):
            acc = accuracy(model, data["val"])
            curve.append((i + 1, acc))
            bar.set_postfix(validation=f"{acc:.1%}")
            tqdm.write(f"  {i + 1:4d} training clips: validation accuracy {acc:.1%}")
    bar.close()
    return model, curve


def run(sizes: dict, seed: int, rtl_steps: int, out: Path, folder: Path | None):
    with tempfile.TemporaryDirectory() as temp:
        folder = folder or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        data = make_data(folder, sizes, seed)
    if rtl_steps:
        check_on_gateware(data["train"], rtl_steps)
    model, curve = learn(data)
    test_acc = accuracy(model, data["test"])
    print(f"held-out accuracy on {len(data['test'].labels)} clips (learning off): {test_acc:.1%}")
    plot(out, curve, test_acc, data["test"], model.weights)
    return test_acc


def check_on_gateware(train: DataSet, steps: int):
    """The first training steps on the gateware; every weight compared after every step."""
    from spikefab.learning import Reg, bounds_word
    from spikefab.verify.rtlsim import make_plastic_scenario, run_plastic_scenario

    events, targets = [], []
    for clip, label in zip(train.clips, train.labels):
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
                                     targets=targets, seed=SEED)
    result = run_plastic_scenario(CFG, scenario)
    updates = int(result["updates"].sum())
    print(f"gateware: {len(events)} training steps, {sum(len(e) for e in events)} input events, "
          f"{updates} synapse updates, every weight equal to the golden model's after every step")
    return updates


def plot(out, curve, test_acc, test: DataSet, weights):
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
    image = np.zeros((CELLS, CELLS))
    for t, ids in enumerate(test.clips[0]):
        image.flat[ids[ids < CELLS * CELLS]] = t + 1          # ON cells come first
    ax.imshow(image, cmap="viridis")
    ax.set(title=f"test clip ({DIRECTIONS[test.labels[0]]}): ON event step", xticks=[],
           yticks=[])
    lim = np.abs(weights).max() or 1
    for n in range(CFG.n_neurons):
        for row, (name, offset) in enumerate((("ON", 0), ("OFF", CELLS * CELLS))):
            ax = axes[row, n + 1]
            ax.imshow(weights[offset:offset + CELLS * CELLS, n].reshape(CELLS, CELLS),
                      cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set(title=f"neuron '{DIRECTIONS[n]}' {name}", xticks=[], yticks=[])
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1500, help="training clips")
    parser.add_argument("--val", type=int, default=100, help="validation clips (learning curve)")
    parser.add_argument("--test", type=int, default=300, help="held-out test clips")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rtl", type=int, default=0, metavar="STEPS",
                        help="also check the first STEPS training steps on the gateware")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="keep the event files (recordings and labels) in DIR")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs/img/dvs_bars.png")
    args = parser.parse_args(argv)
    sizes = {"train": args.train, "val": args.val, "test": args.test}
    acc = run(sizes, args.seed, args.rtl, args.out, args.data)
    return 0 if acc >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
