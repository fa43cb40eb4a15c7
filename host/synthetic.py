"""A small synthetic event camera: moving bars and shapes, written as real event files.

    events = moving_shapes(128, 128, duration_us=1_000_000, seed=0)
    write_recording("bars.aedat4", events, (128, 128))     # through faery; .raw = EVT3

The scene is rendered as a binary image every `frame_us` microseconds; a pixel that turns on
emits an ON event, one that turns off an OFF event, at a random time within the frame interval
(so events are not all stamped on frame boundaries). Background activity (uniform random
pixels and polarities, `noise_hz` per pixel) is added, as real sensors show it. The scene
cycles through segments of equal length: a vertical bar moving right, a horizontal bar moving
down, a bar at 45 degrees, a bar at 135 degrees, and a disk moving diagonally.
"""

from __future__ import annotations

import numpy as np

from .events import EVENTS_DTYPE

__all__ = ["moving_shapes", "SCENES"]

SCENES = ("vertical bar", "horizontal bar", "bar 45", "bar 135", "disk")


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


def moving_shapes(width: int = 128, height: int = 128, *, duration_us: int = 1_000_000,
                  scenes=SCENES, frame_us: int = 500, thickness: float = 4.0,
                  noise_hz: float = 0.2, seed: int = 0) -> np.ndarray:
    """Return the events (EVENTS_DTYPE, time-ordered, times from 0 us) of the moving scenes.

    `duration_us` is split evenly between `scenes`. Deterministic for a given `seed`.
    """
    if width < 1 or height < 1 or width > 65535 or height > 65535:
        raise ValueError(f"sensor size must be 1..65535 each, not {width}x{height}")
    if duration_us < frame_us or frame_us < 1:
        raise ValueError(f"duration ({duration_us} us) must be at least one frame "
                         f"({frame_us} us)")
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
        changed = image != previous
        ys, xs = np.nonzero(changed)
        if len(xs):
            part = np.empty(len(xs), EVENTS_DTYPE)
            part["t"] = f * frame_us + rng.integers(0, frame_us, len(xs))
            part["x"], part["y"], part["on"] = xs, ys, image[ys, xs]
            parts.append(part)
        previous = image
    n_noise = rng.poisson(noise_hz * width * height * duration_us / 1e6)
    noise = np.empty(n_noise, EVENTS_DTYPE)
    noise["t"] = rng.integers(0, n_frames * frame_us, n_noise)
    noise["x"], noise["y"] = rng.integers(0, width, n_noise), rng.integers(0, height, n_noise)
    noise["on"] = rng.random(n_noise) < 0.5
    events = np.concatenate(parts + [noise]) if parts else noise
    return events[np.argsort(events["t"], kind="stable")]
