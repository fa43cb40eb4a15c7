"""Flow control as a pure planner: what to send so that the chip never refuses or drops.

Input: the chip configuration, the network's per-input costs (`StepCosts`) and the steps to run
as (step, chip input ids) pairs. Output: the requests, in order, as actions:

- `Input(step, ids, capped)`: send these input ids for `step` (INPUT/INPUT8 frames, as many as
  `ChipClient.send_input` needs); `capped` ids of the step were cut and are not sent. An `Input`
  is always followed by `Tick(1)`: requests that belong to the step (teaching signals) go between.
- `Tick(k)`: run k steps (one TICK, 1 <= k <= `MAX_TICK`).
- `Fetch(n)`: fetch up to n (<= `protocol.FETCH_MAX`) buffered output spikes.
- `Sync(step)`: live plans only (`FlowPlanner(live=True)`): wait for every reply; the output
  spikes of steps < `step` are then on the host.

The chip works through requests in order, so the planner tracks the chip's state exactly in
request order, with no I/O: an upper bound of the entries in the chip's host buffer (`pending`)
and the step counter. Its rules:

1. A step's ids are cut to `ChipConfig.max_host_events` routed events (the chip refuses an INPUT
   that would exceed it, `Status.LIMIT`): the earliest ids are kept, the cut ones counted.
2. Before a request that may add entries to the host buffer (an INPUT of host-routed ids, a
   TICK of k steps: `StepCosts.recorded` entries per step at most), the buffer is emptied with
   ceil(pending / FETCH_MAX) FETCHes if the bound could exceed `host_buffer`. Runs of steps
   without inputs become one TICK of as many steps as the buffer takes.
3. Live (a step is only known when the wall clock closes it, `spikefab.host.live`): every step
   ends with FETCHes of everything it may have buffered and a `Sync`, so its output spikes reach
   the host before the next step starts. A live plan has no runs of idle steps: the source
   yields every step, with or without events.
4. A single step that can make more entries than `host_buffer` holds (`StepCosts.recorded` plus
   its host-routed inputs) cannot be protected: it runs alone after an empty buffer, and what the
   chip drops is counted by the chip (READ_STATUS `host_dropped`, see `streaming`).

The transport's window (unanswered request bytes) is `ChipClient.send`'s concern: any sequence
of actions fits through any window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from spikefab import protocol as P
from spikefab.spec import ChipConfig

__all__ = ["Input", "Tick", "Fetch", "Sync", "Action", "StepCosts", "FlowPlanner", "plan",
           "MAX_TICK"]

#: Most steps one TICK runs: the largest value of its `steps` head field (protocol table).
MAX_TICK = (1 << P.REQUESTS[P.Op.TICK].head[0].width) - 1


class Input(NamedTuple):
    step: int
    ids: np.ndarray       # chip input ids, in arrival order
    capped: int           # ids of this step over the chip's per-step limit, not sent


class Tick(NamedTuple):
    steps: int


class Fetch(NamedTuple):
    limit: int


class Sync(NamedTuple):
    step: int             # the steps before this one have all run and been fetched


Action = Input | Tick | Fetch | Sync


@dataclass(frozen=True)
class StepCosts:
    """What each chip input id costs the chip, and what a step's spikes can cost it.

    `routed[i]`: route entries of input i (the chip's per-step limit counts these: an input
    routed to two cores counts twice); `to_host[i]`: those that go to the host buffer;
    `recorded`: host-buffer entries the neurons' spikes of one step can make at most.
    """
    routed: np.ndarray
    to_host: np.ndarray
    recorded: int

    @classmethod
    def of(cls, image) -> StepCosts:
        """The costs of a compiled network (`network.ChipImage`), from its route tables."""
        cfg = image.config
        host = np.array([core == P.HOST_CORE for core, _ in image.route_dest] or [False])
        host_before = np.concatenate([[0], np.cumsum(host)])
        start = np.array([s for s, _ in image.route_index], dtype=np.int64)
        count = np.array([c for _, c in image.route_index], dtype=np.int64)
        to_host = host_before[start + count] - host_before[start]
        inputs = cfg.input_source(0) + np.arange(cfg.n_inputs)
        neurons = cfg.input_source(0)
        return cls(count[inputs], to_host[inputs], int(to_host[:neurons].sum()))


class FlowPlanner:
    """The planner's state between steps (see the module docstring): feed it steps with `step`,
    end with `finish`; each returns the actions to send next. `capped` counts the ids cut so
    far, `current` is the chip's step (relative to the start) after the actions so far.
    `live`: end every step with its fetches and a `Sync` (rule 3 of the module docstring)."""

    def __init__(self, cfg: ChipConfig, costs: StepCosts, *, live: bool = False):
        self.cfg, self.costs, self.live = cfg, costs, live
        self.pending = 0       # host-buffer entries the chip may hold (an upper bound)
        self.current = 0
        self.capped = 0

    def step(self, step: int, ids) -> list[Action]:
        """The actions that run up to `step` (steps must ascend) and then `step` with `ids`."""
        if step < self.current:
            raise ValueError(f"steps must ascend: step {step} after {self.current - 1}")
        actions = self._idle(step - self.current)
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.costs.routed)):
            raise ValueError(f"step {step}: chip input ids must be in "
                             f"0..{len(self.costs.routed) - 1}")
        ids, host_entries, cut = self._fit(ids)
        self.capped += cut
        actions += self._room_for(host_entries + self.costs.recorded)
        self.pending += host_entries + self.costs.recorded
        self.current += 1
        actions += [Input(step, ids, cut), Tick(1)]
        if self.live:
            actions += self._fetch_all() + [Sync(self.current)]
        return actions

    def finish(self, until: int | None = None) -> list[Action]:
        """Run idle steps up to `until` (if given), then fetch everything still buffered."""
        actions = self._idle(max(0, (until or 0) - self.current))
        return actions + self._fetch_all()

    def _fit(self, ids: np.ndarray) -> tuple[np.ndarray, int, int]:
        """(ids kept, host-buffer entries they make, ids cut) for the per-step limit."""
        cost = np.cumsum(self.costs.routed[ids])
        n = int(np.searchsorted(cost, self.cfg.max_host_events, side="right"))
        return ids[:n], int(self.costs.to_host[ids[:n]].sum()), len(ids) - n

    def _idle(self, n: int) -> list[Action]:
        """TICKs for n steps without inputs, each as long as the host buffer allows."""
        actions, per_step = [], self.costs.recorded
        while n:
            room = self.cfg.host_buffer - self.pending
            if per_step and room < per_step:
                actions += self._fetch_all()
                room = self.cfg.host_buffer
            k = min(n, MAX_TICK, max(1, room // per_step) if per_step else MAX_TICK)
            actions.append(Tick(k))
            self.pending += k * per_step
            self.current += k
            n -= k
        return actions

    def _room_for(self, entries: int) -> list[Action]:
        return self._fetch_all() if self.pending + entries > self.cfg.host_buffer else []

    def _fetch_all(self) -> list[Action]:
        actions = [Fetch(P.FETCH_MAX)] * -(-self.pending // P.FETCH_MAX)
        self.pending = 0
        return actions


def plan(cfg: ChipConfig, costs: StepCosts, steps: Iterable[tuple[int, object]], *,
         until: int | None = None, planner: FlowPlanner | None = None) -> Iterator[Action]:
    """The actions that run `steps` ((step, chip input ids), steps ascending from 0) and then
    idle steps up to `until`, lazily (a recording is planned as it is read). Pass `planner`
    to read its counters (`capped`, `current`) afterwards."""
    planner = planner or FlowPlanner(cfg, costs)
    for step, ids in steps:
        yield from planner.step(step, ids)
    yield from planner.finish(until)
