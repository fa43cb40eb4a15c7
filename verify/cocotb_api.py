"""The cocotb names the benches use, imported in this one place.

Every `*_bench` module imports cocotb through here, so that without the `sim` extra importing a
bench fails with one line saying what to install rather than a bare `ModuleNotFoundError`.
"""

from . import missing_sim_extra

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge, Timer
except ImportError as exc:
    raise ImportError(missing_sim_extra(exc.name or "cocotb")) from None

__all__ = ["cocotb", "Clock", "RisingEdge", "Timer"]
