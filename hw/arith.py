"""Fixed-point helpers that implement the primitives of `docs/numerics.md` in gateware."""

from amaranth.hdl import Const, Mux, signed

__all__ = ["saturate", "mul_decay", "bump"]


def saturate(value, width: int):
    """Clamp a signed value to the range of signed(width); returns a signed(width) value."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    clamped = Mux(value > hi, hi, Mux(value < lo, lo, value))
    return clamped.as_signed()[:width].as_signed()


def mul_decay(value, factor, frac_bits: int):
    """Return value * factor / 2**frac_bits rounded toward zero (factor is unsigned)."""
    product = value * factor
    # An arithmetic shift rounds toward minus infinity; biasing negative products by
    # 2**F - 1 first turns that into rounding toward zero.
    bias = Const((1 << frac_bits) - 1, signed(frac_bits + 1))
    return Mux(product < 0, product + bias, product) >> frac_bits


def bump(m, counter):
    """Increment a status counter in `m`'s sync domain, saturating at all ones (never wrapping)."""
    with m.If(~counter.all()):
        m.d.sync += counter.eq(counter + 1)
