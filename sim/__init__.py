"""Bit-exact NumPy golden model of the spikeforge gateware; also a fast simulator for users."""

from .lif import CoreModel

__all__ = ["CoreModel"]
