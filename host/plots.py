"""Pictures people would rather look at than read: spike rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_raster"]


def save_raster(path, step_events, n_axons: int, spikes: np.ndarray, *, title: str = "") -> Path:
    """Save a two-panel PNG: input events (axon vs step) above output spikes (neuron vs step)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
