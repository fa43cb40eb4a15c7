"""One device API over every transport: the golden model, the simulated board, a real board.

    with open_device("sim") as dev:          # or "model", "socket://127.0.0.1:7000",
        dev.info()                           #    "serial:///dev/ttyUSB1?baud=3000000"
        dev.load(image)                      # a compiled network (host/network.py)
        result = dev.stream(image, "pixels", steps)   # steps: (step, input indices) pairs
        result.spikes["out"]                 # (step, neuron) pairs of a recorded population

`open_device` picks the transport (`spikefab.host.transport`), `Device.stream` is the streaming
loop of `spikefab.host.streaming` (flow control: `spikefab.host.flow`) for one input group.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from spikefab.spec import ChipConfig

from . import learning
from .link import ChipClient
from .network import ChipImage, load
from .streaming import StreamResult, stream
from .transport import CountingTransport, Transport, open_transport

__all__ = ["Device", "open_device", "StreamResult", "parse_config"]


def _config_arg(cfg: ChipConfig) -> str:
    c = cfg.core
    return (f"cores={cfg.n_cores},neurons={c.n_neurons},axons={c.n_axons},k={c.weights_per_word},"
            f"inputs={cfg.n_inputs},route_entries={cfg.route_entries},"
            f"max_host_events={cfg.max_host_events},host_buffer={cfg.host_buffer}" +
            (f",plastic={sum(1 << c for c in cfg.plastic)}" if cfg.plastic else ""))


def parse_config(text: str) -> ChipConfig:
    """Parse `cores=4,neurons=256,...` (the keys of `_config_arg`) into a ChipConfig
    (`plastic`: a bit mask of the plastic cores)."""
    from spikefab.spec import CoreConfig
    values = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        try:
            values[key.strip()] = int(value)
        except ValueError:
            raise ValueError(f"chip configuration item {item!r} must be key=integer") from None
    core_keys = {"neurons": "n_neurons", "axons": "n_axons", "k": "weights_per_word"}
    chip_keys = {"cores": "n_cores", "inputs": "n_inputs", "route_entries": "route_entries",
                 "max_host_events": "max_host_events", "host_buffer": "host_buffer",
                 "plastic": "plastic"}
    unknown = set(values) - set(core_keys) - set(chip_keys)
    if unknown:
        raise ValueError(f"unknown chip configuration keys: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(list(core_keys) + list(chip_keys))}")
    core = CoreConfig(**{core_keys[k]: v for k, v in values.items() if k in core_keys})
    if "plastic" in values:
        mask = values["plastic"]
        values["plastic"] = tuple(c for c in range(max(mask.bit_length(), 1)) if mask >> c & 1)
    return ChipConfig(core=core, **{chip_keys[k]: v for k, v in values.items()
                                    if k in chip_keys})


class Device:
    """A chip behind a transport, with the operations a run needs."""

    def __init__(self, transport: Transport, *, timeout: float = 10.0, resync: bool = False):
        self.name = transport.name
        self.transport = CountingTransport(transport)
        self.capacity = transport.capacity          # link bytes/s, if known
        #: The simulated board's launcher (`NativeBoard`: `stats()`), None for other devices.
        self.board = getattr(transport, "launcher", None)
        try:
            self.client = ChipClient(self.transport, timeout=timeout, resync=resync)
        except BaseException:
            transport.close()
            raise
        self.config = self.client.config
        self._plastic = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the transport (and stop a simulated board it owns)."""
        self.transport.close()

    def info(self) -> dict:
        """Identity, capabilities and status counters of the device."""
        cfg = self.config
        return {"device": self.name, "protocol_version": self.client.identity.version,
                "cores": cfg.n_cores, "neurons_per_core": cfg.core.n_neurons,
                "axons_per_core": cfg.core.n_axons, "weights_per_word": cfg.core.weights_per_word,
                "weight_width": cfg.core.weight_width, "inputs": cfg.n_inputs,
                "route_entries": cfg.route_entries, "max_host_events": cfg.max_host_events,
                "host_buffer": cfg.host_buffer, "max_payload": self.client.identity.max_payload,
                "window_bytes": self.client.window,
                "link_bytes_per_s": self.capacity, "plastic_cores": list(self.plastic_cores()),
                "status": self.client.status()}

    def load(self, image: ChipImage):
        # IDENTIFY does not report plastic cores: compare everything else.
        if replace(image.config, plastic=()) != self.config:
            raise ValueError(f"the network was compiled for {image.config}, the device is "
                             f"{self.config}")
        load(self.client, image)

    # Learning (plastic cores; spikefab.host.learning, docs/protocol.md WRITE_LEARN) ------------

    def plastic_cores(self) -> tuple[int, ...]:
        """The plastic cores (probed once: one READ_LEARN per core)."""
        if self._plastic is None:
            self._plastic = learning.plastic_cores(self.client)
        return self._plastic

    def configure_learning(self, core: int, rule: str | None = None, *,
                           seed: int | None = None, **values):
        """Set the learning rule of `core` in one request: a preset of
        `spikefab.learning.RULES` (stdp, reward_stdp, superspike, decolle, delta) and register
        values by name (m_unit, shift, w_min, w_max, x_decay, ..., enable=0 to pause)."""
        learning.configure_rule(self.client, core, rule, seed=seed, **values)

    def learning_rule(self, core: int) -> dict[str, int]:
        return learning.read_rule(self.client, core)

    def set_plastic_mask(self, core: int, mask):
        """(A, N) bools: which synapses of `core` learn."""
        learning.write_mask(self.client, core, mask)

    def send_factors(self, core: int, factors, first: int = 0):
        """Third factors (int8 per neuron) for the coming step (FACTOR_MODE HOST)."""
        learning.send_factors(self.client, core, factors, first)

    def send_targets(self, core: int, neurons):
        """Target spikes of the coming step (FACTOR_MODE ERROR: error = target - output)."""
        learning.send_targets(self.client, core, neurons)

    def read_weights(self, core: int) -> np.ndarray:
        """The (A, N) weight matrix of `core`, as learned so far."""
        return learning.read_weight_matrix(self.client, core)

    def read_traces(self, core: int) -> dict[str, np.ndarray]:
        return learning.read_traces(self.client, core)

    def stream(self, image: ChipImage, group: str, steps, *, progress=None, live: bool = False
               ) -> StreamResult:
        """Run `steps` ((step, input indices of `group`) pairs, steps ascending, from 0) from
        the chip's current step; return the recorded output spikes (`streaming.stream`: events
        over the chip's per-step limit are cut and counted, `result.lost` holds what the chip
        dropped). `progress(events, step)` is called now and then; `live`: steps come from a
        live source and each one's spikes are fetched before the next (`streaming.stream`). Raises
        `ChipError`/`LinkError` if the chip refuses a request or the link breaks.
        """
        if group not in image.input_ids:
            raise ValueError(f"the network has no input group {group!r} (it has "
                             f"{', '.join(image.input_ids) or 'none'})")
        ids = np.asarray(image.input_ids[group], dtype=np.int64)
        chip_steps = ((step, ids[np.asarray(local, dtype=np.int64)]) for step, local in steps)
        return stream(self.client, image, chip_steps, progress=progress, live=live)


def open_device(spec: str, *, config: ChipConfig | None = None, timeout: float = 10.0,
                uart_divisor: int | None = None, board=None) -> Device:
    """Open a device: `model` (the golden model in-process), `sim` (start a simulated board
    and connect to it over a local socket; `board` is its launcher class, default
    `spikefab.boards.sim.NativeBoard`), or a serial port / pyserial URL
    (`transport.open_transport`).

    `config` is the chip configuration of `model` and `sim` (default `ChipConfig()`).
    """
    transport = open_transport(spec, config=config, board=board, uart_divisor=uart_divisor)
    if spec == "sim":
        timeout = max(timeout, 60.0)       # the first requests wait for the simulator
    # A real link may hold a partial frame of an earlier host: resynchronise.
    return Device(transport, timeout=timeout, resync=spec not in ("model", "sim"))
