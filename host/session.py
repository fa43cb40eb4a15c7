"""A recording (or a live source) through a network on a device: what `spikefab run` does
between reading its options and printing its report.

    output = run_recording(device, spec.network, spec.input_group, recording, encoder)
    output = run_live(device, spec.network, spec.input_group, open_steps)   # -> live.LiveSteps
    results.save_run(out, output.run)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .results import RunOutput
from .streaming import StreamResult

__all__ = ["RecordingRun", "run_recording", "run_live", "encoded_steps", "counted"]


@dataclass
class RecordingRun:
    result: StreamResult       # spikes, counts, bytes, seconds, chip status
    run: RunOutput             # what `results.save_run` writes
    live: object = None        # a live run's `live.LiveSteps` (counters, latency)


def counted(steps, input_counts: list[int]):
    """Pass (step, ids) pairs on; note each step's event count in `input_counts` (index: step,
    0 for steps without events)."""
    for step, ids in steps:
        input_counts.extend([0] * (step + 1 - len(input_counts)))
        input_counts[step] = len(ids)
        yield step, ids


def encoded_steps(recording, encoder, input_counts: list[int]):
    """(step, input indices) pairs of `recording` through `encoder`, read chunk by chunk;
    appends each step's event count to `input_counts` (0 for steps without events)."""
    def steps():
        for chunk in recording.chunks():
            yield from encoder.feed(chunk)
        yield from encoder.finish()

    return counted(steps(), input_counts)


def run_recording(device, network, group: str, recording, encoder, *, progress=None
                  ) -> RecordingRun:
    """Compile `network` for `device`, load it, stream `recording` through `encoder` into input
    group `group` (`Device.stream`). `progress(events, step)` as in `streaming.stream`."""
    image, counts = _load(device, network), []
    result = device.stream(image, group, encoded_steps(recording, encoder, counts),
                           progress=progress)
    return _output(image, result, counts, encoder)


def run_live(device, network, group: str, open_steps, *, progress=None) -> RecordingRun:
    """As `run_recording`, for a live source: `open_steps()` is called once the network is
    loaded and returns a `live.LiveSteps` (its source is closed at the end). Each step's spikes
    are fetched as soon as it closes (`streaming.stream(live=True)`)."""
    image, counts = _load(device, network), []
    steps = open_steps()
    with steps.source:
        result = device.stream(image, group, counted(steps, counts), progress=progress,
                               live=True)
    return _output(image, result, counts, steps.encoder, live=steps)


def _load(device, network):
    image = network.compile(device.config)
    device.load(image)
    return image


def _output(image, result, counts, encoder, live=None) -> RecordingRun:
    sizes = {name: len(image.placement[name]) for name in result.spikes}
    return RecordingRun(result, RunOutput(result.spikes, sizes, np.array(counts, dtype=np.int64),
                                          encoder.cfg.dt_us, encoder.t0 or 0), live)
