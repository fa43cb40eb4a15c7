"""Fit a recording to a network's input grid: a centre crop plus pooling from the sensor size.

A network made for a W' x H' grid of input cells in C channels (C = 2 for `--polarity split`)
takes any camera: the largest square pooling p with p·W' <= width and p·H' <= height, and the
centred p·W' x p·H' window (the rest of the sensor is cropped). On the bundled network (8 x 8
cells): a DAVIS346 (346 x 260) gets a 256 x 256 crop at (45, 2) and 32 x 32 pooling, a Gen3
(640 x 480) 480 x 480 at (80, 0) and 60, an EVK4 (1280 x 720) 720 x 720 at (280, 0) and 90.

A given `--pool` gets the centred crop it needs, a given `--crop` the pooling it needs; when
they cannot fit the grid (or both are given and do not), the error names values that would.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Grid", "network_grid", "fit_window"]


@dataclass(frozen=True)
class Grid:
    """A network's input: `channels` x `height` x `width` cells."""
    channels: int
    width: int
    height: int

    def __str__(self):
        return f"{self.channels} x {self.height} x {self.width} cells"


def _cells(length: int, pool: int) -> int:
    return -(-length // pool)


def network_grid(size: int, channels: int, window: tuple[int, int] | None,
                 pool: tuple[int, int]) -> Grid | None:
    """The grid an input group of `size` inputs was made for, from the `window` (width, height)
    and `pool` of its own encoding; None when no window is known or it does not give `size`."""
    if window is None:
        return None
    grid = Grid(channels, _cells(window[0], pool[0]), _cells(window[1], pool[1]))
    return grid if channels * grid.width * grid.height == size else None


def _centred(sensor, w, h) -> tuple[int, int, int, int]:
    return (sensor[0] - w) // 2, (sensor[1] - h) // 2, w, h


def _fitted(grid: Grid, sensor) -> tuple[tuple, tuple] | None:
    """The default: the largest square pooling and its centred crop, or None if none fits."""
    p = min(sensor[0] // grid.width, sensor[1] // grid.height)
    if p < 1:
        return None
    return _centred(sensor, grid.width * p, grid.height * p), (p, p)


def _crop_for(grid: Grid, sensor, pool) -> tuple | None:
    """The centred crop of whole cells (or as much of the sensor as still gives the grid)."""
    w, h = min(sensor[0], grid.width * pool[0]), min(sensor[1], grid.height * pool[1])
    if _cells(w, pool[0]) != grid.width or _cells(h, pool[1]) != grid.height:
        return None
    return _centred(sensor, w, h)


def _pool_for(grid: Grid, crop) -> tuple | None:
    pool = (_cells(crop[2], grid.width), _cells(crop[3], grid.height))
    fits = _cells(crop[2], pool[0]) == grid.width and _cells(crop[3], pool[1]) == grid.height
    return pool if fits else None


def _text(crop, pool) -> str:
    x0, y0, w, h = crop
    return f"--crop {x0},{y0},{w},{h} --pool {pool[0]}x{pool[1]}"


def fit_window(grid: Grid, sensor: tuple[int, int], crop=None, pool=None):
    """Return (crop, pool, how) that map a `sensor` (width, height) onto `grid`; `crop`
    (x0, y0, width, height) and `pool` (px, py) are the user's, None if not given; `how` says
    what was chosen, "" if both were given.

    Raises `ValueError` naming `--crop`/`--pool` values that would fit.
    """
    default = _fitted(grid, sensor)
    if default is None:
        raise ValueError(f"the {sensor[0]}x{sensor[1]} sensor is smaller than the network's "
                         f"input grid ({grid}): it needs at least one pixel per cell")
    if crop is None and pool is None:
        return (*default, f"centre crop and pooling fitted to the network's {grid}")
    if crop is None:
        crop = _crop_for(grid, sensor, pool)
        if crop is not None:
            return crop, pool, f"centre crop fitted to --pool and the network's {grid}"
    elif pool is None:
        pool = _pool_for(grid, crop)
        if pool is not None:
            return crop, pool, f"pooling fitted to --crop and the network's {grid}"
    elif (_cells(crop[2], pool[0]), _cells(crop[3], pool[1])) == (grid.width, grid.height):
        return crop, pool, ""
    raise ValueError(_conflict(grid, sensor, crop, pool, default))


def _conflict(grid: Grid, sensor, crop, pool, default) -> str:
    options = []
    if pool is not None and _crop_for(grid, sensor, pool) is not None:
        options.append(_text(_crop_for(grid, sensor, pool), pool))
    if crop is not None and _pool_for(grid, crop) is not None:
        options.append(_text(crop, _pool_for(grid, crop)))
    options.append(f"{_text(*default)} (the default: leave both out)")
    given = " ".join(f"--{name} {value}" for name, value in (
        ("crop", ",".join(map(str, crop)) if crop else None),
        ("pool", f"{pool[0]}x{pool[1]}" if pool else None)) if value)
    return (f"{given} does not fit the network's input ({grid}) on the {sensor[0]}x{sensor[1]} "
            f"sensor; these would: {'; '.join(options)}")
