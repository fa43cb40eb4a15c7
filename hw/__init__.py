"""Amaranth 0.5 gateware of spikefab."""

from .core import LIFCore

__all__ = ["LIFCore"]
