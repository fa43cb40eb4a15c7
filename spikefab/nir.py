"""Import a NIR graph (package `nir`, https://neuroir.org) into a spikefab `Network`.

    from spikefab.nir import load
    imported = load("model.nir", dt=1e-3)          # or a nir.NIRGraph; dt from metadata if there
    print(imported.table())                        # scale, clipping and rounding per population
    image = imported.network.compile(ChipConfig()) # then load/run as any Network

Supported nodes: `Input`, `Output`, `Affine`, `Linear`, `Conv2d`, `SumPool2d`, `AvgPool2d`
(lowered to dense blocks, `spikefab.nir_lower`), `LIF`, `CubaLIF`, `IF`, `LI` (a readout that
never fires, its membrane read back), `Flatten` (as a reshape), nested `NIRGraph`s (flattened);
edges Input/neuron -> chain of linear nodes -> neuron, a neuron straight to a neuron of the same
size (one-to-one, weight 1), neuron -> Output (recorded). Export: `export` (spikefab.nir_export).
Anything else raises `NIRImportError` with one line naming the node and the reason.

Discretisation (docs/deploy.md): forward Euler with step dt, input spikes 0/1 per step, as
snnTorch's and Norse's own NIR import do. For `LIF`, tau dv/dt = (v_leak - v) + r I becomes
v' = (1 - dt/tau) v + (dt/tau) v_leak + (dt r / tau) I, i.e. beta = 1 - dt/tau, alpha = 0, input
gain dt r / tau. `CubaLIF` adds alpha = 1 - dt/tau_syn and the current gain
(dt / tau_syn) w_in (dt r / tau_mem). `IF` has beta = 1 and gain dt r. A reset to v_reset is the
chip's reset to zero in the shifted voltage u = v - v_reset (threshold v_threshold - v_reset).

Quantisation, per population: one scale s (integer units per NIR voltage unit) maps the largest
incoming effective weight (or the `weight_percentile` of their magnitudes) to the weight maximum;
threshold and bias use the same s. If the threshold or the bias would not fit their fields, s is
lowered until they do and the table says so; weights beyond the range (only with a percentile
below 100) are clipped and counted. Decays round to F fraction bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikefab.host.network import Network
from spikefab.nir_export import SCALE_KEY, NIRExportError, export
from spikefab.nir_lower import LINEAR, LoweringError, lower
from spikefab.spec import CoreConfig, NeuronParams, ResetMode, decay_from_float

__all__ = ["NIRImportError", "NIRExportError", "Imported", "PopulationReport", "load", "export",
           "describe", "network_spec", "neuron_gain", "run_in_norse"]

NEURONS = ("LIF", "CubaLIF", "IF")
READOUTS = ("LI",)      # non-spiking: a population that never fires, its membrane read back
CONNECTIONS = LINEAR    # Affine, Linear, Conv2d, SumPool2d, AvgPool2d: dense blocks
REASONS = {
    "CubaLI": "a non-spiking readout with a synaptic current is not supported (use LI)",
    "I": "a non-spiking integrator is not supported",
    "Conv1d": "1-d convolutions are not lowered to dense synapse blocks (Conv2d is)",
    "Delay": "the chip has no programmable synaptic delay (every hop between populations takes "
             "exactly one step)",
    "Scale": "fold the scale into the preceding Affine/Linear weights",
    "Threshold": "a bare threshold without a membrane is not supported",
}


class NIRImportError(ValueError):
    """The graph cannot be expressed on the chip; the message names the node and the reason."""


@dataclass
class PopulationReport:
    """How one NIR neuron node was quantised (see the module docstring)."""
    name: str
    kind: str
    size: int
    scale: float                 # integer units per NIR voltage unit
    limited_by: str              # "weights", "threshold", "bias" or "graph metadata"
    weights: int                 # incoming synapses (nonzero weights)
    clipped: float               # fraction of those weights clipped to the range
    weight_error: float          # mean |w_int / s - w| over max|w|
    threshold_error: float       # max relative error of the threshold
    decay_error: float           # max |beta_int / 2**F - beta| (and alpha's)
    hops: int                    # population hops from the inputs: the chip's extra delay
    notes: list[str] = field(default_factory=list)


@dataclass
class Imported:
    """The result of `load`: the network, the step it was discretised with, and the report."""
    network: Network
    dt: float
    dt_source: str
    populations: list[PopulationReport]
    inputs: list[str]
    readouts: list[str] = field(default_factory=list)   # LI populations (membrane read back)
    core: CoreConfig = field(default_factory=CoreConfig)

    def readout(self, outputs: dict) -> dict[str, np.ndarray]:
        """NIR-unit values (V / scale) of every LI readout from the `name + ".v"` membranes of a
        `Network.reference` or `host.network.run` result (both with `membranes=readouts`).
        Raises `NIRImportError` if a membrane reached the voltage range: it may have saturated,
        so the value would be wrong."""
        scales = {r.name: r.scale for r in self.populations}
        lo, hi = self.core.voltage_range
        values = {}
        for name in self.readouts:
            v = np.asarray(outputs[name + ".v"])
            if v.size and (v.max() >= hi or v.min() <= lo):
                raise NIRImportError(f"readout {name}: the membrane reached {lo}..{hi} and may "
                                     f"have saturated; lower the input or the scale")
            values[name] = v / scales[name]
        return values

    def table(self) -> str:
        """Return the quantisation report as a markdown table."""
        head = ("population | kind | size | scale | set by | synapses | clipped | weight err | "
                "threshold err | decay err | delay")
        lines = [f"| {head} |", "|" + "---|" * (head.count("|") + 1)]
        for r in self.populations:
            lines.append(f"| {r.name} | {r.kind} | {r.size} | {r.scale:.4g} | {r.limited_by} | "
                         f"{r.weights} | {r.clipped:.2%} | {r.weight_error:.2%} | "
                         f"{r.threshold_error:.2%} | {r.decay_error:.1e} | {r.hops} |")
        notes = [f"- {r.name}: {note}" for r in self.populations for note in r.notes]
        return "\n".join(lines + notes)


def load(source, *, dt: float | None = None, core: CoreConfig | None = None,
         weight_percentile: float = 100.0) -> Imported:
    """Load a `nir.NIRGraph` or a `.nir` file into a `Network` quantised for `core`'s widths.

    `dt` (seconds) is required unless the graph's metadata carries one ("dt"); a given `dt`
    takes precedence. Raises `NIRImportError` (one line) for anything the chip cannot express.
    """
    import nir
    core = core or CoreConfig()
    graph = _read(source, nir)
    dt, dt_source = _step(graph, dt)
    if not 0.0 < weight_percentile <= 100.0:
        raise NIRImportError(f"weight_percentile must be in (0, 100], not {weight_percentile}")
    nodes, edges, through = _flatten(graph)
    return _Builder(nodes, edges, through, dt, core, weight_percentile).build(dt_source)


def describe(imported: Imported, chip) -> str:
    """Return what `spikefab import` prints: step, placement on `chip` (a `ChipConfig`), the
    resources used and the quantisation table. Raises `NetworkDoesNotFit` if it does not fit."""
    net = imported.network
    image = net.compile(chip)
    lines = [f"dt: {imported.dt * 1e6:g} us ({imported.dt_source})",
             "inputs: " + ", ".join(f"{g.name} ({g.size})" for g in net.inputs.values()),
             "placement:"]
    for name, slots in image.placement.items():
        cores = sorted({c for c, _ in slots})
        where = ", ".join(f"core {c} neurons {min(n for k, n in slots if k == c)}.."
                          f"{max(n for k, n in slots if k == c)}" for c in cores)
        recorded = " (recorded)" if name in image.recorded else ""
        lines.append(f"  {name}: {len(slots)} neurons on {where}{recorded}")
    used = sum(len(s) for s in image.placement.values())
    axons = [len(a) for a in image.axons]
    lines += [f"resources: {used} of {chip.n_cores * chip.core.n_neurons} neurons, axons per "
              f"core {axons} of {chip.core.n_axons}, {len(image.route_dest)} of "
              f"{chip.route_entries} route entries, {sum(g.size for g in net.inputs.values())} "
              f"of {chip.n_inputs} inputs", "quantisation:", imported.table()]
    return "\n".join(lines)


def network_spec(path, dt_us: int | None = None, core: CoreConfig | None = None):
    """Return a `host.bundled.NetworkSpec` for `spikefab run --network model.nir`: the graph's
    single input receives the events, binned at dt (`dt_us`, else the graph's metadata)."""
    from spikefab.host.bundled import NetworkSpec
    from spikefab.host.encode import EncoderConfig
    imported = load(path, dt=None if dt_us is None else dt_us * 1e-6, core=core)
    if imported.readouts:
        raise NIRImportError(f"{path}: `spikefab run` shows spikes; the LI readout "
                             f"{imported.readouts[0]} needs membrane read-back (Python API: "
                             f"run(..., membranes=imported.readouts), docs/deploy.md)")
    if len(imported.inputs) != 1:
        raise NIRImportError(f"{path}: `spikefab run` needs exactly one Input node, the graph "
                             f"has {len(imported.inputs)}")
    step_us = round(imported.dt * 1e6)
    if step_us < 1 or abs(step_us - imported.dt * 1e6) > 1e-6 * step_us:
        raise NIRImportError(f"{path}: dt = {imported.dt} s is not a whole number of "
                             f"microseconds: give --dt US")
    sizes = ", ".join(f"{p.name} {p.size}" for p in imported.network.populations.values())
    return NetworkSpec(imported.network, imported.inputs[0], EncoderConfig(dt_us=step_us),
                       description=f"{Path(path).name} (NIR): {sizes}")


def _read(source, nir):
    if isinstance(source, nir.NIRGraph):
        return source
    path = Path(source)
    if not path.is_file():
        raise NIRImportError(f"{path}: no such file")
    try:
        return nir.read(path)
    except Exception as error:   # h5py and nir raise many types for a file that is not NIR
        raise NIRImportError(f"{path}: not a readable NIR file ({error})") from None


def _metadata(node) -> dict:
    meta = getattr(node, "metadata", None)
    return meta if isinstance(meta, dict) else {}


def _step(graph, dt):
    if dt is not None:
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise NIRImportError(f"dt must be a positive number of seconds, not {dt!r}")
        return float(dt), "given"
    meta = _metadata(graph).get("dt")
    if meta is None:
        raise NIRImportError("the graph's metadata has no dt (NIR is continuous-time): give the "
                             "step, e.g. dt=1e-3 or --dt 1000 (microseconds)")
    return float(np.asarray(meta)), "graph metadata"


def _flatten(graph, prefix=""):
    """Return (name -> node, edges, pass-through names) with nested graphs inlined; their Input
    and Output nodes stay as pass-through nodes that `_Builder` contracts."""
    import nir
    nodes, edges, through = {}, [], set()
    entry, exit_ = {}, {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges, inner_through = _flatten(node, full + ".")
            nodes.update(inner)
            edges += inner_edges
            through |= inner_through
            entry[full] = [n for n, x in node.nodes.items() if isinstance(x, nir.Input)]
            exit_[full] = [n for n, x in node.nodes.items() if isinstance(x, nir.Output)]
            for kind, names in (("Input", entry[full]), ("Output", exit_[full])):
                if len(names) != 1:
                    raise NIRImportError(f"node {full}: a nested graph needs exactly one {kind}")
                through.add(f"{full}.{names[0]}")
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        src, dst = prefix + src, prefix + dst
        src = f"{src}.{exit_[src][0]}" if src in exit_ else src
        dst = f"{dst}.{entry[dst][0]}" if dst in entry else dst
        edges.append((src, dst))
    return nodes, edges, through


def _size(node, name) -> int:
    for key in ("v_threshold", "r"):
        if hasattr(node, key):
            return int(np.asarray(getattr(node, key)).size)
    raise NIRImportError(f"node {name}: cannot tell its size")


class _Builder:
    """Turns the flattened graph into a Network (one pass; see the module docstring)."""

    def __init__(self, nodes, edges, through, dt, core, percentile):
        self.nodes, self.dt, self.core, self.percentile = nodes, dt, core, percentile
        self.edges = self._contract(edges, through)
        self.kind = {name: type(node).__name__ for name, node in nodes.items()}

    def _contract(self, edges, through):
        """Remove pass-through nodes (nested Input/Output, Flatten): connect around them."""
        import nir
        through = set(through) | {n for n, x in self.nodes.items() if isinstance(x, nir.Flatten)}
        edges = list(dict.fromkeys(edges))
        for name in through:
            ins = [s for s, d in edges if d == name]
            outs = [d for s, d in edges if s == name]
            edges = [e for e in edges if name not in e] + [(s, d) for s in ins for d in outs]
        for name in through:
            del self.nodes[name]
        return edges

    def build(self, dt_source: str) -> Imported:
        self._check_kinds()
        net = Network()
        inputs = [n for n, k in self.kind.items() if k == "Input" and n in self.nodes]
        for name in inputs:
            shape = next(iter(self.nodes[name].input_type.values()))
            net.add_input(name, int(np.prod(shape)))
        incoming = self._incoming(net)
        hops = self._hops(inputs, incoming)
        fed = {s for s, d in self.edges if self.kind.get(d) == "Output"}
        recorded = {name for name in fed if self.kind[name] in NEURONS}
        reports, synapses = [], {}
        for name in self._neurons():
            params, synapses[name], report = self._quantise(name, incoming[name],
                                                            hops.get(name, 0))
            net.add_population(name, report.size, record=name in recorded, **params)
            reports.append(report)
        for name in self._neurons():
            for pre, weights in synapses[name]:
                pre_node = net.inputs.get(pre) or net.populations[pre]
                net.connect(pre_node, net.populations[name], weights)
        readouts = [name for name in self._neurons() if name in fed - recorded]
        if not fed:
            raise NIRImportError("the graph has no Output fed by a neuron node: nothing would "
                                 "reach the host")
        return Imported(net, self.dt, dt_source, reports, inputs, readouts, self.core)

    def _neurons(self):
        return [n for n in self.nodes if self.kind[n] in NEURONS + READOUTS]

    def _check_kinds(self):
        for name, kind in self.kind.items():
            known = NEURONS + READOUTS + CONNECTIONS + ("Input", "Output")
            if name not in self.nodes or kind in known:
                continue
            reason = REASONS.get(kind, "this node type is not supported")
            raise NIRImportError(f"node {name} ({kind}): {reason}")
        for src, dst in self.edges:
            ks, kd = self.kind[src], self.kind[dst]
            ok = ((ks in ("Input",) + NEURONS and kd in CONNECTIONS + NEURONS + READOUTS)
                  or (ks in CONNECTIONS and kd in CONNECTIONS + NEURONS + READOUTS)
                  or (ks in NEURONS + READOUTS and kd == "Output"))
            if ks in READOUTS and kd != "Output":
                raise NIRImportError(f"edge {src} (LI) -> {dst} ({kd}): an LI readout makes no "
                                     f"spikes, so it can only feed an Output")
            if not ok:
                raise NIRImportError(f"edge {src} ({ks}) -> {dst} ({kd}): only Input/neuron -> "
                                     f"linear maps (Affine, Linear, Conv2d, pooling) -> neuron "
                                     f"chains and neuron -> Output can be expressed")

    def _incoming(self, net):
        """neuron -> [(pre name, float weights pre.size x size)] before the neuron's gains."""
        incoming = {name: [] for name in self._neurons()}
        sizes = {n: net.inputs[n].size for n in net.inputs}
        sizes.update({n: _size(self.nodes[n], n) for n in incoming})
        for src, dst in self.edges:
            if self.kind[dst] in NEURONS + READOUTS and self.kind[src] in ("Input",) + NEURONS:
                if sizes[src] != sizes[dst]:
                    raise NIRImportError(f"edge {src} -> {dst}: sizes {sizes[src]} and "
                                         f"{sizes[dst]} differ (a direct edge is one-to-one)")
                incoming[dst].append((src, np.eye(sizes[src]), np.zeros(sizes[dst])))
            elif self.kind[dst] in NEURONS + READOUTS and self.kind[src] in CONNECTIONS:
                incoming[dst].append(self._connection(src, dst, sizes))
        return incoming

    def _connection(self, name, post, sizes):
        """(source, float weights source size x post size, bias) of the chain of linear nodes
        that ends at `name` and feeds neuron `post`."""
        pre, matrix, bias, _ = self._linear(name, (name,))
        if matrix.shape != (sizes[post], sizes[pre]):
            raise NIRImportError(f"node {name}: its output ({matrix.shape[0]} values) does not "
                                 f"match {post} ({sizes[post]} neurons)")
        return pre, matrix.T, bias

    def _linear(self, name, path):
        """Lower linear node `name` and the linear nodes before it into one dense block:
        (source, matrix out x source size, bias, output shape)."""
        pres = [s for s, d in self.edges if d == name]
        if len(pres) != 1:
            raise NIRImportError(f"node {name}: a linear node needs exactly one source, not "
                                 f"{len(pres)}")
        pre, node, kind = pres[0], self.nodes[name], self.kind[name]
        inner = None
        if self.kind[pre] in CONNECTIONS:
            if pre in path:
                raise NIRImportError(f"node {name}: a cycle of linear nodes without a neuron")
            source, *inner, shape = self._linear(pre, path + (pre,))
        else:
            source, shape = pre, self._shape(pre)
        shape = _declared_shape(node, kind, shape)
        try:
            matrix, bias, out = lower(node, kind, shape)
        except LoweringError as error:
            raise NIRImportError(f"node {name} ({kind}): {error}") from None
        if inner:
            bias = matrix @ inner[1] + bias
            matrix = matrix @ inner[0]
        return source, matrix, bias, out

    def _shape(self, name) -> tuple:
        """The shape of an Input's or neuron node's output (neuron parameters shaped (C, H, W)
        give that shape; flat ones a vector)."""
        node = self.nodes[name]
        if self.kind[name] == "Input":
            return tuple(int(n) for n in next(iter(node.input_type.values())))
        for key in ("v_threshold", "tau", "tau_mem", "r"):
            if hasattr(node, key):
                return np.asarray(getattr(node, key)).shape or (1,)
        raise NIRImportError(f"node {name}: cannot tell its shape")

    def _hops(self, inputs, incoming):
        """Population hops from the inputs (shortest path): the chip's extra output delay."""
        hops, frontier = {}, set(inputs)
        depth = {n: -1 for n in inputs}
        while frontier:
            following = set()
            for name, conns in incoming.items():
                if name not in depth and any(pre in frontier for pre, *_ in conns):
                    depth[name] = hops[name] = max(depth[pre] for pre, *_ in conns
                                                   if pre in depth) + 1
                    following.add(name)
            frontier = following
        return hops

    def _quantise(self, name, conns, hops):
        """Return (population parameters, report, [(pre, integer weights)]) for neuron `name`
        fed by `conns` = [(pre, float weights pre x size, float bias)]."""
        node, kind = self.nodes[name], self.kind[name]
        size = _size(node, name)
        neuron = _Neuron(node, kind, size, self.dt, name)
        weights = [w * neuron.gain[None, :] for _, w, _ in conns]
        bias = sum((b * neuron.gain for _, _, b in conns), np.zeros(size)) + neuron.constant
        given = _metadata(node).get(SCALE_KEY)
        if given is None:
            scale, limited = self._scale(name, weights, bias, neuron.threshold)
        else:   # written by `export`: the integers it came from are recovered exactly
            scale, limited = float(np.asarray(given)), "graph metadata"
        ints, stats = self._integer_weights(weights, scale)
        if limited == "graph metadata" and stats["clipped"]:
            raise NIRImportError(f"node {name}: with the scale {scale:g} of its metadata "
                                 f"({SCALE_KEY}), {stats['clipped']:.2%} of its weights do not "
                                 f"fit the weight range")
        theta = (np.round(neuron.threshold * scale).astype(np.int64) if kind not in READOUTS
                 else np.full(size, self.core.voltage_range[1]))   # V <= Vmax: never fires
        alpha, beta, decay_error = neuron.decays(self.core, name)
        params = dict(alpha=alpha, beta=beta, threshold=theta,
                      bias=np.round(bias * scale).astype(np.int64), refractory=0,
                      reset=int(ResetMode.ZERO))
        self._validate(name, params, size)
        notes = list(neuron.notes)
        if stats["zeroed"]:
            notes.append(f"{stats['zeroed']} of {stats['count']} synapses round to weight 0")
        if hops:
            notes.append(f"its spikes reach the host {hops} step(s) later than a same-step "
                         f"evaluation (one step per population hop on the chip)")
        report = PopulationReport(
            name, kind, size, scale, limited, stats["count"], stats["clipped"], stats["error"],
            _largest_relative_error(theta / scale, neuron.threshold) if kind not in READOUTS
            else 0.0, decay_error, hops, notes)
        return params, [(pre, w) for (pre, _, _), w in zip(conns, ints)], report

    def _integer_weights(self, weights, scale):
        """Round scale * weights into the weight range; return the integer matrices and their
        statistics over the nonzero float weights: count, fraction clipped, synapses that round
        to 0, mean |error| over the largest weight."""
        lo, hi = self.core.weight_range
        ints, errors, clipped, zeroed = [], [], 0, 0
        for w in weights:
            rounded = np.round(w * scale)
            w_int = np.clip(rounded, lo, hi).astype(np.int64)
            nonzero = w != 0
            clipped += int((rounded != w_int)[nonzero].sum())
            zeroed += int((w_int == 0)[nonzero].sum())
            errors.append(np.abs(w_int / scale - w)[nonzero])
            ints.append(w_int)
        error = np.concatenate(errors) if errors else np.zeros(0)
        largest = max((float(np.abs(w).max(initial=0.0)) for w in weights), default=0.0)
        return ints, {"count": int(error.size), "clipped": clipped / max(error.size, 1),
                      "zeroed": zeroed,
                      "error": float(error.mean() / largest) if error.size and largest else 0.0}

    def _scale(self, name, weights, bias, threshold):
        core = self.core
        magnitudes = np.concatenate([np.abs(w[w != 0]) for w in weights] or [np.zeros(0)])
        candidates = {}
        if magnitudes.size:
            candidates["weights"] = core.weight_range[1] / np.percentile(magnitudes,
                                                                         self.percentile)
        if threshold.max(initial=0.0) > 0:
            # Keep the threshold below Vmax: a neuron with threshold Vmax could never fire.
            candidates["threshold"] = (core.voltage_range[1] - 1) / threshold.max()
        if np.abs(bias).max(initial=0.0) > 0:
            candidates["bias"] = core.current_range[1] / np.abs(bias).max()
        if not candidates:
            raise NIRImportError(f"node {name}: no weights, threshold or bias to scale")
        limited = min(candidates, key=candidates.get)
        return float(candidates[limited]), limited

    def _validate(self, name, params, size):
        try:
            NeuronParams(**{k: np.broadcast_to(np.asarray(v, dtype=np.int64), (size,)).copy()
                            for k, v in params.items()}).validate(self.core, size)
        except ValueError as error:
            raise NIRImportError(f"node {name}: {error}") from None


def _declared_shape(node, kind: str, shape: tuple) -> tuple:
    """A flat input of the right size takes the shape a Conv2d (input_shape) or a pooling node
    (input_type) declares."""
    if len(shape) == 3:
        return shape
    declared = None
    if kind == "Conv2d" and getattr(node, "input_shape", None) is not None:
        channels = np.asarray(node.weight).shape[1] * int(node.groups)
        declared = (channels, *(int(n) for n in node.input_shape))
    elif kind in ("SumPool2d", "AvgPool2d"):
        given = (getattr(node, "input_type", None) or {}).get("input")
        declared = None if given is None else tuple(int(n) for n in given)
    if declared and int(np.prod(declared)) == int(np.prod(shape)):
        return declared
    return shape


def neuron_gain(node, size: int, dt: float, name: str) -> np.ndarray:
    """The forward-Euler input gain (per neuron) that `load` applies to NIR neuron `node`."""
    return _Neuron(node, type(node).__name__, size, dt, name).gain


def _largest_relative_error(got, want) -> float:
    """max |got - want| / want over the entries where want > 0 (0 if there are none)."""
    positive = want > 0
    return float(np.max(np.abs(got - want)[positive] / want[positive])) if positive.any() else 0.0


class _Neuron:
    """A NIR neuron node in the chip's terms: gains, constant drive, threshold, decays."""

    def __init__(self, node, kind, size, dt, name):
        def param(key, default=None):
            value = getattr(node, key, default)
            array = np.asarray(default if value is None else value, dtype=np.float64)
            if array.ndim > 1 and array.size == size:   # per neuron of a (C, H, W) layer
                array = array.ravel()
            try:
                return np.broadcast_to(array, (size,)).astype(np.float64).ravel()
            except ValueError:
                raise NIRImportError(f"node {name}: {key} has shape {array.shape}, the node "
                                     f"{size} neurons") from None

        self.name, self.notes = name, []
        r, v_reset, v_leak = param("r", 1.0), param("v_reset", 0.0), param("v_leak", 0.0)
        self.threshold = param("v_threshold", 0.0) - v_reset   # LI: none (it never fires)
        if (self.threshold < 0).any():
            raise NIRImportError(f"node {name}: v_threshold below v_reset cannot be expressed "
                                 f"(the chip's threshold is unsigned)")
        if kind == "IF":
            self.beta, self.alpha = np.ones(size), np.zeros(size)
            self.gain, self.constant = dt * r, np.zeros(size)
        else:
            tau = param("tau_mem" if kind == "CubaLIF" else "tau")
            self.beta = self._euler(tau, dt, "tau_mem" if kind == "CubaLIF" else "tau")
            self.gain = dt * r / tau
            self.constant = dt / tau * (v_leak - v_reset)
            self.alpha = np.zeros(size)
            if kind == "CubaLIF":
                tau_syn = param("tau_syn")
                self.alpha = self._euler(tau_syn, dt, "tau_syn")
                self.gain = self.gain * dt / tau_syn * param("w_in", 1.0)
                if np.any(self.constant != 0):
                    raise NIRImportError(f"node {name}: CubaLIF with v_leak != v_reset cannot be "
                                         f"expressed (the chip's bias enters the current, not "
                                         f"the membrane)")
        if np.any(v_reset != 0):
            self.notes.append("v_reset != 0: the chip's membrane starts at v_reset, not at 0")

    def _euler(self, tau, dt, key):
        if (tau <= 0).any() or (dt > tau).any():
            raise NIRImportError(f"node {self.name}: {key} must be at least dt = {dt:g} s "
                                 f"(forward Euler decays 1 - dt/tau), got {tau.min():g}")
        return 1.0 - dt / tau

    def decays(self, core: CoreConfig, name: str):
        """Return (alpha, beta) as integer arrays and the largest rounding error."""
        try:
            alpha = np.array([decay_from_float(core, float(a)) for a in self.alpha])
            beta = np.array([decay_from_float(core, float(b)) for b in self.beta])
        except ValueError as error:
            raise NIRImportError(f"node {name}: {error}") from None
        one = core.decay_one
        error = max(float(np.abs(alpha / one - self.alpha).max(initial=0.0)),
                    float(np.abs(beta / one - self.beta).max(initial=0.0)))
        return alpha, beta, error


def run_in_norse(graph, x: np.ndarray, dt: float, input_shape: tuple | None = None) -> np.ndarray:
    """Run `graph` through Norse's own NIR import (`norse.torch.from_nir`, float32), the peer the
    golden model is compared with: (B x) T x n_in input counts -> (B x) T x n_out bool spikes.

    `input_shape` reshapes each step's inputs per sample (e.g. (C, H, W) for a convolution).
    Needs torch and norse (optional: `pip install torch` and `pip install --no-deps norse`).
    """
    import norse.torch
    import torch
    batch = x if x.ndim == 3 else x[None]
    executor = norse.torch.from_nir(graph, dt=dt)
    state, out = None, []
    with torch.no_grad():
        for t in range(batch.shape[1]):
            step = batch[:, t] if input_shape is None else batch[:, t].reshape(-1, *input_shape)
            z, state = executor(torch.tensor(step, dtype=torch.float32), state)
            out.append(z.numpy().reshape(len(batch), -1) > 0)
    spikes = np.stack(out, axis=1)
    return spikes if x.ndim == 3 else spikes[0]
