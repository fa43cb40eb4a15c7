"""Turn camera events into per-step input spikes for a network's input group.

    enc = Encoder(EncoderConfig(dt_us=1000, pool=(8, 8), polarity="split"), sensor=(128, 128))
    enc.n_inputs                      # 2 * 16 * 16 = 512 input neurons
    for chunk in recording.chunks():
        for step, inputs in enc.feed(chunk):     # completed steps only
            ...
    for step, inputs in enc.finish():            # the last step
        ...

The stages, in order (docs/host.md has the details):

1. crop to the window (x0, y0, width, height);
2. denoise (optional): a background-activity filter drops an event unless one of its 8
   neighbouring pixels had an event within the last `denoise_us` µs;
3. polarity: `split` (ON and OFF are separate channels, ON first), `merge` (one channel), `on`
   or `off` (keep one polarity);
4. spatial pooling: `pool` = (px, py) pixels form one input cell; a partial cell at the right or
   bottom edge is a cell too;
5. refractory (optional): an input drops an event less than `refractory_us` µs after the last
   event it kept;
6. binning into steps of `dt_us` µs, counted from the first event of the recording (or from
   `start_us`, if the encoder is given one: then step k is always [start + k·dt, start + (k+1)·dt));
7. a cap (optional): at most `max_events_per_step` events per step, the earliest kept.

Input index of cell (x', y') in channel c: `c * H' * W' + y' * W' + x'`. Every dropped event is
counted per stage in `Encoder.counts`; `Encoder.totals()` gives the events passed on per input.
Memory is bounded by one chunk plus one step of events plus the per-pixel and per-input state
(`_KeyValues`): arrays of the window's or the inputs' size up to `DENSE_KEYS` entries, beyond
that (a header claiming a 65535 x 65535 sensor) sorted arrays of only the keys events touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EncoderConfig", "Encoder"]

POLARITIES = ("split", "merge", "on", "off")
_NEVER = -(1 << 62)
#: Up to this many keys (64 MB of int64) per-pixel or per-input state is a plain array.
DENSE_KEYS = 1 << 23


class _KeyValues:
    """An int64 value per key in [0, size), `missing` where never set; updates combine with
    max or sum. Dense (one array) up to DENSE_KEYS keys, else sparse: sorted arrays of the keys
    set so far, so memory follows the events, not `size`."""

    def __init__(self, size: int, missing: int):
        self.missing = missing
        self.dense = np.full(size, missing, np.int64) if size <= DENSE_KEYS else None
        self.keys = np.zeros(0, np.int64)
        self.values = np.zeros(0, np.int64)

    def get(self, keys: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return self.dense[keys]
        if not len(self.keys):
            return np.full(len(keys), self.missing, np.int64)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[pos] == keys, self.values[pos], self.missing)

    def maximum(self, keys: np.ndarray, values: np.ndarray):
        self._combine(keys, values, np.maximum)

    def add(self, keys: np.ndarray, values: np.ndarray):
        self._combine(keys, values, np.add)

    def items(self):
        """(keys, values) of the keys that were set, keys ascending."""
        if self.dense is not None:
            keys = np.flatnonzero(self.dense != self.missing)
            return keys, self.dense[keys]
        return self.keys, self.values

    def _combine(self, keys, values, ufunc):
        if self.dense is not None:
            ufunc.at(self.dense, keys, values)
            return
        k = np.concatenate([self.keys, keys])
        v = np.concatenate([self.values, values])
        order = np.argsort(k, kind="stable")
        k, v = k[order], v[order]
        starts = np.flatnonzero(np.diff(k, prepend=-1))
        self.keys, self.values = k[starts], ufunc.reduceat(v, starts) if len(v) else v


@dataclass(frozen=True)
class EncoderConfig:
    """How events become input spikes (see the module docstring). Times in µs."""
    dt_us: int = 1000
    crop: tuple[int, int, int, int] | None = None     # x0, y0, width, height
    pool: tuple[int, int] = (1, 1)                    # cell width, cell height in pixels
    polarity: str = "split"
    refractory_us: int = 0
    denoise_us: int = 0
    max_events_per_step: int = 0                      # 0: no cap

    def __post_init__(self):
        if not isinstance(self.dt_us, int) or self.dt_us < 1:
            raise ValueError(f"dt must be a positive number of microseconds, not {self.dt_us!r}")
        if self.polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {', '.join(POLARITIES)}, not "
                             f"{self.polarity!r}")
        if len(self.pool) != 2 or min(self.pool) < 1:
            raise ValueError(f"pool must be two positive cell sizes, not {self.pool!r}")
        for name in ("refractory_us", "denoise_us", "max_events_per_step"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass
class Counts:
    """Events seen, dropped per stage, and passed on."""
    events: int = 0
    cropped: int = 0
    denoised: int = 0
    polarity: int = 0
    refractory: int = 0
    capped: int = 0
    inputs: int = 0

    def dropped(self) -> int:
        return self.cropped + self.denoised + self.polarity + self.refractory + self.capped


class Encoder:
    """Stateful event-to-input-spike encoder for one recording (see the module docstring)."""

    def __init__(self, cfg: EncoderConfig, sensor: tuple[int, int], *,
                 start_us: int | None = None):
        """`sensor` is (width, height) in pixels; `start_us` the time of step 0's start (default:
        the first event's time). An event earlier than `start_us` raises `ValueError`."""
        self.cfg = cfg
        sw, sh = sensor
        x0, y0, w, h = cfg.crop or (0, 0, sw, sh)
        if x0 < 0 or y0 < 0 or w < 1 or h < 1 or x0 + w > sw or y0 + h > sh:
            raise ValueError(f"crop {x0},{y0},{w},{h} (x0,y0,width,height) does not fit the "
                             f"{sw}x{sh} sensor")
        self.window = (x0, y0, w, h)
        px, py = cfg.pool
        self.cells = (-(-w // px), -(-h // py))               # W', H'
        self.channels = 2 if cfg.polarity == "split" else 1
        self.n_inputs = self.channels * self.cells[0] * self.cells[1]
        self.shape = (self.channels, self.cells[1], self.cells[0])
        self.counts = Counts()
        if start_us is not None and not 0 <= int(start_us) == start_us:
            raise ValueError(f"start must be a time >= 0 in microseconds, not {start_us!r}")
        self.t0 = None if start_us is None else int(start_us)
        # Allocated only for the stages in use; sparse beyond DENSE_KEYS keys.
        self._neighbour_time = _KeyValues((h + 2) * (w + 2), _NEVER) if cfg.denoise_us else None
        self._last_kept = _KeyValues(self.n_inputs, _NEVER) if cfg.refractory_us else None
        self._totals = _KeyValues(self.n_inputs, 0)
        self._open_t = np.zeros(0, np.int64)          # the last, incomplete step
        self._open_ids = np.zeros(0, np.int64)

    def describe_window(self) -> str:
        """The crop and pooling, e.g. `crop 256x256+45+2, pool 32x32`."""
        x0, y0, w, h = self.window
        return f"crop {w}x{h}+{x0}+{y0}, pool {self.cfg.pool[0]}x{self.cfg.pool[1]}"

    def describe(self) -> str:
        c = self.cfg
        parts = [self.describe_window(), f"polarity {c.polarity}",
                 f"-> {self.channels}x{self.cells[1]}x{self.cells[0]}"
                 f" = {self.n_inputs} inputs", f"dt {c.dt_us} us"]
        if c.denoise_us:
            parts.append(f"denoise {c.denoise_us} us")
        if c.refractory_us:
            parts.append(f"refractory {c.refractory_us} us")
        if c.max_events_per_step:
            parts.append(f"cap {c.max_events_per_step}/step")
        return ", ".join(parts)

    # Streaming --------------------------------------------------------------------------------

    def feed(self, events: np.ndarray):
        """Consume a time-ordered chunk; return [(step, input ids)] of the steps it completed."""
        if not len(events):
            return []
        if self.t0 is None:
            self.t0 = int(events["t"][0])
        elif int(events["t"][0]) < self.t0:
            raise ValueError(f"event at {int(events['t'][0])} us lies before the encoder's start "
                             f"({self.t0} us)")
        t, ids = self._filter(events)
        t = np.concatenate([self._open_t, t])
        ids = np.concatenate([self._open_ids, ids])
        if not len(t):
            return []
        # Everything before the step of the chunk's last event is complete.
        last_step = (int(events["t"][-1]) - self.t0) // self.cfg.dt_us
        split = np.searchsorted(t, self.t0 + last_step * self.cfg.dt_us, side="left")
        self._open_t, self._open_ids = t[split:], ids[split:]
        return self._steps(t[:split], ids[:split])

    def finish(self):
        """Return the remaining steps."""
        t, ids = self._open_t, self._open_ids
        self._open_t, self._open_ids = t[:0], ids[:0]
        return self._steps(t, ids)

    def _steps(self, t, ids):
        if not len(t):
            return []
        steps = (t - self.t0) // self.cfg.dt_us
        bounds = np.flatnonzero(np.diff(steps)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(t)]])
        cap = self.cfg.max_events_per_step
        out = []
        for s, e in zip(starts, ends):
            if cap and e - s > cap:
                self.counts.capped += int(e - s - cap)
                e = s + cap
            out.append((int(steps[s]), ids[s:e]))
            self.counts.inputs += int(e - s)
        cells, counts = np.unique(np.concatenate([i for _, i in out]), return_counts=True)
        self._totals.add(cells, counts)
        return out

    def totals(self) -> np.ndarray:
        """Events passed on per input so far, shape `self.shape` (channel, row, column): an
        array of `n_inputs` int64 (call it once a network has bounded the inputs)."""
        out = np.zeros(self.n_inputs, np.int64)
        keys, values = self._totals.items()
        out[keys] = values
        return out.reshape(self.shape)

    # Stages -----------------------------------------------------------------------------------

    def _filter(self, events):
        c = self.cfg
        self.counts.events += len(events)
        x0, y0, w, h = self.window
        x = events["x"].astype(np.int64) - x0
        y = events["y"].astype(np.int64) - y0
        t = events["t"].astype(np.int64)
        on = events["on"]
        keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        self.counts.cropped += int(len(keep) - keep.sum())
        x, y, t, on = x[keep], y[keep], t[keep], on[keep]
        if c.denoise_us:
            keep = self._denoise(x, y, t)
            self.counts.denoised += int(len(keep) - keep.sum())
            x, y, t, on = x[keep], y[keep], t[keep], on[keep]
        if c.polarity in ("on", "off"):
            keep = on if c.polarity == "on" else ~on
            self.counts.polarity += int(len(keep) - keep.sum())
            x, y, t, on = x[keep], y[keep], t[keep], on[keep]
        cw, ch = self.cells
        ids = (y // c.pool[1]) * cw + x // c.pool[0]
        if c.polarity == "split":
            ids = ids + np.where(on, 0, cw * ch)
        if c.refractory_us:
            keep = self._refractory(ids, t)
            self.counts.refractory += int(len(keep) - keep.sum())
            ids, t = ids[keep], t[keep]
        return t, ids

    def _denoise(self, x, y, t) -> np.ndarray:
        """Background-activity filter over the 8 neighbours, exact across chunk borders."""
        n = len(t)
        if not n:
            return np.zeros(0, bool)
        w = self.window[2] + 2
        pix = (y + 1) * w + (x + 1)
        order = np.argsort(pix, kind="stable")          # by pixel, then arrival
        pix_sorted, t_sorted = pix[order], t[order]
        key = pix_sorted * n + order
        latest = np.full(n, _NEVER, np.int64)           # in sorted order
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dx == dy == 0:
                    continue
                q = pix_sorted + (dy * w + dx)
                # The latest event at pixel q that arrived before this one, in this chunk (the
                # queries are in key order too, which keeps the search cache-friendly) ...
                pos = np.searchsorted(key, q * n + order) - 1
                safe = np.maximum(pos, 0)
                found = (pos >= 0) & (pix_sorted[safe] == q)
                here = np.where(found, t_sorted[safe],
                                self._neighbour_time.get(q))   # ... or in an earlier chunk
                np.maximum(latest, here, out=latest)
        last = np.flatnonzero(np.diff(pix_sorted, append=-1))   # each pixel's latest event
        self._neighbour_time.maximum(pix_sorted[last], t_sorted[last])
        supported = np.empty(n, bool)
        supported[order] = latest >= t_sorted - self.cfg.denoise_us
        return supported

    def _refractory(self, ids, t) -> np.ndarray:
        """Per input: keep an event only `refractory_us` after the last kept one (greedy, exact
        across chunk borders)."""
        n = len(t)
        keep = np.zeros(n, bool)
        if not n:
            return keep
        r = self.cfg.refractory_us
        # By input, then time. A stable sort of 16-bit keys is a radix sort: much faster.
        keys = ids.astype(np.uint16) if self.n_inputs <= 1 << 16 else ids
        order = np.argsort(keys, kind="stable")
        g, ts = ids[order], t[order]
        base = int(ts.min())
        span = int(ts.max()) - base + r + 2
        key = g * span + (ts - base)
        nxt = np.searchsorted(key, key + r)      # first event >= r later (maybe of another input)
        groups = g[np.flatnonzero(np.diff(g, prepend=-1))]     # g is sorted
        earliest = np.maximum(self._last_kept.get(groups) + r - base, 0)
        cur = np.searchsorted(key, groups * span + earliest)
        valid = cur < n
        valid[valid] = g[cur[valid]] == groups[valid]
        cur = cur[valid]
        while cur.size:
            keep[order[cur]] = True
            step = nxt[cur]
            ok = step < n
            ok[ok] = g[step[ok]] == g[cur[ok]]
            cur = step[ok]
        kept = keep[order]
        if kept.any():
            self._last_kept.maximum(g[kept], ts[kept])
        return keep
