"""Write a run's results: the one place that saves spikes and pictures of `spikefab run`.

Files in the output folder:
- `spikes.npz`: `dt_us`, `t0_us` (time of step 0 in the recording's µs), `input_counts` (events
  sent per step) and `spikes_<population>` ((n, 2) int64 arrays of (step, neuron));
- `spikes.csv`: `population,neuron,step,time_us` (time_us = t0_us + step * dt_us), one spike a line;
- `run.png`: the run picture (`spikefab.host.plots.save_run_plot`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RunOutput", "save_run"]


@dataclass
class RunOutput:
    """What a run produced, in the units of the files above."""
    spikes: dict[str, np.ndarray]      # population -> (n, 2) (step, neuron)
    sizes: dict[str, int]              # population -> neurons
    input_counts: np.ndarray           # events sent per step
    dt_us: int
    t0_us: int = 0


def save_run(out, run: RunOutput, *, title: str = "", **picture) -> list[Path]:
    """Write `spikes.npz`, `spikes.csv` and `run.png` into folder `out` (created if needed);
    return their paths. `picture` options go to `plots.save_run_plot`."""
    from .plots import save_run_plot
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    npz, csv = out / "spikes.npz", out / "spikes.csv"
    np.savez(npz, dt_us=run.dt_us, t0_us=run.t0_us,
             input_counts=np.asarray(run.input_counts, dtype=np.int64),
             **{f"spikes_{name}": s for name, s in run.spikes.items()})
    _write_csv(csv, run)
    picture = save_run_plot(out / "run.png", np.asarray(run.input_counts), run.spikes, run.sizes,
                            run.dt_us, title=title, **picture)
    return [npz, csv, Path(picture)]


def _write_csv(path: Path, run: RunOutput):
    with open(path, "w") as f:
        f.write("population,neuron,step,time_us\n")
        for name, s in run.spikes.items():
            for step, neuron in s:
                f.write(f"{name},{neuron},{step},{run.t0_us + step * run.dt_us}\n")
