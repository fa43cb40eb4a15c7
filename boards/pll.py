"""PLLs: pick divider settings for a target clock and instantiate the vendor primitive.

The solvers search the dividers within the ranges of the device data sheets and return the
setting whose output is closest to the target (then the lowest VCO jitter is not optimised: any
valid setting is a working clock). Each returns the frequency it actually produces, which the
build uses for the UART divisor and the timing constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["ICE40PLL", "ECP5PLL", "ice40_pll", "ecp5_pll", "add_pll_domain"]


@dataclass(frozen=True)
class ICE40PLL:
    """SB_PLL40 setting: f_out = f_in * (divf + 1) / ((divr + 1) * 2**divq)."""
    divr: int
    divf: int
    divq: int
    filter_range: int
    f_in: float
    f_out: float


@dataclass(frozen=True)
class ECP5PLL:
    """EHXPLLL setting with CLKOP fed back: f_out = f_in * clkfb_div / clki_div,
    VCO = f_out * clkop_div."""
    clki_div: int
    clkfb_div: int
    clkop_div: int
    f_in: float
    f_out: float


def ice40_pll(f_in: float, f_target: float) -> ICE40PLL:
    """Return the SB_PLL40 (SIMPLE feedback) setting closest to `f_target` (Hz).

    Ranges (iCE40 sysCLOCK PLL guide): PFD f_in/(DIVR+1) in 10..133 MHz, VCO in 533..1066 MHz,
    output 16..275 MHz, DIVR 0..15, DIVF 0..127, DIVQ 1..6.
    """
    if not 16e6 <= f_target <= 275e6:
        raise ValueError(f"an iCE40 PLL makes 16..275 MHz, not {f_target / 1e6:g} MHz")
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f_out = f_vco / (1 << divq)
                if not 16e6 <= f_out <= 275e6:
                    continue
                if best is None or abs(f_out - f_target) < abs(best.f_out - f_target):
                    best = ICE40PLL(divr, divf, divq, _ice40_filter_range(f_pfd), f_in, f_out)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting makes {f_target / 1e6:g} MHz from "
                         f"{f_in / 1e6:g} MHz")
    return best


def _ice40_filter_range(f_pfd: float) -> int:
    """The loop-filter range the iCE40 PLL needs for its phase-detector frequency."""
    for limit, value in ((17e6, 1), (26e6, 2), (44e6, 3), (66e6, 4), (101e6, 5)):
        if f_pfd < limit:
            return value
    return 6


def ecp5_pll(f_in: float, f_target: float) -> ECP5PLL:
    """Return the EHXPLLL setting closest to `f_target` (Hz), CLKOP fed back.

    Ranges (ECP5 sysCLOCK guide): PFD f_in/CLKI_DIV in 3.125..400 MHz, VCO in 400..800 MHz,
    CLKOP 3.125..400 MHz; CLKI_DIV 1..128, CLKFB_DIV 1..80, CLKOP_DIV 1..128.
    """
    if not 3.125e6 <= f_target <= 400e6:
        raise ValueError(f"an ECP5 PLL makes 3.125..400 MHz, not {f_target / 1e6:g} MHz")
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125e6 <= f_pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            f_out = f_pfd * clkfb_div
            if not 3.125e6 <= f_out <= 400e6:
                continue
            clkop_div = max(1, round(600e6 / f_out))      # VCO near the middle of its range
            if not 400e6 <= f_out * clkop_div <= 800e6 or clkop_div > 128:
                continue
            if best is None or abs(f_out - f_target) < abs(best.f_out - f_target):
                best = ECP5PLL(clki_div, clkfb_div, clkop_div, f_in, f_out)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes {f_target / 1e6:g} MHz from "
                         f"{f_in / 1e6:g} MHz")
    return best


def add_pll_domain(m: Module, platform, clock_resource: str, f_target: float) -> float:
    """Create the `sync` domain from a PLL on `clock_resource`; return its frequency in Hz.

    The domain is held in reset until the PLL locks. nextpnr derives the output clock's timing
    constraint from the input clock's (set by the platform) and the PLL's dividers; the build
    checks that it equals the frequency returned here.
    """
    f_in = platform.lookup(clock_resource).clock.frequency
    m.domains.sync = cd_sync = ClockDomain("sync")
    locked = Signal()
    if platform.family == "iCE40":
        setting = ice40_pll(f_in, f_target)
        pin = platform.request(clock_resource, dir="-")
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
            p_DIVR=setting.divr, p_DIVF=setting.divf, p_DIVQ=setting.divq,
            p_FILTER_RANGE=setting.filter_range,
            i_PACKAGEPIN=pin.io, i_RESETB=Const(1), i_BYPASS=Const(0),
            o_PLLOUTGLOBAL=cd_sync.clk, o_LOCK=locked)
    elif platform.family == "ecp5":
        setting = ecp5_pll(f_in, f_target)
        clk_in = platform.request(clock_resource, dir="i").i
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{f_in / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{setting.f_out / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKI_DIV=setting.clki_div, p_CLKFB_DIV=setting.clkfb_div,
            p_CLKOP_DIV=setting.clkop_div, p_CLKOP_CPHASE=setting.clkop_div - 1,
            p_CLKOP_FPHASE=0, p_CLKOP_ENABLE="ENABLED", p_FEEDBK_PATH="CLKOP",
            i_CLKI=clk_in, i_CLKFB=ClockSignal("sync"), i_RST=Const(0), i_STDBY=Const(0),
            i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(0),
            i_PHASESTEP=Const(0), i_PHASELOADREG=Const(0), i_PLLWAKESYNC=Const(0),
            i_ENCLKOP=Const(0),
            o_CLKOP=cd_sync.clk, o_LOCK=locked)
    else:
        raise ValueError(f"no PLL support for the {platform.family} family")
    m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
    return setting.f_out
