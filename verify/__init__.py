"""Verification of the gateware, kept apart from the design in `spikefab.hw`.

- `rtlsim`: converts a design to Verilog, builds it with Verilator (cached) and runs a cocotb
  bench on it; `run_scenario`, `run_chip_exchange` and friends are the entry points.
- `*_bench`: the cocotb benches (they import cocotb, so they need the `sim` extra).
- `formal*`: bounded formal checks with SymbiYosys (the `formal` extra).
- `simboard`: the chip wrapped for the simulated board.

Nothing in `spikefab.hw`, `spikefab.sim` or `spikefab.host` imports this package at import time.
"""
