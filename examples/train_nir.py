"""Train an SNN with surrogate gradients in snnTorch, export it to NIR, deploy it with spikefab.

The task is the direction of motion of a bar, eight directions 45 degrees apart, filmed by the
project's synthetic event camera and read back from AEDAT4 files, as in `examples/dvs_bars.py`
(whose filming and encoding this reuses), here pooled 4 x 4: 2 x 8 x 8 = 128 inputs, 20 steps of
1 ms, bars 4-6 px thick at three speeds from random starts, with background noise.

1. Train 128 -> 32 LIF -> 8 LIF in snnTorch (`Leaky`, beta 0.9, threshold 1, zero reset) by
   BPTT with a fast-sigmoid surrogate; the class is the output neuron with the most spikes
   (cross-entropy on the spike counts).
2. Export the trained weights to NIR ourselves (snnTorch 1.0's own export fails with nir 1.0.8,
   ../shared/TOOLCHAIN.md): LIF nodes with tau = dt / (1 - beta), r = tau / dt, as snnTorch
   writes them; dt = 1 ms in the metadata. Written to `examples/models/bars_direction.nir`.
3. Import it with `spikefab.nir.load` (8-bit weights, per-population scale), run the test set on
   the batched golden model, and the first `--rtl` clips bit-exactly on the gateware
   (`host.network.run_on_rtl`, every reply byte checked against the model).
4. Report float accuracy (snnTorch), quantised accuracy (golden model) and their difference;
   if post-training quantisation loses more than 1 point, fine-tune with fake-quantised
   weights in the loop (`--qat` epochs) and export again. Writes `docs/img/train_nir.png`.

    nice python examples/train_nir.py [--train 2000] [--test 500] [--epochs 8] [--rtl 8]

Needs the optional peers (torch, snnTorch: `pip install -e .[torch]`). About 20 s of CPU, plus
one Verilator build of the small chip the first time `--rtl` runs (cached).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dvs_bars  # noqa: E402  (the filming and encoding of the DVS example)

from spikefab.host.encode import EncoderConfig  # noqa: E402
from spikefab.spec import ChipConfig, CoreConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "bars_direction.nir"
PLOT = ROOT / "docs" / "img" / "train_nir.png"
POOL = 4
CELLS = dvs_bars.SENSOR // POOL
#: Eight directions of motion, in degrees (0 = right, 90 = down).
DIRECTIONS = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0)
N_IN, N_HIDDEN, N_OUT = 2 * CELLS * CELLS, 16, len(DIRECTIONS)
#: Steps of each clip the network sees: a short glimpse (the bar moves 1.5-2.5 px a step).
STEPS = 6
DT = dvs_bars.DT_US * 1e-6
BETA = 0.9
ENCODING = EncoderConfig(dt_us=dvs_bars.DT_US, pool=(POOL, POOL), polarity="split",
                         refractory_us=dvs_bars.DT_US)
#: A small chip for the gateware check: the hidden layer on core 0, the readout on core 1.
RTL_CHIP = ChipConfig(core=CoreConfig(n_neurons=N_HIDDEN, n_axons=N_IN, weights_per_word=2),
                      n_cores=2, n_inputs=N_IN, route_entries=256, max_host_events=N_IN,
                      host_buffer=64)


def rasters(data) -> np.ndarray:
    """B x (STEPS + 1) x N_IN event counts of the first STEPS steps of every clip; the extra
    empty step lets the readout see the hidden layer's last spikes (one step per population hop
    on the chip)."""
    out = np.zeros((len(data.clips), STEPS + 1, N_IN), dtype=np.int64)
    for k, clip in enumerate(data.clips):
        for t, ids in enumerate(clip[:STEPS]):
            np.add.at(out[k, t], ids, 1)
    return out


def film(sizes: dict, seed: int, folder: Path | None) -> dict:
    """Film, write, read back and encode the data sets -> name -> (rasters, labels)."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(folder or tmp)
        where.mkdir(parents=True, exist_ok=True)
        data = dvs_bars.make_data(where, sizes, seed, ENCODING, N_IN, DIRECTIONS)
        return {name: (rasters(d), d.labels) for name, d in data.items()}


# Training (snnTorch) -------------------------------------------------------------------------

def build(torch, snn):
    from snntorch import surrogate

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            grad = surrogate.fast_sigmoid(slope=25)
            self.fc1 = torch.nn.Linear(N_IN, N_HIDDEN, bias=False)
            self.fc2 = torch.nn.Linear(N_HIDDEN, N_OUT, bias=False)
            self.lif1, self.lif2 = (snn.Leaky(beta=BETA, threshold=1.0, spike_grad=grad,
                                              reset_mechanism="zero") for _ in range(2))
            self.quantise = False

        def weight(self, layer):
            """The layer's weights, fake-quantised to 8 bits per layer (straight-through) when
            `quantise` is on, as `spikefab.nir.load` will round them."""
            w = layer.weight
            if not self.quantise:
                return w
            scale = 127 / w.detach().abs().max()
            return w + (torch.round(w * scale) / scale - w).detach()

        def forward(self, x):   # x: T x B x N_IN -> B x N_OUT spike counts
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            counts = 0
            for row in x:
                spk1, mem1 = self.lif1(torch.nn.functional.linear(row, self.weight(self.fc1)),
                                       mem1)
                spk2, mem2 = self.lif2(torch.nn.functional.linear(spk1, self.weight(self.fc2)),
                                       mem2)
                counts = counts + spk2
            return counts

    return Net()


def float_accuracy(torch, net, x, y) -> float:
    with torch.no_grad():
        counts = net(torch.tensor(x[:, :-1], dtype=torch.float32).transpose(0, 1))
    return float((counts.numpy().argmax(axis=1) == y).mean())


def train(torch, net, data, epochs: int, seed: int, curve: list, quantised=None):
    """BPTT over the clips (Adam, batches of 32); append (epoch, loss, train acc, test float acc,
    test quantised acc) to `curve` after every epoch (`quantised(net)` gives the last)."""
    x, y = data["train"]
    xt, yt = data["test"]
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    rng = np.random.default_rng(seed)
    inputs = torch.tensor(x[:, :-1], dtype=torch.float32)
    labels = torch.tensor(y)
    for _ in range(epochs):
        order, losses = rng.permutation(len(x)), []
        for first in range(0, len(x), 32):
            batch = order[first:first + 32]
            counts = net(inputs[batch].transpose(0, 1))
            loss = torch.nn.functional.cross_entropy(counts, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        point = (len(curve), float(np.mean(losses)), float_accuracy(torch, net, x, y),
                 float_accuracy(torch, net, xt, yt), quantised(net) if quantised else None)
        curve.append(point)
        print(f"epoch {point[0]}: loss {point[1]:.3f}, train {point[2]:.1%}, test float "
              f"{point[3]:.1%}" + (f", quantised {point[4]:.1%}" if point[4] is not None else ""),
              flush=True)


# Export, import, run -------------------------------------------------------------------------

def to_nir(net, path: Path | None = None):
    """The trained network as a NIR graph, written the way snnTorch exports a `Leaky`."""
    import nir
    tau = DT / (1 - BETA)

    def lif(n):
        return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))

    nodes = {"input": nir.Input(input_type={"input": np.array([N_IN])}),
             "fc1": nir.Linear(weight=net.fc1.weight.detach().numpy().astype(np.float64)),
             "lif1": lif(N_HIDDEN),
             "fc2": nir.Linear(weight=net.fc2.weight.detach().numpy().astype(np.float64)),
             "lif2": lif(N_OUT), "output": nir.Output(output_type={"output": np.array([N_OUT])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        nir.write(path, graph)
    return graph


def golden_counts(imported, x) -> np.ndarray:
    """B x N_OUT output spike counts of the quantised network on the batched golden model."""
    spikes = imported.network.reference(CoreConfig(), {"input": x})["lif2"]
    return spikes.sum(axis=1)


def quantised_accuracy(graph, x, y) -> float:
    from spikefab.nir import load
    return float((golden_counts(load(graph), x).argmax(axis=1) == y).mean())


def check_on_gateware(imported, x, clips: int) -> int:
    """Run the first `clips` test clips on the gateware (Verilator); their output spikes must
    equal the golden model's. Returns the number of output spikes compared."""
    from spikefab.host.network import run_on_rtl
    image = imported.network.compile(RTL_CHIP)
    # One session, the clips back to back (the state carries over between clips; the golden
    # model runs the same concatenation).
    stream = x[:clips].reshape(-1, N_IN)
    got = run_on_rtl(image, {"input": stream})["lif2"]
    model = imported.network.reference(RTL_CHIP.core, {"input": stream})["lif2"]
    if not np.array_equal(got, model):
        raise SystemExit("gateware and golden model disagree")
    print(f"gateware: {clips} clips ({len(stream)} steps) bit-exact with the golden model, "
          f"{int(got.sum())} output spikes")
    return int(got.sum())


def plot(curve, path: Path, summary: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [c[0] + 1 for c in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(epochs, [c[1] for c in curve], "k.-")
    left.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="loss")
    right.plot(epochs, [100 * c[2] for c in curve], ".-", label="train, float (snnTorch)")
    right.plot(epochs, [100 * c[3] for c in curve], ".-", label="test, float (snnTorch)")
    right.plot(epochs, [100 * c[4] for c in curve], "x--",
               label="test, quantised (spikefab golden model)")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", ylim=(0, 101))
    right.legend(fontsize=7, loc="lower right")
    fig.suptitle(summary, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--qat", type=int, default=3, help="fine-tuning epochs if needed")
    parser.add_argument("--rtl", type=int, default=8, help="test clips run on the gateware")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--data", type=Path, help="keep the event files here")
    args = parser.parse_args(argv)
    try:
        import snntorch as snn
        import torch
    except ImportError:
        raise SystemExit("train_nir needs torch and snnTorch: pip install -e .[torch]") from None
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    print(f"seed {args.seed}")
    started = time.perf_counter()
    data = film({"train": args.train, "test": args.test}, args.seed, args.data)
    net = build(torch, snn)
    xt, yt = data["test"]
    curve = []
    train(torch, net, data, args.epochs, args.seed, curve,
          lambda n: quantised_accuracy(to_nir(n), xt, yt))
    fine_tuned = 0
    if curve[-1][3] - curve[-1][4] > 0.01:
        print("post-training quantisation lost more than 1 point: quantisation-aware "
              "fine-tuning", flush=True)
        net.quantise = True
        train(torch, net, data, args.qat, args.seed + 1, curve,
              lambda n: quantised_accuracy(to_nir(n), xt, yt))
        fine_tuned = args.qat
    net.quantise = False     # the float network is the one exported
    from spikefab.nir import load
    graph = to_nir(net, args.model)
    imported = load(args.model)
    print(imported.table())
    float_acc, quant_acc = float_accuracy(torch, net, xt, yt), quantised_accuracy(graph, xt, yt)
    summary = (f"direction of motion, {args.train} training / {args.test} test clips: float "
               f"{float_acc:.1%}, quantised {quant_acc:.1%}, difference "
               f"{100 * (float_acc - quant_acc):+.1f} points"
               + (f" (after {fine_tuned} QAT epochs)" if fine_tuned else ""))
    print(summary)
    print(f"trained and evaluated in {time.perf_counter() - started:.0f} s; model written to "
          f"{args.model}")
    plot(curve, args.plot, summary)
    if args.rtl:
        check_on_gateware(imported, xt, args.rtl)
    return {"float": float_acc, "quantised": quant_acc, "curve": curve, "fine_tuned": fine_tuned}


if __name__ == "__main__":
    main()
