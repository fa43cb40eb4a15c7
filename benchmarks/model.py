"""Measure the golden model's speed beside a plain NumPy float32 LIF loop, in one run.

    python benchmarks/model.py            # prints a markdown table (docs/benchmarks.md holds one)
    python benchmarks/model.py --steps 50 # shorter runs

Layers 256 -> 256 and 256 -> 1024, input activity 0.02 and 0.2 (probability that an axon fires
in a step), batch 1 and 32. Speeds are neuron-updates per second (batch x steps x neurons over
the wall time, weight sums included). The peer is the loop a user would write in ten lines: a
float32 `x[t] @ W` per step, decay, strict threshold, reset to zero. The golden model runs the same
neurons (alpha 0, beta 15/16, zero reset) bit-exactly: `CoreModel.run` (one sample),
`CoreModel.run_batch` and `Network.reference` (a batch). snnTorch's `Leaky` is measured too when
torch and snnTorch are importable (an optional extra, never needed); "x snnTorch" is each row's
speed over snnTorch's in the same configuration.
"""

from __future__ import annotations

import argparse
import os
import time

# One BLAS thread for every contender (the machine is shared; TOOLCHAIN.md's figures are 1-thread).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from core import table  # noqa: E402  (benchmarks/core.py: one markdown table writer)

from spikefab.host.network import Network  # noqa: E402
from spikefab.sim import CoreModel  # noqa: E402
from spikefab.spec import CoreConfig, NeuronParams  # noqa: E402

BETA = 15 / 16


def numpy_float32_lif(x, weights, threshold):
    """The peer: B x T x A float32 inputs -> T x B x N bool spikes, one matmul per step."""
    w = weights.astype(np.float32)
    v = np.zeros((x.shape[0], w.shape[1]), dtype=np.float32)
    out = np.empty((x.shape[1],) + v.shape, dtype=bool)
    for t in range(x.shape[1]):
        v = np.float32(BETA) * v + x[:, t] @ w
        spike = v > threshold
        v[spike] = 0.0
        out[t] = spike
    return out


def snntorch_leaky(x, weights, threshold):
    """snnTorch's Leaky behind a bias-free Linear, or None when torch is not installed."""
    try:
        import snntorch
        import torch
    except (ImportError, OSError):   # not installed, or a broken install
        return None
    torch.set_num_threads(1)
    fc = torch.nn.Linear(weights.shape[0], weights.shape[1], bias=False)
    fc.weight.data = torch.tensor(weights.T, dtype=torch.float32)
    lif = snntorch.Leaky(beta=BETA, threshold=float(threshold), reset_mechanism="zero")
    inputs = torch.tensor(x, dtype=torch.float32)
    mem = lif.init_leaky()
    with torch.no_grad():
        for t in range(inputs.shape[1]):
            spike, mem = lif(fc(inputs[:, t]), mem)
    return spike


def layer(n_in: int, n_out: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    weights = rng.integers(-40, 100, (n_in, n_out))
    return CoreConfig(n_neurons=n_out, n_axons=n_in, weights_per_word=1), weights


def golden_model(cfg, weights, threshold) -> CoreModel:
    return CoreModel(cfg, NeuronParams.uniform(cfg, beta=cfg.decay_one * 15 // 16,
                                               threshold=threshold), weights)


def golden_run(model: CoreModel, x):
    """Each call starts from the model's present state (run_batch leaves it unchanged)."""
    return model.run_batch(x) if len(x) > 1 else model.run(x[0])


def network(cfg, weights, threshold) -> Network:
    net = Network()
    pixels = net.add_input("in", weights.shape[0])
    out = net.add_population("out", weights.shape[1], beta=cfg.decay_one * 15 // 16,
                             threshold=threshold)
    net.connect(pixels, out, weights)
    return net


def network_run(net: Network, cfg, x):
    return net.reference(cfg, {"in": x})["out"]


def timed(function, *args, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


def measure(n_in, n_out, activity, batch, steps) -> list[dict]:
    cfg, weights = layer(n_in, n_out)
    threshold = 400
    rng = np.random.default_rng(2)
    x = (rng.random((batch, steps, n_in)) < activity).astype(np.int64)
    updates = batch * steps * n_out
    peer = timed(numpy_float32_lif, x.astype(np.float32), weights, threshold)
    rows = [("NumPy float32 loop (peer)", peer)]
    rows.append(("CoreModel.run" if batch == 1 else "CoreModel.run_batch",
                 timed(golden_run, golden_model(cfg, weights, threshold), x)))
    rows.append(("Network.reference", timed(network_run, network(cfg, weights, threshold),
                                            cfg, x)))
    snn = None
    if snntorch_leaky(x[:, :2], weights, threshold) is not None:
        snn = timed(snntorch_leaky, x, weights, threshold, repeat=3)
        rows.append(("snnTorch Leaky", snn))
    return [{"layer": f"{n_in}->{n_out}", "activity": activity, "batch": batch, "model": name,
             "M updates/s": updates / seconds / 1e6, "x peer": peer / seconds,
             "x snnTorch": snn / seconds if snn else float("nan")}
            for name, seconds in rows]


def check_agreement(steps: int):
    """The golden model and the float32 peer compute the same neurons: same spikes here."""
    cfg, weights = layer(256, 256)
    x = (np.random.default_rng(3).random((4, steps, 256)) < 0.2).astype(np.int64)
    ours = golden_run(golden_model(cfg, weights, 400), x)
    peer = numpy_float32_lif(x.astype(np.float32), weights, 400).transpose(1, 0, 2)
    return float((ours == peer).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    measure(256, 256, 0.02, 1, args.steps)   # warm-up: the first timings of a process run slow
    rows = []
    for n_in, n_out in ((256, 256), (256, 1024)):
        for activity in (0.02, 0.2):
            for batch in (1, 32):
                rows += measure(n_in, n_out, activity, batch, args.steps)
    print(table(rows, {"M updates/s": "{:.1f}", "x peer": "{:.2f}", "x snnTorch": "{:.2f}"}))
    print(f"\nspike agreement golden model vs float32 peer (256->256, activity 0.2): "
          f"{check_agreement(args.steps):.4f}")


if __name__ == "__main__":
    main()
