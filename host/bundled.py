"""What ships with the package so `spikefab run` works offline: a sample recording and a network.

The sample (`spikefab/data/sample.aedat4`) was made by `spikefab.host.synthetic` (see
`make_sample`): 64 x 64 pixels, 2 s, a vertical, a horizontal and two diagonal bars sweeping the
sensor, then a disk, with background noise.

The bundled network, `bars`, detects the orientation of moving bars. Its input is the recording
pooled to 8 x 8 cells of 8 x 8 pixels, ON and OFF channels (128 inputs). Layer `lines` has one
neuron per line of cells in four orientations (8 columns, 8 rows, 15 diagonals, 15 anti-diagonals):
it sums the events of the cells on its line and fires when a bar lies along it. Layer
`orientation` has one neuron per orientation, excited by that orientation's line neurons. Both
layers are recorded. On the sample, the vertical and horizontal bars are told apart cleanly;
the diagonal bars also excite the vertical and horizontal detectors (an 8 x 8 grid is coarse).

A network description for `spikefab run --network FILE.py` is a Python file defining
`network()` that returns a `NetworkSpec` like `bars()` below. A file that does not import, or
whose `network()` raises, gives one line naming the file, the line and the error.
"""

from __future__ import annotations

import importlib.util
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .encode import EncoderConfig
from .network import Network

__all__ = ["NetworkSpec", "bars", "sample_path", "make_sample", "load_network_spec"]

SAMPLE = Path(__file__).resolve().parent.parent / "spikefab" / "data" / "sample.aedat4"
LINE_TOTAL, LINE_THRESHOLD, OUT_WEIGHT, OUT_THRESHOLD = 300, 300, 60, 100
ORIENTATIONS = ("vertical", "horizontal", "diagonal 45", "diagonal 135")
LINE_GROUPS = ("columns", "rows", "diagonals 45", "diagonals 135")


@dataclass
class NetworkSpec:
    """A network, the input group that receives the events, and how events become inputs."""
    network: Network
    input_group: str
    encoder: EncoderConfig
    sensor: tuple[int, int] | None = None     # the sensor size the encoder expects, if fixed
    description: str = ""
    #: For pictures: population -> one name per neuron, and population -> [(group name,
    #: neurons)] consecutive groups of neurons (both optional).
    names: dict[str, list[str]] = field(default_factory=dict)
    groups: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def sample_path() -> Path:
    """The bundled sample recording (package data)."""
    from importlib.resources import files
    path = Path(str(files("spikefab") / "data" / "sample.aedat4"))
    return path if path.exists() else SAMPLE


def make_sample(path=None) -> Path:
    """(Re)write the bundled sample recording."""
    from .events import write_recording
    from .synthetic import moving_shapes
    events = moving_shapes(64, 64, duration_us=2_000_000, frame_us=1000, thickness=3.0,
                           noise_hz=0.5, seed=2026)
    return write_recording(path or SAMPLE, events, (64, 64))


def _lines(cells: int):
    """Cell-index sets of the lines of the 4 orientations on a cells x cells grid."""
    lines = []
    for c in range(cells):
        lines.append((0, [y * cells + c for y in range(cells)]))          # vertical
    for r in range(cells):
        lines.append((1, [r * cells + x for x in range(cells)]))          # horizontal
    for d in range(2 * cells - 1):
        lines.append((2, [y * cells + x for y in range(cells) for x in range(cells)
                          if x + y == d]))
    for d in range(2 * cells - 1):
        lines.append((3, [y * cells + x for y in range(cells) for x in range(cells)
                          if x - y == d - cells + 1]))
    return lines


def bars(cells: int = 8, pool: int = 8) -> NetworkSpec:
    """The bundled orientation network (see the module docstring)."""
    lines = _lines(cells)
    net = Network()
    pixels = net.add_input("events", 2 * cells * cells)
    line_layer = net.add_population("lines", len(lines), beta=3600, threshold=LINE_THRESHOLD,
                                    refractory=3, record=True)
    orientation = net.add_population("orientation", 4, beta=3900, threshold=OUT_THRESHOLD,
                                     refractory=2, record=True)
    w_in = np.zeros((2 * cells * cells, len(lines)), dtype=np.int64)
    w_out = np.zeros((len(lines), 4), dtype=np.int64)
    for j, (kind, members) in enumerate(lines):
        # Every line needs the same total input to fire: short lines get larger weights.
        weight = min(127, LINE_TOTAL // len(members))
        for m in members:
            w_in[m, j] = w_in[cells * cells + m, j] = weight
        # Long lines vote more for their orientation (and against the others).
        vote = OUT_WEIGHT * len(members) // cells
        w_out[j] = -vote // 3
        w_out[j, kind] = vote
    net.connect(pixels, line_layer, w_in)
    net.connect(line_layer, orientation, w_out)
    encoder = EncoderConfig(dt_us=1000, pool=(pool, pool), polarity="split",
                            refractory_us=1000)
    counts = [sum(1 for kind, _ in lines if kind == k) for k in range(4)]
    return NetworkSpec(net, "events", encoder, (cells * pool, cells * pool),
                       "bars: moving-bar orientation detector, 128 inputs (2 x 8 x 8 cells), "
                       f"{len(lines)} line neurons, 4 orientation neurons",
                       names={"orientation": list(ORIENTATIONS)},
                       groups={"lines": list(zip(LINE_GROUPS, counts))})


def load_network_spec(name: str, dt_us: int | None = None) -> NetworkSpec:
    """`bars` (bundled), a NIR graph file (`.nir`, step `dt_us` or the graph's own), or a Python
    file defining `network()` that returns a NetworkSpec."""
    if name == "bars":
        return bars()
    path = Path(name)
    if path.suffix == ".nir":
        from spikefab.nir import network_spec
        return network_spec(path, dt_us)
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"unknown network {name!r}: use 'bars', a .nir file or a Python file "
                         f"defining network()")
    spec = importlib.util.spec_from_file_location(f"spikefab_user_network_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    _user_code(path, "importing it", lambda: spec.loader.exec_module(module))
    if not hasattr(module, "network"):
        raise ValueError(f"{path}: defines no network() function")
    result = _user_code(path, "network()", module.network)
    if not isinstance(result, NetworkSpec):
        raise ValueError(f"{path}: network() must return a spikefab.host.bundled.NetworkSpec")
    return result


def _user_code(path: Path, what: str, call):
    """Run the user's `call`; any exception becomes one line: file, line, exception."""
    try:
        return call()
    except SyntaxError as exc:
        raise ValueError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:      # the user's code: anything can happen
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
                 if Path(f.filename).resolve() == path.resolve()]
        where = f":{lines[-1]}" if lines else ""
        message = " ".join(str(exc).split())
        raise ValueError(f"{path}{where}: {what} raised {type(exc).__name__}"
                         f"{': ' + message if message else ''}") from None
