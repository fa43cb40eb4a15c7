"""NIR parity: every example network as a NIR graph, run by Norse through its own NIR import
(`norse.torch.from_nir`, float32, forward Euler) and by spikefab's golden model (quantised,
batched), on the same event data. Prints a markdown table (docs/deploy.md keeps a copy).

Columns, over the output population's neuron-steps (the golden model's spikes shifted back by the
population's hop count, the chip's one step per hop):
- spike agreement: fraction of neuron-steps where both spike or both are silent;
- count ratio: golden-model spikes / Norse spikes;
- class agreement: fraction of samples (clips, or 100-step windows of a stream) whose class, the
  output neuron with most spikes, is the same.

    nice python benchmarks/nir_parity.py [--clips 300] [--seed 5]

Needs torch, `norse==1.1.0 --no-deps`, `nirtorch==2.6` (../shared/TOOLCHAIN.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from spikefab.nir import NIRExportError, export, load, run_in_norse  # noqa: E402
from spikefab.spec import CoreConfig  # noqa: E402

WINDOW = 100     # steps per class decision on a stream


def compare(name: str, graph, x: np.ndarray, dt: float, windows: bool = False) -> dict:
    """One table row: the graph's single recorded population, Norse against the golden model."""
    imported = load(graph, dt=dt)
    (population,) = [p for p in imported.populations
                     if imported.network.populations[p.name].record]
    ours = imported.network.reference(CoreConfig(), {imported.inputs[0]: x})[population.name]
    theirs = run_in_norse(graph, x, dt)
    hops = population.hops
    ours, theirs = ours[:, hops:], theirs[:, :theirs.shape[1] - hops]
    if windows:   # one long stream: class decisions per window
        cut = ours.shape[1] // WINDOW * WINDOW
        ours, theirs = (a[:, :cut].reshape(-1, WINDOW, a.shape[2]) for a in (ours, theirs))
    a, b = ours.sum(axis=1), theirs.sum(axis=1)
    active = (a.sum(axis=1) > 0) | (b.sum(axis=1) > 0)
    return {"network": name, "samples": int(active.sum()),
            "agreement": float((ours == theirs).mean()),
            "ratio": float(ours.sum() / theirs.sum()) if theirs.sum() else float("inf"),
            "spikes": int(theirs.sum()),
            "classes": float((a.argmax(axis=1) == b.argmax(axis=1))[active].mean())}


def fold_r(graph):
    """The same network with every LIF's r folded into the weights before it (r = 1): Norse's
    import ignores r, snnTorch writes r = tau / dt."""
    import nir
    nodes = dict(graph.nodes)
    for src, dst in graph.edges:
        node = nodes[dst]
        if isinstance(node, nir.LIF) and isinstance(nodes[src], nir.Linear):
            nodes[src] = nir.Linear(weight=nodes[src].weight * node.r[:, None])
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF):
            nodes[name] = nir.LIF(tau=node.tau, r=np.ones_like(node.r), v_leak=node.v_leak,
                                  v_threshold=node.v_threshold, v_reset=node.v_reset)
    return nir.NIRGraph(nodes=nodes, edges=graph.edges, metadata=graph.metadata)


def trained_direction(clips: int, seed: int) -> list[dict]:
    """examples/models/bars_direction.nir (snnTorch-trained) on freshly filmed clips, as
    written (r = tau / dt) and with r folded into the weights."""
    import nir
    import train_nir
    with tempfile.TemporaryDirectory() as tmp:
        x, _ = train_nir.film({"parity": clips}, seed, Path(tmp))["parity"]
    graph = nir.read(train_nir.MODEL)
    return [compare("train_nir: 128-16-8 LIF, snnTorch-trained (r = tau/dt, as snnTorch "
                    "writes it)", graph, x, train_nir.DT),
            compare("train_nir, the same graph with r folded into the weights (r = 1)",
                    fold_r(graph), x, train_nir.DT)]


def learned_readout(clips: int, seed: int) -> dict:
    """examples/dvs_bars.py: learn the readout on the chip model, read the weights back as a
    Network, export it."""
    import dvs_bars

    from spikefab.host.network import Network
    with tempfile.TemporaryDirectory() as tmp:
        data = dvs_bars.make_data(Path(tmp), {"train": 300, "val": 20, "test": clips}, seed)
    model, _ = dvs_bars.learn(data, every=300)
    net = Network()
    cells = net.add_input("cells", dvs_bars.CFG.n_axons)
    out = net.add_population("readout", dvs_bars.CFG.n_neurons, record=True, **dvs_bars.PARAMS)
    net.connect(cells, out, np.asarray(model.weights, dtype=np.int64))
    steps = dvs_bars.CLIP + dvs_bars.GAP
    x = np.zeros((clips, steps, dvs_bars.CFG.n_axons), dtype=np.int64)
    for k, clip in enumerate(data["test"].clips):
        for t, ids in enumerate(clip):
            np.add.at(x[k, t], ids, 1)
    return compare("dvs_bars: 512-4 readout, learned on chip, exported", export(net, 1e-3), x,
                   1e-3)


def bundled_bars() -> list[dict]:
    """The bundled `bars` network on the bundled sample recording (one stream)."""
    from spikefab.host.bundled import bars, sample_path
    from spikefab.host.encode import Encoder
    from spikefab.host.events import open_recording
    spec = bars()
    rows = []
    try:
        export(spec.network, 1e-3)
    except NIRExportError as error:
        rows.append({"network": "bars (bundled)", "error": str(error)})
    rec = open_recording(sample_path())
    encoder = Encoder(spec.encoder, (rec.width, rec.height), start_us=0)
    steps = {}
    for chunk in rec.chunks():
        steps.update(encoder.feed(chunk))
    steps.update(encoder.finish())
    x = np.zeros((1, max(steps) + 1, encoder.n_inputs), dtype=np.int64)
    for t, ids in steps.items():
        np.add.at(x[0, t], ids, 1)
    for pop in spec.network.populations.values():
        pop.params["refractory"] = 0
        pop.record = pop.name == "orientation"
    graph = export(spec.network, spec.encoder.dt_us * 1e-6)
    rows.append(compare("bars (bundled) without refractory period", graph, x,
                        spec.encoder.dt_us * 1e-6, windows=True))
    return rows


def table(rows) -> str:
    lines = ["| network | samples | spike agreement | count ratio (spikefab / Norse) | Norse "
             "spikes | class agreement |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['network']} | - | not exportable: {r['error']} | | | |")
        else:
            lines.append(f"| {r['network']} | {r['samples']} | {r['agreement']:.2%} | "
                         f"{r['ratio']:.3f} | {r['spikes']} | {r['classes']:.1%} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        import norse  # noqa: F401
        import torch
    except ImportError:
        raise SystemExit("nir_parity needs torch and norse (../shared/TOOLCHAIN.md)") from None
    torch.set_num_threads(1)
    print(f"seed {args.seed}")
    rows = [*trained_direction(args.clips, args.seed), learned_readout(args.clips, args.seed),
            *bundled_bars()]
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
