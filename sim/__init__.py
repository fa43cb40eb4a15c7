"""Bit-exact NumPy golden model of the spikefab gateware; also a fast simulator for users."""

from .chip import ChipModel
from .lif import CoreModel

__all__ = ["ChipModel", "CoreModel"]
