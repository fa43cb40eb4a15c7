"""Pictures people would rather look at than read: spike rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_run_plot", "run_figure"]


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


def save_run_plot(path, input_counts: np.ndarray, spikes: dict, sizes: dict, dt_us: int, *,
                  title: str = "", **extras) -> Path:
    """Save `run_figure(...)` as a PNG at `path`; return `path`."""
    fig = run_figure(input_counts, spikes, sizes, dt_us, title=title, **extras)
    fig.savefig(Path(path), dpi=100)
    _pyplot().close(fig)
    return Path(path)


def run_figure(input_counts: np.ndarray, spikes: dict, sizes: dict, dt_us: int, *,
               title: str = "", image: np.ndarray | None = None, image_title: str = "",
               names: dict | None = None, groups: dict | None = None):
    """Return the picture of a run, laid out. Right, over a shared time axis: input events per
    step, per recorded population a spike raster (neuron vs time), and the population rates
    (spikes per step, smoothed over 10 steps). Left: the input image (events per input cell
    after crop and pooling, one panel per channel) and the rates' legend, off the data.

    `input_counts`: events sent per step; `spikes`: population -> (n, 2) (step, neuron);
    `sizes`: population -> neurons; `image`: (channels, rows, columns) event counts;
    `names`: population -> a name per neuron (tick labels); `groups`: population ->
    [(name, neurons)] consecutive groups, drawn as separated bands with their names.
    """
    plt = _pyplot()
    names, groups = names or {}, groups or {}
    pops = list(spikes)
    ratios = [1] + [2 if sizes[n] > 8 else 1 for n in pops] + [1]
    fig = plt.figure(figsize=(13, 2.2 * len(ratios) + 1))
    grid = fig.add_gridspec(len(ratios), 2, width_ratios=[1.5, 3.2], height_ratios=ratios)
    first = fig.add_subplot(grid[0, 1])
    axes = [first] + [fig.add_subplot(grid[i, 1], sharex=first) for i in range(1, len(ratios))]
    ms = dt_us / 1000
    steps = np.arange(len(input_counts))
    axes[0].plot(steps * ms, input_counts, lw=0.6, color="tab:blue")
    axes[0].set_ylabel("input\nevents/step")
    for ax, name in zip(axes[1:], pops):
        _raster(ax, spikes[name], sizes[name], ms, name, names.get(name), groups.get(name))
    rate_ax, lines = axes[-1], []
    # np.convolve's "same" is as long as the longer input: no longer window than the run.
    window = np.ones(max(1, min(10, len(steps)))) / max(1, min(10, len(steps)))
    for name in pops:
        counts = np.bincount(spikes[name][:, 0], minlength=len(steps))[:len(steps)]
        rate = np.convolve(counts, window, mode="same") if len(steps) else counts
        lines += rate_ax.plot(steps * ms, rate, lw=0.8, label=name)
    rate_ax.set_ylabel("spikes/step")
    rate_ax.set_xlabel("time (ms)")
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    if image is not None:
        _input_image(fig.add_subplot(grid[:max(1, len(ratios) - 2), 0]), image, image_title)
    if lines:
        legend_ax = fig.add_subplot(grid[-1, 0])
        legend_ax.axis("off")
        legend_ax.legend(lines, [f"{n} ({sizes[n]} neurons)" for n in pops], loc="center",
                         fontsize=8, title="population rates")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _raster(ax, s: np.ndarray, size: int, ms: float, name: str, labels, bands):
    """One population's raster; neuron names as ticks; groups as shaded, separated bands."""
    ax.scatter(s[:, 0] * ms, s[:, 1], s=3, c="black", marker="|")
    ax.set_ylim(-0.5, size - 0.5)
    ax.set_ylabel(f"{name}\nneuron")
    if labels:
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
    if bands:
        edges = np.cumsum([0] + [n for _, n in bands]) - 0.5
        for k in range(len(bands)):
            if k % 2:
                ax.axhspan(edges[k], edges[k + 1], color="0.92", zorder=0)
            if k:
                ax.axhline(edges[k], color="tab:red", lw=0.8)
        ax.set_yticks((edges[:-1] + edges[1:]) / 2, [b for b, _ in bands], fontsize=8)
        ax.set_ylabel(f"{name}\n(neuron groups)")


def _input_image(ax, image: np.ndarray, title: str):
    """Event counts per input cell, one channel above the other (ON above OFF)."""
    channels, rows, cols = image.shape
    gap = max(1, rows // 8)
    panel = np.full((channels * rows + (channels - 1) * gap, cols), np.nan)
    for c in range(channels):
        panel[c * (rows + gap):c * (rows + gap) + rows] = image[c]
    shown = ax.imshow(panel, cmap="viridis", interpolation="nearest")
    ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="events")
    ax.set_yticks([c * (rows + gap) + (rows - 1) / 2 for c in range(channels)],
                  ["ON", "OFF"] if channels == 2 else ["events"])
    ax.set_xticks([])
    ax.set_title("input events per cell" + (f"\n{title}" if title else ""), fontsize=9)
