"""One device API over every transport: the golden model, the simulated board, a real board.

    with open_device("sim") as dev:          # or "model", "socket://127.0.0.1:7000",
        dev.info()                           #    "serial:///dev/ttyUSB1?baud=3000000"
        dev.load(image)                      # a compiled network (host/network.py)
        result = dev.stream(image, "pixels", steps)   # steps: (step, input indices) pairs
        result.spikes["out"]                 # (step, neuron) pairs of a recorded population

`stream` pipelines INPUT, TICK and FETCH requests within the transport's window, caps each step's
events to what the chip accepts (counted, never dropped silently), fetches output spikes before
the chip's host buffer could overflow, and checks the chip's drop counters at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from spikefab import protocol as P
from spikefab.spec import ChipConfig

from . import learning
from .link import ChipClient, LinkError, ModelTransport, SerialTransport
from .network import ChipImage, counters_grown, load

__all__ = ["Device", "open_device", "StreamResult", "BoardSimProcess"]

class BoardSimProcess:
    """`spikefab board-sim` started in the background; `url` is where it listens."""

    def __init__(self, cfg: ChipConfig | None = None, *, build_timeout: float = 900,
                 uart_divisor: int | None = None, log=None):
        self._dir = tempfile.TemporaryDirectory(prefix="spikefab-board-")
        ready = Path(self._dir.name) / "url"
        command = [sys.executable, "-m", "spikefab.cli", "board-sim", "--once", "--port", "0",
                   "--ready-file", str(ready)]
        if cfg is not None:
            command += ["--config", _config_arg(cfg)]
        if uart_divisor:
            command += ["--uart-divisor", str(uart_divisor)]
        self._log = open(Path(self._dir.name) / "board-sim.log", "w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + build_timeout
        while not ready.exists():
            if self.process.poll() is not None:
                raise LinkError(f"the simulated board stopped before it listened:\n"
                                f"{self.tail()}")
            if time.monotonic() > deadline:
                self.close()
                raise LinkError(f"the simulated board did not start within {build_timeout} s")
            time.sleep(0.1)
        self.url = ready.read_text()

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = (Path(self._dir.name) / "board-sim.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self, timeout: float = 10):
        """Wait for the board to end (it does when its client disconnects), else stop it."""
        if self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGTERM)    # our own session only
                self.process.wait()
        self._log.close()
        self._dir.cleanup()


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


@dataclass
class StreamResult:
    """What `Device.stream` returns; `spikes[pop]` is an (n, 2) array of (step, neuron)."""
    spikes: dict[str, np.ndarray]
    steps: int                      # time steps run
    events_sent: int                # input events delivered to the chip
    events_capped: int              # events over the chip's per-step limit, not sent (counted)
    request_bytes: int              # bytes sent to the chip while streaming
    reply_bytes: int                # bytes received
    seconds: float
    status: dict = field(default_factory=dict)    # READ_STATUS at the end

    @property
    def events_per_second(self) -> float:
        return self.events_sent / self.seconds if self.seconds else float("inf")


class _CountingTransport:
    """Wraps a transport and counts the bytes each way."""

    def __init__(self, inner):
        self.inner, self.sent, self.received = inner, 0, 0
        self.window = getattr(inner, "window", None)

    def write(self, data):
        self.sent += len(data)
        self.inner.write(data)

    def read_frame(self, timeout=None):
        body = self.inner.read_frame(timeout)
        self.received += len(body) + 1
        return body


class Device:
    """A chip behind a transport, with the operations a run needs."""

    def __init__(self, transport, *, name: str, timeout: float = 10.0, resync: bool = False,
                 process: BoardSimProcess | None = None):
        self.name, self.process = name, process
        self.transport = _CountingTransport(transport)
        self.capacity = getattr(transport, "capacity", None)    # link bytes/s, if known
        self.client = ChipClient(self.transport, timeout=timeout, resync=resync)
        self.config = self.client.config
        self._plastic = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        close = getattr(self.transport.inner, "close", None)
        if close:
            close()
        if self.process is not None:
            self.process.close()

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

    def stream(self, image: ChipImage, group: str, steps, *, progress=None) -> StreamResult:
        """Run `steps` ((step, input indices of `group`) pairs, steps ascending, from 0) from
        step 0; return the recorded output spikes. `progress(events, step)` is called now and
        then. Raises `ChipError`/`LinkError` if the chip refuses a request or the link breaks.
        """
        plan = _Plan(image, group)
        client, cfg = self.client, self.config
        before = client.status()
        first_step = before["step"]
        found: list[tuple[int, int]] = []


        sent0, received0 = self.transport.sent, self.transport.received
        started = time.perf_counter()
        pending = 0              # host-buffer entries the chip may hold now (an upper bound)
        current, events_sent, capped = 0, 0, 0


        def fetch_all():
            nonlocal pending
            for _ in range(-(-pending // P.FETCH_MAX)):
                client.send_fetch(P.FETCH_MAX, found.extend)
            pending = 0

        def tick(n, extra=0):
            """Run n steps, the first with `extra` host-buffer entries from host inputs."""
            nonlocal pending, current
            while n:
                per_step = max(plan.recorded, 1)
                k = min(n, 0xFFFF, max(1, (cfg.host_buffer - pending - extra) // per_step))
                if pending + extra + k * plan.recorded > cfg.host_buffer:
                    fetch_all()
                    k = min(n, 0xFFFF, max(1, (cfg.host_buffer - extra) // per_step))
                client.send_tick(k)
                pending += extra + k * plan.recorded
                extra, n, current = 0, n - k, current + k

        for step, local in steps:
            if step < current:
                raise ValueError(f"steps must ascend: step {step} after {current - 1}")
            if step > current:
                tick(step - current)
            ids, host_entries, dropped = plan.chip_inputs(local)
            capped += dropped
            if pending + host_entries + plan.recorded > cfg.host_buffer:
                fetch_all()
            client.send_input(ids)
            events_sent += len(ids)
            tick(1, host_entries)
            if progress is not None and step % 64 == 0:
                progress(events_sent, current)
        fetch_all()
        client.flush()
        status = client.status()
        seconds = time.perf_counter() - started
        if progress is not None:
            progress(events_sent, current)
        lost = counters_grown(before, status)
        if lost:
            raise LinkError(f"the chip dropped events ({lost}) although the host paced the "
                            "link and its output: this is a bug, please report it")
        spikes = {name: [] for name in image.recorded}
        for step, source in found:
            name, index = image.source_owner[source]
            if name in spikes:
                spikes[name].append((step - first_step, index))
        return StreamResult({k: np.array(v, dtype=np.int64).reshape(-1, 2)
                             for k, v in spikes.items()}, current, events_sent, capped,
                            self.transport.sent - sent0, self.transport.received - received0,
                            seconds, status)


class _Plan:
    """Per-input costs of a compiled network: routed events and host-buffer entries."""

    def __init__(self, image: ChipImage, group: str):
        cfg = image.config
        if group not in image.input_ids:
            raise ValueError(f"the network has no input group {group!r} (it has "
                             f"{', '.join(image.input_ids) or 'none'})")
        self.ids = np.asarray(image.input_ids[group], dtype=np.int64)
        host = np.array([core == P.HOST_CORE for core, _ in image.route_dest] or [False])
        host_before = np.concatenate([[0], np.cumsum(host)])
        start = np.array([s for s, _ in image.route_index], dtype=np.int64)
        count = np.array([c for _, c in image.route_index], dtype=np.int64)
        sources = np.array([cfg.input_source(int(i)) for i in self.ids], dtype=np.int64)
        self.routed = count[sources]
        self.to_host = host_before[start[sources] + count[sources]] - host_before[start[sources]]
        neuron_sources = np.arange(cfg.n_cores * cfg.core.n_neurons)
        self.recorded = int((host_before[start[neuron_sources] + count[neuron_sources]]
                             - host_before[start[neuron_sources]]).sum())
        self.limit = cfg.max_host_events
        if self.recorded > cfg.host_buffer:
            raise ValueError(f"the network records {self.recorded} neurons, more than the "
                             f"chip's host buffer ({cfg.host_buffer}) holds per step")

    def chip_inputs(self, local):
        """Chip input ids for local input indices, cut to the chip's per-step limit.

        Returns (ids, host-buffer entries they make, events cut).
        """
        local = np.asarray(local, dtype=np.int64)
        cost = np.cumsum(self.routed[local])
        n = int(np.searchsorted(cost, self.limit, side="right"))
        kept = local[:n]
        return self.ids[kept], int(self.to_host[kept].sum()), len(local) - n


def open_device(spec: str, *, config: ChipConfig | None = None, timeout: float = 10.0,
                uart_divisor: int | None = None) -> Device:
    """Open a device: `model` (the golden model in-process), `sim` (start a simulated board
    and connect to it over a local socket), or a serial port / pyserial URL.

    `config` is the chip configuration of `model` and `sim` (default `ChipConfig()`).
    """
    if spec == "model":
        from spikefab.sim import ChipModel
        return Device(ModelTransport(ChipModel(config or ChipConfig())), name="model",
                      timeout=timeout)
    if spec == "sim":
        from spikefab.boards.sim import NativeBoard
        process = NativeBoard(config, uart_divisor=uart_divisor, once=True)
        try:
            transport = SerialTransport(process.url, window=None)
            return Device(transport, name=f"simulated board at {process.url}",
                          timeout=max(timeout, 60.0), process=process)
        except BaseException:
            process.close(timeout=0)
            raise
    if "://" not in spec and not spec.startswith(("/", "COM")):
        raise ValueError(f"unknown device {spec!r}: use model, sim, a serial port "
                         f"(serial:///dev/ttyUSB1?baud=3000000, /dev/ttyUSB1) or a pyserial "
                         f"URL (socket://127.0.0.1:7000)")
    return Device(SerialTransport(spec), name=spec, timeout=timeout, resync=True)
