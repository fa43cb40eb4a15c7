"""Check every input of a run before any device work starts.

    inputs = prepare_run("bars", "rec.raw", options={"dt_us": 2000})
    inputs.notes          # lines for the user: recording, network, encoding, how it was fitted
    inputs.encoder        # an Encoder fitted to the network's input group

In order: the network loads (`load_network_spec`), the recording opens and its first chunk
decodes (`Recording.check`), the encoding fits the network's input (`host/fit.py`: a centre
crop and pooling computed from the sensor size unless `--crop`/`--pool` say otherwise), and the
encoder is built. Any problem raises `ValueError` (`EventFileError` is one) with one line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .bundled import NetworkSpec, load_network_spec
from .encode import Encoder
from .events import Recording, open_recording
from .fit import fit_window, network_grid
from .live import LiveInput, is_live

__all__ = ["RunInputs", "prepare_run"]


@dataclass
class RunInputs:
    """A run's checked inputs: network, recording, encoder, and what to tell the user."""
    spec: NetworkSpec
    recording: Recording
    encoder: Encoder
    notes: list[str]


def prepare_run(network: str, path, *, dimensions=None, options: dict | None = None
                ) -> RunInputs:
    """Load `network`, open `path` (decoding its first chunk; a `udp://HOST:PORT` live input
    needs `dimensions` and becomes a `live.LiveInput`), fit the encoding; `options` are the
    user's EncoderConfig fields (crop, pool, polarity, dt_us, ...), given ones only."""
    # A NIR graph is discretised at the run's step (--dt), else at the step its metadata gives.
    spec = load_network_spec(network, dt_us=(options or {}).get("dt_us"))
    recording = (LiveInput.open(str(path), dimensions) if is_live(path)
                 else open_recording(path, dimensions=dimensions))
    recording.check()
    options = dict(options or {})
    crop, pool = options.pop("crop", None), options.pop("pool", None)
    base = dataclasses.replace(spec.encoder, **options)
    sensor = (recording.width, recording.height)
    group = spec.network.inputs[spec.input_group]
    channels = 2 if base.polarity == "split" else 1
    own = spec.encoder
    window = own.crop[2:] if own.crop else spec.sensor
    grid = network_grid(group.size, 2 if own.polarity == "split" else 1, window, own.pool)
    notes = [f"recording: {recording.path if is_live(path) else Path(path)}: "
             f"{recording.describe()}",
             f"network:   {spec.description or network}"]
    if grid is not None and grid.channels != channels:
        raise ValueError(f"the network's input {spec.input_group!r} has {grid.channels} "
                         f"channel(s) ({own.polarity} polarity), --polarity {base.polarity} "
                         f"gives {channels}")
    how = ""
    if grid is not None:
        crop, pool, how = fit_window(grid, sensor, crop, pool)
    cfg = dataclasses.replace(base, crop=crop if crop is not None else base.crop,
                              pool=pool if pool is not None else base.pool)
    encoder = Encoder(cfg, sensor)
    if encoder.n_inputs != group.size:
        raise ValueError(f"the network's input {spec.input_group!r} has {group.size} inputs, "
                         f"but {encoder.describe()} on the {sensor[0]}x{sensor[1]} sensor gives "
                         f"{encoder.n_inputs}: set --crop/--pool/--polarity so that channels x "
                         f"cells = {group.size}")
    notes.append(f"encoding:  {encoder.describe()}" + (f" ({how})" if how else ""))
    return RunInputs(spec, recording, encoder, notes)
