"""A small synthetic event camera: moving bars and shapes, written as real event files.

    events = moving_shapes(128, 128, duration_us=1_000_000, seed=0)
    write_recording("bars.aedat4", events, (128, 128))     # through faery; .raw = EVT3
    clip = moving_bar(32, 32, direction="left", speed=1.5, duration_us=20_000, seed=1)

The scene is rendered as a binary image every `frame_us` microseconds; a pixel that turns on
emits an ON event, one that turns off an OFF event, at a random time within the frame interval
(so events are not all stamped on frame boundaries). Background activity (uniform random
pixels and polarities, `noise_hz` per pixel) is added, as real sensors show it.

`moving_shapes` cycles through segments of equal length: a vertical bar moving right, a
horizontal bar moving down, a bar at 45 degrees, a bar at 135 degrees, and a disk moving
diagonally. `moving_bar` makes one clip of a bar moving in any direction (for labelled data
sets: direction, speed, thickness and start position are its arguments).
"""

from __future__ import annotations

import numpy as np

from .events import EVENTS_DTYPE

__all__ = ["moving_shapes", "moving_bar", "SCENES", "DIRECTIONS"]

SCENES = ("vertical bar", "horizontal bar", "bar 45", "bar 135", "disk")
#: Named directions of motion in degrees; y (rows) grows downwards, as on the sensor.
DIRECTIONS = {"right": 0.0, "down": 90.0, "left": 180.0, "up": 270.0}


def _scene(kind: str, xx, yy, phase: float, width: int, height: int, thickness: float):
    """Binary image of scene `kind` at `phase` in [0, 1) of its segment."""
    if kind == "vertical bar":
        centre = -thickness + phase * (width + 2 * thickness)
        return np.abs(xx - centre) < thickness / 2
    if kind == "horizontal bar":
        centre = -thickness + phase * (height + 2 * thickness)
        return np.abs(yy - centre) < thickness / 2
    if kind in ("bar 45", "bar 135"):
        # Distance along the bar's normal; the bar sweeps the whole sensor.
        u = (xx + yy) if kind == "bar 45" else (xx - yy + height)
        span = width + height
        centre = -thickness + phase * (span + 2 * thickness)
        return np.abs(u - centre) / np.sqrt(2) < thickness / 2
    if kind == "disk":
        r = min(width, height) / 6
        cx = -r + phase * (width + 2 * r)
        cy = -r + phase * (height + 2 * r)
        return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    raise ValueError(f"unknown scene {kind!r}; known: {', '.join(SCENES)}")


def _check_sensor(width: int, height: int, duration_us: int, frame_us: int):
    if width < 1 or height < 1 or width > 65535 or height > 65535:
        raise ValueError(f"sensor size must be 1..65535 each, not {width}x{height}")
    if duration_us < frame_us or frame_us < 1:
        raise ValueError(f"duration ({duration_us} us) must be at least one frame "
                         f"({frame_us} us)")


def _changes(rng, image, previous, t_us: int, frame_us: int):
    """Events of the pixels that differ between two frames, stamped in [t_us, t_us + frame_us)."""
    ys, xs = np.nonzero(image != previous)
    if not len(xs):
        return None
    part = np.empty(len(xs), EVENTS_DTYPE)
    part["t"] = t_us + rng.integers(0, frame_us, len(xs))
    part["x"], part["y"], part["on"] = xs, ys, image[ys, xs]
    return part


def _with_noise(rng, parts, width: int, height: int, noise_hz: float, t0_us: int,
                span_us: int) -> np.ndarray:
    """Add background events (uniform pixels, polarities and times in t0 + [0, span)); sort."""
    n_noise = rng.poisson(noise_hz * width * height * span_us / 1e6)
    noise = np.empty(n_noise, EVENTS_DTYPE)
    noise["t"] = t0_us + rng.integers(0, span_us, n_noise)
    noise["x"], noise["y"] = rng.integers(0, width, n_noise), rng.integers(0, height, n_noise)
    noise["on"] = rng.random(n_noise) < 0.5
    events = np.concatenate(parts + [noise]) if parts else noise
    return events[np.argsort(events["t"], kind="stable")]


def moving_shapes(width: int = 128, height: int = 128, *, duration_us: int = 1_000_000,
                  scenes=SCENES, frame_us: int = 500, thickness: float = 4.0,
                  noise_hz: float = 0.2, seed: int = 0) -> np.ndarray:
    """Return the events (EVENTS_DTYPE, time-ordered, times from 0 us) of the moving scenes.

    `duration_us` is split evenly between `scenes`. Deterministic for a given `seed`.
    """
    _check_sensor(width, height, duration_us, frame_us)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    n_frames = duration_us // frame_us
    per_scene = n_frames / len(scenes)
    parts = []
    previous = np.zeros((height, width), dtype=bool)
    for f in range(n_frames):
        segment = min(int(f / per_scene), len(scenes) - 1)
        phase = (f - segment * per_scene) / per_scene
        image = _scene(scenes[segment], xx, yy, phase, width, height, thickness)
        part = _changes(rng, image, previous, f * frame_us, frame_us)
        if part is not None:
            parts.append(part)
        previous = image
    return _with_noise(rng, parts, width, height, noise_hz, 0, n_frames * frame_us)


def moving_bar(width: int, height: int, *, direction, speed: float, duration_us: int,
               start: float = 0.0, thickness: float = 4.0, frame_us: int = 250,
               noise_hz: float = 0.0, t0_us: int = 0, seed=0) -> np.ndarray:
    """Return the events (EVENTS_DTYPE, time-ordered) of one bar moving in a straight line.

    The bar is infinitely long, `thickness` pixels wide and perpendicular to its motion.
    `direction` is in degrees (0 = moving right, 90 = down: rows grow downwards) or a name of
    `DIRECTIONS`; `speed` in pixels per millisecond. At time 0 the bar's centre lies `start`
    pixels past the sensor's trailing edge (the edge the bar moves away from; the pixel centre
    furthest back along the motion), so `start = -thickness / 2` has it just outside. Only motion
    makes events: the scene at time 0 is what the sensor has already seen. Times run from `t0_us`
    to `t0_us + duration_us`; `seed` is an int or a `numpy.random.Generator` (then consumed).
    """
    _check_sensor(width, height, duration_us, frame_us)
    if isinstance(direction, str):
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; known: {', '.join(DIRECTIONS)} "
                             f"or an angle in degrees")
        direction = DIRECTIONS[direction]
    if thickness <= 0:
        raise ValueError(f"bar thickness must be positive, not {thickness!r}")
    rng = np.random.default_rng(seed)
    angle = np.deg2rad(float(direction))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    along = xx * np.cos(angle) + yy * np.sin(angle)        # position along the motion
    trailing = along.min()

    def image(t_us):
        centre = trailing + start + speed * t_us / 1000
        return np.abs(along - centre) < thickness / 2

    n_frames = duration_us // frame_us
    parts = []
    previous = image(0)
    for f in range(1, n_frames + 1):
        current = image(f * frame_us)
        part = _changes(rng, current, previous, t0_us + (f - 1) * frame_us, frame_us)
        if part is not None:
            parts.append(part)
        previous = current
    return _with_noise(rng, parts, width, height, noise_hz, t0_us, n_frames * frame_us)
