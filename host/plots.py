"""Pictures people would rather look at than read: spike rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_raster", "save_run_plot"]


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _finish(fig, path: Path, title: str, dpi: int) -> Path:
    """Title, lay out, save and close `fig`; return `path`."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def save_raster(path, step_events, n_axons: int, spikes: np.ndarray, *, title: str = "") -> Path:
    """Save a two-panel PNG: input events (axon vs step) above output spikes (neuron vs step)."""
    plt = _pyplot()
    path = Path(path)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 1.3]})
    steps = np.concatenate([np.full(len(a), t) for t, a in enumerate(step_events)] or [[]])
    axons = np.concatenate([np.asarray(a) for a in step_events] or [[]])
    keep = (axons >= 0) & (axons < n_axons)
    top.scatter(steps[keep], axons[keep], s=1, c="tab:blue", marker="|")
    top.set_ylabel("input axon")
    top.set_ylim(-0.5, n_axons - 0.5)
    t, n = np.nonzero(spikes)
    bottom.scatter(t, n, s=2, c="black", marker="|")
    bottom.set_ylabel("output neuron")
    bottom.set_xlabel("time step")
    bottom.set_ylim(-0.5, spikes.shape[1] - 0.5)
    return _finish(fig, path, title, dpi=110)


def save_run_plot(path, input_counts: np.ndarray, spikes: dict, sizes: dict, dt_us: int, *,
                  title: str = "") -> Path:
    """Save the picture of a run: input events per step, then per recorded population a spike
    raster (neuron vs time) and its population rate (spikes per step, smoothed over 10 steps).

    `input_counts`: events sent per step; `spikes`: population -> (n, 2) (step, neuron);
    `sizes`: population -> neurons.
    """
    plt = _pyplot()
    path = Path(path)
    names = list(spikes)
    ratios = [1] + [2 if sizes[n] > 8 else 1 for n in names] + [1]
    fig, axes = plt.subplots(len(names) + 2, 1, figsize=(11, 2.2 * len(ratios) + 1), sharex=True,
                             gridspec_kw={"height_ratios": ratios})
    ms = dt_us / 1000
    steps = np.arange(len(input_counts))
    axes[0].plot(steps * ms, input_counts, lw=0.6, color="tab:blue")
    axes[0].set_ylabel("input\nevents/step")
    window = np.ones(10) / 10
    for ax, name in zip(axes[1:], names):
        s = spikes[name]
        ax.scatter(s[:, 0] * ms, s[:, 1], s=3, c="black", marker="|")
        ax.set_ylim(-0.5, sizes[name] - 0.5)
        ax.set_ylabel(f"{name}\nneuron")
    rate_ax = axes[-1]
    for name in names:
        counts = np.bincount(spikes[name][:, 0], minlength=len(steps))[:len(steps)]
        rate_ax.plot(steps * ms, np.convolve(counts, window, mode="same"), lw=0.8, label=name)
    rate_ax.set_ylabel("spikes/step")
    rate_ax.set_xlabel("time (ms)")
    if names:
        rate_ax.legend(loc="upper right", fontsize=8)
    return _finish(fig, path, title, dpi=100)
