"""Amaranth 0.5 gateware of spikeforge."""

from .core import LIFCore

__all__ = ["LIFCore"]
