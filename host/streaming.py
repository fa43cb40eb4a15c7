"""The one streaming loop: input ids per step in, recorded output spikes out, over any client.

`stream(client, image, steps)` executes the plan of `spikefab.host.flow` through `ChipClient`'s
pipelined requests (`send_input`, `send_tick`, `send_fetch`) and returns a `StreamResult`.
`Device.stream` (a recording) and `network.run` (dense rasters) are adapters over it.

Policy for events that are not delivered (one for every caller): count and report.
- Input ids over the chip's per-step limit are never sent (the chip would refuse the frame):
  they are counted in `StreamResult.events_capped`.
- Events the chip dropped anyway (a step that recorded more spikes than the host buffer holds)
  are read from the chip's loss counters (READ_STATUS before and after): `StreamResult.lost`.
- `StreamResult.check()` raises `SpikesLost` (carrying the result) if either is non-zero; callers
  that cannot return the counts (`network.run`) call it, `spikefab run` prints them.
A live run (`live=True`, steps from `spikefab.host.live`) waits after every step until its
output spikes are on the host and notes when (`StreamResult.step_times`): the pacing itself is
the source's, which yields a step when the wall clock closes it.
A refused request raises `ChipError`, a broken link `LinkError`: those end the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from .flow import Fetch, FlowPlanner, Input, StepCosts, Sync, Tick, plan

__all__ = ["stream", "StreamResult", "SpikesLost", "loss_counters", "counters_grown"]


class SpikesLost(RuntimeError):
    """Events were not delivered during a run: input events over the chip's per-step limit
    (`events_capped`) or events the chip dropped (its loss counters).

    `spikes` holds what did arrive (as the caller would have returned it), `counters` the counts
    (name -> number), `result` the `StreamResult` if there is one.
    """

    def __init__(self, message: str, spikes: dict, counters: dict, result=None):
        super().__init__(message)
        self.spikes, self.counters, self.result = spikes, counters, result


@dataclass
class StreamResult:
    """What `stream` returns; `spikes[pop]` is an (n, 2) array of (step, neuron), step counted
    from the run's first step."""
    spikes: dict[str, np.ndarray]
    steps: int                      # time steps run
    events_sent: int                # input events delivered to the chip
    events_capped: int              # events over the chip's per-step limit, not sent (counted)
    request_bytes: int              # bytes sent to the chip while streaming (0 if not counted)
    reply_bytes: int                # bytes received
    seconds: float
    status: dict = field(default_factory=dict)    # READ_STATUS at the end
    lost: dict = field(default_factory=dict)      # loss counters that grew: name -> increase
    #: live runs: `time.perf_counter()` when step k's output spikes were all on the host
    step_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: live runs: (request, reply) bytes of step k (0 if the transport does not count them)
    step_bytes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    @property
    def events_per_second(self) -> float:
        return self.events_sent / self.seconds if self.seconds else float("inf")

    @property
    def undelivered(self) -> dict:
        """Every count of events that did not arrive: `events_capped` and the lost counters."""
        return ({"events_capped": self.events_capped} if self.events_capped else {}) | self.lost

    def check(self, spikes=None):
        """Raise `SpikesLost` (with `spikes`, default `self.spikes`) if anything was not
        delivered."""
        counts = self.undelivered
        if counts:
            detail = ", ".join(f"{name} +{n}" for name, n in counts.items())
            raise SpikesLost(f"events were not delivered during the run ({detail}); see "
                             "READ_STATUS in docs/protocol.md and flow control in docs/host.md "
                             "(send fewer events per step, record fewer neurons, or raise "
                             "max_host_events / host_buffer)",
                             self.spikes if spikes is None else spikes, counts, self)


def stream(client, image, steps: Iterable[tuple[int, object]], *, until: int | None = None,
           teach: Callable[[int], None] | None = None,
           progress: Callable[[int, int], None] | None = None, live: bool = False
           ) -> StreamResult:
    """Run `steps` ((step, chip input ids) pairs, steps ascending, counted from the chip's
    current step) and idle steps up to `until`; return the recorded output spikes of `image`.

    `teach(step)` is called after a step's inputs and before its TICK (learning signals).
    `progress(events_sent, step)` is called every 64 steps and at the end. Never raises for
    undelivered events (see the module docstring); raises `ChipError`/`LinkError` if the chip
    refuses a request or the link breaks. `live`: fetch and wait after every step (see the
    module docstring).
    """
    planner = FlowPlanner(image.config, StepCosts.of(image), live=live)
    step_times: list[float] = []
    before = client.status()
    found: list[tuple[int, int]] = []
    sent0, received0 = _bytes(client)
    step_bytes = [(sent0, received0)]
    started = time.perf_counter()
    events_sent = 0
    for action in plan(image.config, planner.costs, steps, until=until, planner=planner):
        if isinstance(action, Input):
            client.send_input(action.ids)
            events_sent += len(action.ids)
            if teach is not None:
                teach(action.step)
            if progress is not None and action.step % 64 == 0:
                progress(events_sent, action.step)
        elif isinstance(action, Tick):
            client.send_tick(action.steps)
        elif isinstance(action, Fetch):
            client.send_fetch(action.limit, found.extend)
        elif isinstance(action, Sync):
            client.flush()
            step_times.append(time.perf_counter())
            step_bytes.append(_bytes(client))
    client.flush()
    status = client.status()
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(events_sent, planner.current)
    sent, received = _bytes(client)
    return StreamResult(_by_population(image, found, before["step"]), planner.current,
                        events_sent, planner.capped, sent - sent0, received - received0,
                        seconds, status, counters_grown(before, status), np.array(step_times),
                        np.diff(np.array(step_bytes, dtype=np.int64), axis=0))


def _bytes(client) -> tuple[int, int]:
    """Bytes sent and received so far, if the client's transport counts them."""
    transport = client.transport
    return getattr(transport, "sent", 0), getattr(transport, "received", 0)


def _by_population(image, found, first_step: int) -> dict[str, np.ndarray]:
    spikes = {name: [] for name in image.recorded}
    for step, source in found:
        name, index = image.source_owner[source]
        if name in spikes:
            spikes[name].append((step - first_step, index))
    return {k: np.array(v, dtype=np.int64).reshape(-1, 2) for k, v in spikes.items()}


def loss_counters(status: dict) -> dict:
    """The READ_STATUS counters (`ChipClient.status()`) that count lost events or bytes."""
    counters = {"host_dropped": status["host_dropped"],
                "uart_overflows": status["uart_overflows"]}
    for c, core in enumerate(status["cores"]):
        counters.update({f"core{c}_{name}": value for name, value in core.items()})
    return counters


def counters_grown(before: dict, after: dict) -> dict:
    """Loss counters that grew between two READ_STATUS results: name -> increase."""
    old = loss_counters(before)
    return {name: value - old[name] for name, value in loss_counters(after).items()
            if value != old[name]}
