"""A recording through a network on a device: what `spikefab run` does between reading its
options and printing its report.

    output = run_recording(device, spec.network, spec.input_group, recording, encoder)
    results.save_run(out, output.run)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .results import RunOutput
from .streaming import StreamResult

__all__ = ["RecordingRun", "run_recording", "encoded_steps"]


@dataclass
class RecordingRun:
    result: StreamResult       # spikes, counts, bytes, seconds, chip status
    run: RunOutput             # what `results.save_run` writes


def encoded_steps(recording, encoder, input_counts: list[int]):
    """(step, input indices) pairs of `recording` through `encoder`, read chunk by chunk;
    appends each step's event count to `input_counts` (0 for steps without events)."""
    def note(step, ids):
        input_counts.extend([0] * (step + 1 - len(input_counts)))
        input_counts[step] = len(ids)
        return step, ids

    for chunk in recording.chunks():
        for step, ids in encoder.feed(chunk):
            yield note(step, ids)
    for step, ids in encoder.finish():
        yield note(step, ids)


def run_recording(device, network, group: str, recording, encoder, *, progress=None
                  ) -> RecordingRun:
    """Compile `network` for `device`, load it, stream `recording` through `encoder` into input
    group `group` (`Device.stream`). `progress(events, step)` as in `streaming.stream`."""
    image = network.compile(device.config)
    device.load(image)
    counts: list[int] = []
    result = device.stream(image, group, encoded_steps(recording, encoder, counts),
                           progress=progress)
    sizes = {name: len(image.placement[name]) for name in result.spikes}
    return RecordingRun(result, RunOutput(result.spikes, sizes, np.array(counts, dtype=np.int64),
                                          encoder.cfg.dt_us, encoder.t0 or 0))
