"""Export a spikefab `Network` as a NIR graph (the inverse of `spikefab.nir.load`).

    from spikefab.nir import export
    graph = export(net, dt=1e-3, path="learned.nir")   # nir.NIRGraph; also written if path
    net2 = load(graph).network                          # the same integers, bit for bit

Mapping, per population (integer units -> NIR units; s = the population's scale, the largest
threshold, or 1 if every threshold is 0):
- alpha = 0, beta < 2**F: `LIF` with tau = dt / (1 - beta), r = 1, v_threshold = theta / s;
  beta = 2**F: `IF` (r = 1); alpha > 0: `CubaLIF` with tau_syn = dt / (1 - alpha), w_in = 1.
- every connection into it: a `Linear` (the first one an `Affine` carrying the bias) whose
  weights are w / (s * gain), gain being the forward-Euler input gain `load` applies (dt / tau
  for LIF, dt for IF, dt^2 / (tau_syn tau_mem) for CubaLIF), so `load` recovers w exactly;
- recorded populations feed an `Output` node; input groups are `Input` nodes;
- a population with threshold Vmax everywhere (it never fires), alpha = 0 and a leak is an `LI`
  readout (scale 1: its NIR value is V), fed to an `Output`.
r = 1 because Norse's `from_nir` ignores r (snnTorch and spikefab honour it; with r = 1 all three
agree). The graph's metadata holds dt and each neuron node's metadata its scale
(`spikefab_scale`), which `load` uses instead of choosing one, so the round trip is exact.

What NIR cannot say raises `NIRExportError` naming the population: a refractory period, the
subtract reset (NIR's neurons reset to v_reset), alpha = 2**F (a current that never decays),
a CubaLIF without membrane leak, leaky and non-leaky neurons mixed in one population, a bias on a
population without incoming connections.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikefab.spec import CoreConfig, ResetMode

__all__ = ["NIRExportError", "export", "SCALE_KEY"]

SCALE_KEY = "spikefab_scale"


class NIRExportError(ValueError):
    """The network cannot be written as NIR; the message names the population and the reason."""


def export(network, dt: float, *, core: CoreConfig | None = None, path=None):
    """Return `network` as a `nir.NIRGraph` for step `dt` (seconds); write it to `path` too if
    given. `core` gives the decay fraction bits F (default `CoreConfig()`).

    Raises `NIRExportError` (one line) for anything NIR cannot express (module docstring)."""
    import nir

    from spikefab.nir import neuron_gain  # the same gain `load` applies, float for float
    core = core or CoreConfig()
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise NIRExportError(f"dt must be a positive number of seconds, not {dt!r}")
    nodes, edges = {}, []
    for group in network.inputs.values():
        nodes[group.name] = nir.Input(input_type={"input": np.array([group.size])})
    for pop in network.populations.values():
        node, scale = _neuron_node(nir, pop, dt, core)
        nodes[pop.name] = node
        gain = neuron_gain(node, pop.size, dt, pop.name)
        edges += _connections(nir, network, pop, scale, gain, nodes)
        if pop.record or isinstance(node, nir.LI):
            out = _free_name(nodes, f"{pop.name}_output")
            nodes[out] = nir.Output(output_type={"output": np.array([pop.size])})
            edges.append((pop.name, out))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": float(dt)})
    if path is not None:
        nir.write(Path(path), graph)
    return graph


def _param(pop, key) -> np.ndarray:
    return np.broadcast_to(np.asarray(pop.params[key], dtype=np.int64), (pop.size,))


def _neuron_node(nir, pop, dt: float, core: CoreConfig):
    """Return (NIR neuron node, scale s) for population `pop`."""
    one = core.decay_one
    alpha, beta, theta = (_param(pop, k) for k in ("alpha", "beta", "threshold"))
    if _param(pop, "refractory").any():
        raise NIRExportError(f"population {pop.name}: NIR neurons have no refractory period")
    if (_param(pop, "reset") == int(ResetMode.SUBTRACT)).any():
        raise NIRExportError(f"population {pop.name}: NIR neurons reset to v_reset; the subtract "
                             f"reset cannot be expressed")
    if (alpha >= one).any():
        raise NIRExportError(f"population {pop.name}: alpha = 2**F (a current that never "
                             f"decays) has no NIR time constant")
    leaky = beta < one
    if (theta == core.voltage_range[1]).all() and not alpha.any() and leaky.all():
        # Never fires (V <= Vmax, strict test): the membrane is the value, an LI readout.
        return nir.LI(tau=dt / (1 - beta / one), r=np.ones(pop.size), v_leak=np.zeros(pop.size),
                      metadata={SCALE_KEY: 1.0}), 1.0
    if leaky.any() and not leaky.all():
        raise NIRExportError(f"population {pop.name}: mixes leaky (beta < 2**F) and non-leaky "
                             f"neurons; NIR needs one node type per population")
    scale = float(theta.max()) if theta.max() > 0 else 1.0
    n = pop.size
    common = dict(v_threshold=theta / scale, metadata={SCALE_KEY: scale})
    if alpha.any():
        if not leaky.all():
            raise NIRExportError(f"population {pop.name}: a synaptic current (alpha > 0) "
                                 f"without membrane leak has no NIR node")
        return nir.CubaLIF(tau_syn=dt / (1 - alpha / one), tau_mem=dt / (1 - beta / one),
                           r=np.ones(n), v_leak=np.zeros(n), v_reset=np.zeros(n),
                           w_in=np.ones(n), **common), scale
    if not leaky.any():
        return nir.IF(r=np.ones(n), v_reset=np.zeros(n), **common), scale
    return nir.LIF(tau=dt / (1 - beta / one), r=np.ones(n), v_leak=np.zeros(n),
                   v_reset=np.zeros(n), **common), scale


def _connections(nir, network, pop, scale: float, gain: np.ndarray, nodes: dict):
    """Add one Linear/Affine node per source of `pop` (connections from the same source are
    summed, as the chip sums them); return the edges."""
    per_source: dict[str, np.ndarray] = {}
    for conn in network.connections:
        if conn.post is pop:
            total = per_source.get(conn.pre.name, 0)
            per_source[conn.pre.name] = total + conn.weights
    bias = _param(pop, "bias")
    if bias.any() and not per_source:
        raise NIRExportError(f"population {pop.name}: a bias without incoming connections has "
                             f"no NIR node to carry it")
    edges = []
    for k, (pre, weights) in enumerate(per_source.items()):
        w = (weights / (scale * gain[None, :])).T        # NIR weights are post x pre
        name = _free_name(nodes, f"{pre}_to_{pop.name}")
        nodes[name] = (nir.Affine(weight=w, bias=bias / (scale * gain)) if k == 0 and bias.any()
                       else nir.Linear(weight=w))
        edges += [(pre, name), (name, pop.name)]
    return edges


def _free_name(nodes: dict, name: str) -> str:
    candidate, k = name, 1
    while candidate in nodes:
        candidate, k = f"{name}_{k}", k + 1
    return candidate
