"""Describe a spiking network, place it on the chip's cores, and run it on any chip client.

    net = Network()
    pixels = net.add_input("pixels", 64)
    hidden = net.add_population("hidden", 100, beta=3900, threshold=300)
    out = net.add_population("out", 10, threshold=200, record=True)
    net.connect(pixels, hidden, w1)          # w1: 64 x 100 integer weights, 0 = no synapse
    net.connect(hidden, out, w2)
    image = net.compile(ChipConfig())        # placement, axons, route tables, memory images
    spikes = run(client, image, {"pixels": raster})   # {"out": steps x 10 bool}

Learning (a chip with plastic cores, `ChipConfig(plastic=...)`): `connect(..., plastic=True)`
makes every pre -> post pair of the connection a plastic synapse (weight 0 allowed), `load`
writes the plastic masks, `configure_learning` sets the rule of the cores a population sits on,
`run(..., targets=..., factors=...)` sends the teaching signal of every step, and
`read_connection` reads the learned weights back.

Timing (docs/architecture.md): host inputs sent for step t act in step t; a spike of step t
reaches its targets as input of step t + 1. `Network.reference` simulates the description directly
with those semantics (no placement, no routing), which is how tests check the compiler and the chip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikefab import protocol as P
from spikefab.sim.lif import BatchLIF, WeightSums
from spikefab.spec import (
    ChipConfig,
    CoreConfig,
    NeuronParams,
    ResetMode,
    integer_array,
    pack_weight_word,
    state_fields,
    unpack_fields,
)

from .learning import (
    configure_rule,
    read_weight_matrix,
    send_factors,
    send_targets,
    write_mask,
)
from .streaming import SpikesLost, stream

__all__ = ["Network", "Population", "InputGroup", "ChipImage", "NetworkDoesNotFit", "SpikesLost",
           "load", "run", "run_on_rtl", "configure_learning", "read_connection"]


class NetworkDoesNotFit(ValueError):
    """The network needs more neurons, axons or route entries than the chip has."""


@dataclass
class InputGroup:
    name: str
    size: int


@dataclass
class Population:
    name: str
    size: int
    params: dict          # field -> int or per-neuron int array (see NeuronParams)
    record: bool = False  # send this population's spikes to the host


@dataclass
class Connection:
    pre: InputGroup | Population
    post: Population
    weights: np.ndarray   # pre.size x post.size, integers; 0 means no synapse
    plastic: bool = False  # every pre -> post pair is a plastic synapse (weight 0 included)


@dataclass
class ChipImage:
    """Everything `load` writes to a chip, plus the maps to read its outputs."""
    config: ChipConfig
    weights: list[np.ndarray]           # per core, A x N
    params: list[NeuronParams]          # per core
    route_index: list[tuple[int, int]]  # per source: (start, count)
    route_dest: list[tuple[int, int]]   # (core, axon) or (HOST_CORE, 0)
    placement: dict[str, list[tuple[int, int]]]  # population -> (core, neuron) per index
    input_ids: dict[str, np.ndarray]    # input group -> chip input id per index
    source_owner: dict[int, tuple[str, int]] = field(default_factory=dict)
    recorded: list[str] = field(default_factory=list)  # populations sent to the host
    masks: list[np.ndarray] = field(default_factory=list)   # per core A x N plastic (if any)
    sources: dict[str, list[int]] = field(default_factory=dict)   # group -> source ids
    axons: list[dict[int, int]] = field(default_factory=list)     # per core: source -> axon


class Network:
    """A network of input groups and LIF populations joined by dense integer weight matrices."""

    def __init__(self):
        self.inputs: dict[str, InputGroup] = {}
        self.populations: dict[str, Population] = {}
        self.connections: list[Connection] = []

    def add_input(self, name: str, size: int) -> InputGroup:
        self._check_new(name, size)
        self.inputs[name] = group = InputGroup(name, size)
        return group

    def add_population(self, name: str, size: int, *, alpha=0, beta=0, threshold=0, bias=0,
                       refractory=0, reset=ResetMode.ZERO, record=False) -> Population:
        """Add `size` neurons; each parameter is an integer (see docs/numerics.md) or an array."""
        self._check_new(name, size)
        params = dict(alpha=alpha, beta=beta, threshold=threshold, bias=bias,
                      refractory=refractory, reset=reset)
        for key, value in params.items():
            array = integer_array(f"{name}.{key}", value)
            if array.shape not in ((), (size,)):
                raise ValueError(f"{name}.{key} must be one integer or {size} of them, not shape "
                                 f"{array.shape}")
            params[key] = int(array) if array.shape == () else array
        self.populations[name] = pop = Population(name, size, params, record)
        return pop

    def connect(self, pre, post, weights, *, plastic: bool = False):
        """Connect `pre` to population `post` with a pre.size x post.size integer matrix; with
        `plastic`, every pair is a plastic synapse (its weight, 0 or not, is the start)."""
        weights = np.asarray(weights)
        if not np.issubdtype(weights.dtype, np.integer):
            raise ValueError(f"weights {pre.name} -> {post.name} must be integers")
        if weights.shape != (pre.size, post.size):
            raise ValueError(f"weights {pre.name} -> {post.name} must have shape "
                             f"({pre.size}, {post.size}), not {weights.shape}")
        if not isinstance(post, Population):
            raise ValueError(f"connection target {post.name} must be a population")
        self.connections.append(Connection(pre, post, weights.astype(np.int64), bool(plastic)))

    def _check_new(self, name: str, size: int):
        if name in self.inputs or name in self.populations:
            raise ValueError(f"name {name!r} is already used")
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"size of {name!r} must be a positive integer, not {size!r}")

    # Compilation ------------------------------------------------------------------------------

    def compile(self, cfg: ChipConfig) -> ChipImage:
        """Place populations on cores, give every (source, core) pair an axon, build tables.

        Raises `NetworkDoesNotFit` naming the resource that ran out.
        """
        core = cfg.core
        placement = self._place(cfg)
        input_ids, next_id = {}, 0
        for group in self.inputs.values():
            input_ids[group.name] = np.arange(next_id, next_id + group.size)
            next_id += group.size
        if next_id > cfg.n_inputs:
            raise NetworkDoesNotFit(f"the network has {next_id} inputs, the chip "
                                    f"{cfg.n_inputs}")
        sources = self._sources(cfg, placement, input_ids)
        weights = [np.zeros((core.n_axons, core.n_neurons), dtype=np.int64)
                   for _ in range(cfg.n_cores)]
        axons: list[dict[int, int]] = [{} for _ in range(cfg.n_cores)]
        masks = [np.zeros((core.n_axons, core.n_neurons), dtype=bool)
                 for _ in range(cfg.n_cores)]
        for conn in self.connections:
            pre_sources = sources[conn.pre.name]
            for j, (c, n) in enumerate(placement[conn.post.name]):
                if conn.plastic and not cfg.is_plastic(c):
                    raise NetworkDoesNotFit(f"plastic connection {conn.pre.name} -> "
                                            f"{conn.post.name}: {conn.post.name} is on core "
                                            f"{c}, which is not plastic")
                column = conn.weights[:, j]
                pairs = range(len(column)) if conn.plastic else np.flatnonzero(column)
                for i in pairs:
                    axon = axons[c].setdefault(pre_sources[i], len(axons[c]))
                    if axon >= core.n_axons:
                        raise NetworkDoesNotFit(f"core {c} needs more than {core.n_axons} "
                                                f"axons")
                    if masks[c][axon, n] or (conn.plastic and weights[c][axon, n]):
                        raise ValueError(f"{conn.pre.name}[{i}] -> {conn.post.name}[{j}]: a "
                                         f"plastic synapse cannot be shared with another "
                                         f"connection")
                    weights[c][axon, n] += column[i]
                    masks[c][axon, n] = conn.plastic
        lo, hi = core.weight_range
        for c, w in enumerate(weights):
            if w.size and (w.min() < lo or w.max() > hi):
                raise ValueError(f"weights on core {c} must be in {lo}..{hi}")
        route_index, route_dest = self._routes(cfg, sources, axons)
        owner = {s: (name, i) for name, ss in sources.items() for i, s in enumerate(ss)}
        recorded = [pop.name for pop in self.populations.values() if pop.record]
        return ChipImage(cfg, weights, self._params(cfg, placement), route_index, route_dest,
                         placement, input_ids, owner, recorded,
                         masks if any(m.any() for m in masks) else [], sources, axons)

    def _place(self, cfg: ChipConfig) -> dict[str, list[tuple[int, int]]]:
        n, total = cfg.core.n_neurons, sum(p.size for p in self.populations.values())
        if total > cfg.n_cores * n:
            raise NetworkDoesNotFit(f"the network has {total} neurons, the chip "
                                    f"{cfg.n_cores * n} ({cfg.n_cores} cores x {n})")
        placement, slot = {}, 0
        for pop in self.populations.values():
            placement[pop.name] = [divmod(s, n) for s in range(slot, slot + pop.size)]
            slot += pop.size
        return placement

    def _sources(self, cfg, placement, input_ids) -> dict[str, list[int]]:
        n = cfg.core.n_neurons
        sources = {name: [c * n + k for c, k in slots] for name, slots in placement.items()}
        for name, ids in input_ids.items():
            sources[name] = [cfg.input_source(int(i)) for i in ids]
        return sources

    def _routes(self, cfg, sources, axons):
        recorded = {s for pop in self.populations.values() if pop.record
                    for s in sources[pop.name]}
        route_index, route_dest = [(0, 0)] * cfg.n_sources, []
        for source in range(cfg.n_sources):
            dests = [(c, table[source]) for c, table in enumerate(axons) if source in table]
            if source in recorded:
                dests.append((P.HOST_CORE, 0))
            route_index[source] = (len(route_dest) if dests else 0, len(dests))
            route_dest += dests
        if len(route_dest) > cfg.route_entries:
            raise NetworkDoesNotFit(f"the network needs {len(route_dest)} route entries, the "
                                    f"chip has {cfg.route_entries}")
        return route_index, route_dest

    def _params(self, cfg: ChipConfig, placement) -> list[NeuronParams]:
        per_core = [NeuronParams.zeros(cfg.core) for _ in range(cfg.n_cores)]
        for pop in self.populations.values():
            for name, value in pop.params.items():
                values = np.broadcast_to(np.asarray(value, dtype=np.int64), (pop.size,))
                for (c, n), v in zip(placement[pop.name], values):
                    getattr(per_core[c], name)[n] = v
        for params in per_core:
            params.validate(cfg.core)
        return per_core

    # Reference simulation ---------------------------------------------------------------------

    def reference(self, core: CoreConfig, inputs: dict[str, np.ndarray], steps: int | None = None,
                  *, membranes=()) -> dict[str, np.ndarray]:
        """Simulate the description directly (one big neuron array, no placement or routing).

        `inputs` maps input groups to steps x size event counts, or to B x steps x size for B
        independent samples evaluated together (then every result carries the batch axis too);
        a group left out gets no events. Returns steps x size (or B x steps x size) bool spikes
        per population, with the chip's arithmetic (`BatchLIF`, bit-exact with `lif_update`) and
        timing: an input acts in its own step, a spike of step t reaches its targets at t + 1.
        Per-step caps of the cores are not modelled (a `ChipConfig` rules out overflow).
        Every population named in `membranes` also gets the entry `name + ".v"`: its membrane V
        after each step (after any reset), int64 of the same shape, what `run(...,
        membranes=...)` reads back from a chip (the value of a non-spiking readout).
        """
        counts, batched = self._reference_inputs(inputs, steps)
        batch, steps = counts[0][1].shape[:2] if counts else (1, steps or 0)
        offsets = self._offsets()
        total = sum(p.size for p in self.populations.values())
        lif = BatchLIF(core, self._all_params(core, offsets, total), batch)
        sums = {id(c): WeightSums(c.weights) for c in self.connections}
        # Spikes are 0/1, so a row of pre.size of them sums exactly in sums.dtype(pre.size).
        recurrent = [(offsets[c.pre.name], c.pre.size, offsets[c.post.name], c.post.size,
                      sums[id(c)].weights_as(sums[id(c)].dtype(c.pre.size)))
                     for c in self.connections if isinstance(c.pre, Population)]
        spikes = np.zeros((steps, batch, total), dtype=bool)
        watched = self._watched(membranes, offsets)
        volts = np.zeros((steps, batch, len(watched)), dtype=np.int64)
        chunk = max(1, (1 << 18) // (batch * max(total, 1)))
        for first in range(0, steps, chunk):
            driven, bound = self._input_sums(counts, sums, first, min(first + chunk, steps),
                                             offsets, total)
            if not recurrent and not len(watched):   # feed-forward: all steps at once
                spikes[first:first + len(driven)] = lif.run(driven, bound)
                continue
            for t, acc in enumerate(driven, start=first):
                for pre, size, post, width, weights in recurrent:
                    if t:
                        previous = spikes[t - 1, :, pre:pre + size].astype(weights.dtype)
                        acc[:, post:post + width] += previous @ weights
                spikes[t] = lif.step(acc)
                volts[t] = lif.v[:, watched]
        out = {}
        for name, pop in self.populations.items():
            part = spikes[:, :, offsets[name]:offsets[name] + pop.size].transpose(1, 0, 2)
            out[name] = part if batched else part[0]
        first = 0
        for name in membranes:
            size = self.populations[name].size
            part = volts[:, :, first:first + size].transpose(1, 0, 2)
            out[name + ".v"] = part if batched else part[0]
            first += size
        return out

    def _watched(self, membranes, offsets) -> np.ndarray:
        """Neuron indices (into the reference's one array) of the populations in `membranes`."""
        unknown = [name for name in membranes if name not in self.populations]
        if unknown:
            raise ValueError(f"membranes: no population named {unknown[0]!r}")
        return np.array([offsets[name] + k for name in membranes
                         for k in range(self.populations[name].size)], dtype=np.int64)

    def _offsets(self) -> dict[str, int]:
        offsets, total = {}, 0
        for pop in self.populations.values():
            offsets[pop.name] = total
            total += pop.size
        return offsets

    def _all_params(self, core: CoreConfig, offsets: dict[str, int], total: int) -> NeuronParams:
        params = NeuronParams(**{f: np.zeros(total, dtype=np.int64) for f in
                                 ("alpha", "beta", "threshold", "bias", "refractory", "reset")})
        for pop in self.populations.values():
            for name, value in pop.params.items():
                getattr(params, name)[offsets[pop.name]:offsets[pop.name] + pop.size] = value
        params.validate(core, total)
        return params

    def _reference_inputs(self, inputs: dict, steps: int | None):
        """Return ([(group, B x T x size counts)], batched) with every array checked."""
        unknown = set(inputs) - set(self.inputs)
        if unknown:
            raise ValueError(f"no input group named {sorted(unknown)[0]!r}")
        arrays, batched = [], False
        for name, value in inputs.items():
            array = np.asarray(value)
            array = integer_array(f"input {name!r}", array.astype(np.int64) if array.dtype == bool
                                  else array)
            batched |= array.ndim == 3
            if array.ndim not in (2, 3) or array.shape[-1] != self.inputs[name].size:
                raise ValueError(f"input {name!r} must be steps x {self.inputs[name].size} or "
                                 f"B x steps x {self.inputs[name].size}, not {array.shape}")
            arrays.append((name, array))
        arrays = [(name, a if a.ndim == 3 else a[None]) for name, a in arrays]
        shapes = {a.shape[:2] for _, a in arrays}
        if batched and len({s[0] for s in shapes}) > 1:
            raise ValueError(f"inputs disagree on the batch size: {sorted(shapes)}")
        if steps is not None:
            arrays = [(name, a[:, :steps]) for name, a in arrays]
            if any(a.shape[1] < steps for _, a in arrays):
                raise ValueError(f"inputs hold fewer than {steps} steps")
        elif len({s[1] for s in shapes}) > 1:
            raise ValueError(f"inputs disagree on the number of steps: {sorted(shapes)}")
        if arrays and (min(a.min(initial=0) for _, a in arrays) < 0):
            raise ValueError("input event counts must be >= 0")
        return arrays, batched

    def _input_sums(self, counts, sums, first: int, stop: int, offsets, total
                    ) -> np.ndarray:
        """Return the input-group sums of steps first..stop-1 as (steps, B, total) float64, and
        a bound on their magnitude (the sum of every connection's own bound)."""
        batch = counts[0][1].shape[0] if counts else 1
        acc = np.zeros((stop - first, batch, total))
        arrays, bound = dict(counts), 0.0
        for conn in self.connections:
            if isinstance(conn.pre, InputGroup) and conn.pre.name in arrays:
                block = arrays[conn.pre.name][:, first:stop].transpose(1, 0, 2)
                rows = block.reshape(-1, conn.pre.size)
                most = int(rows.sum(axis=-1).max(initial=0))
                part = sums[id(conn)](rows, most)
                bound += float(most * sums[id(conn)].largest)
                post = offsets[conn.post.name]
                acc[:, :, post:post + conn.post.size] += part.reshape(stop - first, batch, -1)
        return acc, bound


# Loading and running on a chip --------------------------------------------------------------

def load(client, image: ChipImage):
    """Write every memory image and route table of `image` through `client`."""
    cfg = image.config.core
    word_bits = (cfg.words_per_axon - 1).bit_length()
    k = cfg.weights_per_word
    client.reset()
    for c in range(image.config.n_cores):
        for axon in range(cfg.n_axons):
            row = image.weights[c][axon]
            words = [pack_weight_word(cfg, row[j * k:(j + 1) * k])
                     for j in range(cfg.words_per_axon)]
            if any(words):
                client.write_weights(c, axon << word_bits, words)
        client.write_params(c, 0, [image.params[c].word(cfg, n) for n in range(cfg.n_neurons)])
    client.write_route_index(0, image.route_index)
    if image.route_dest:
        client.write_route_dest(0, image.route_dest)
    if image.masks:
        for c in image.config.plastic:
            write_mask(client, c, image.masks[c])


def configure_learning(client, image: ChipImage, population: str, rule: str | None = None,
                       **values):
    """Set the learning rule (`host.learning.configure_rule`) of every core `population` sits
    on. The rule is per core: it applies to every plastic synapse of those cores."""
    for c in sorted({c for c, _ in image.placement[population]}):
        configure_rule(client, c, rule, **values)


def read_connection(client, image: ChipImage, pre: str, post: str) -> np.ndarray:
    """Read the weights pre -> post (pre.size x post.size) back from the chip: learned weights
    of a plastic connection (0 where no synapse was allocated). Assumes no other connection
    shares its synapses (always so for plastic ones)."""
    pre_sources = image.sources[pre]
    slots = image.placement[post]
    matrices = {c: read_weight_matrix(client, c) for c in sorted({c for c, _ in slots})}
    out = np.zeros((len(pre_sources), len(slots)), dtype=np.int64)
    for j, (c, n) in enumerate(slots):
        for i, source in enumerate(pre_sources):
            axon = image.axons[c].get(source)
            if axon is not None:
                out[i, j] = matrices[c][axon, n]
    return out


def _teaching(image: ChipImage, signals: dict | None, t: int, kind: str):
    """(core, neurons or factor array) of step t for every population in `signals`."""
    per_core: dict[int, np.ndarray] = {}
    n = image.config.core.n_neurons
    for name, array in (signals or {}).items():
        row = np.asarray(array[t])
        if row.shape != (len(image.placement[name]),):
            raise ValueError(f"{kind} of {name!r} must be steps x {len(image.placement[name])}")
        for (c, neuron), value in zip(image.placement[name], row):
            per_core.setdefault(c, np.zeros(n, dtype=np.int64))[neuron] = int(value)
    return per_core


def run(client, image: ChipImage, inputs: dict[str, np.ndarray], steps: int | None = None,
        *, targets: dict | None = None, factors: dict | None = None, membranes=()
        ) -> dict[str, np.ndarray]:
    """Stream `inputs` (group -> steps x size event counts) and return recorded spikes.

    An adapter over the one streaming loop (`spikefab.host.streaming.stream`): each step's events
    are the chip input ids of every group, repeated by their counts (groups in `inputs` order).
    Learning: `targets` (population -> steps x size bool: the spikes it should make) and
    `factors` (population -> steps x size int8 third factors) are sent before each step's TICK.

    Returns population -> steps x size bool for every recorded population.
    Raises `SpikesLost` (with the spikes that did arrive) if any event was not delivered: more
    input events in a step than the chip accepts (`ChipConfig.max_host_events` routed events:
    they are not sent), or events the chip dropped (a step produced more recorded spikes than
    its host buffer holds, `ChipConfig.host_buffer`).
    `membranes`: populations whose membrane V is read back (READ_STATE) before every step's TICK
    and once at the end, returned as `name + ".v"` (steps x size int64, V after each step), as
    `Network.reference` gives it; one state read per core and step, so it slows the run.
    """
    if steps is None:
        steps = max((len(r) for r in inputs.values()), default=0)
    volts = {name: np.zeros((steps, len(image.placement[name])), dtype=np.int64)
             for name in membranes}
    teaching = bool(targets or factors or membranes)

    def step_ids():
        for t in range(steps):
            ids = np.concatenate([np.repeat(image.input_ids[group],
                                            np.asarray(raster[t], dtype=np.int64))
                                  for group, raster in inputs.items()] or [np.zeros(0, int)])
            if len(ids) or teaching:
                yield t, ids

    def teach(t):
        if t:
            _read_membranes(client, image, volts, t - 1)
        for c, bits in _teaching(image, targets, t, "targets").items():
            send_targets(client, c, np.flatnonzero(bits))
        for c, values in _teaching(image, factors, t, "factors").items():
            send_factors(client, c, values)

    result = stream(client, image, step_ids(), until=steps, teach=teach if teaching else None)
    if steps:
        _read_membranes(client, image, volts, steps - 1)
    out = {name: np.zeros((steps, len(image.placement[name])), dtype=bool)
           for name in image.recorded}
    for name, pairs in result.spikes.items():
        out[name][pairs[:, 0], pairs[:, 1]] = True
    result.check(out)
    out.update({name + ".v": v for name, v in volts.items()})
    return out


def _read_membranes(client, image: ChipImage, volts: dict, t: int):
    """Read the membrane V of every population in `volts` into row t (one read per core)."""
    layout = state_fields(image.config.core)
    for name, rows in volts.items():
        slots = image.placement[name]
        for c in sorted({c for c, _ in slots}):
            first = min(n for k, n in slots if k == c)
            last = max(n for k, n in slots if k == c)
            words = client.read_state(c, first, last - first + 1)
            for j, (k, n) in enumerate(slots):
                if k == c:
                    rows[t, j] = unpack_fields(layout, words[n - first])["v"]


def run_on_rtl(image: ChipImage, inputs: dict[str, np.ndarray], steps: int | None = None, *,
               membranes=()) -> dict[str, np.ndarray]:
    """Run on the Verilator-simulated chip gateware; return the recorded spikes like `run`.

    The session (load, then run) is driven through the golden model while its request bytes are
    recorded; the same bytes are then replayed into the gateware on the native simulated board
    (`spikefab.boards.sim.replay`, built once per configuration and cached), whose every reply
    byte must equal the model's (`SimulationFailed` otherwise). The spikes returned are
    therefore the gateware's. (The cocotb replay with random stalls, for cycle-level checks, is
    `spikefab.verify.rtlsim.run_chip_exchange`.)
    """
    from spikefab.boards.sim import replay
    from spikefab.sim import ChipModel

    from .link import ChipClient, RecordingTransport
    transport = RecordingTransport(ChipModel(image.config))
    client = ChipClient(transport)
    load(client, image)
    spikes = run(client, image, inputs, steps, membranes=membranes)
    replay(image.config, transport.requests, transport.replies)
    return spikes
