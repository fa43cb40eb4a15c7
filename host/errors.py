"""The host's two link errors, shared by the transports and the client."""

from __future__ import annotations

from spikefab import protocol as P

__all__ = ["LinkError", "ChipError", "ToolError"]


class LinkError(IOError):
    """The link broke: no reply, a reply that does not decode, or a reply to something else."""


class ChipError(RuntimeError):
    """The chip rejected a request; `status` says why (nothing was changed)."""

    def __init__(self, op: P.Op, status: P.Status):
        super().__init__(f"{op.name} rejected by the chip: {status.name}")
        self.op, self.status = op, status


class ToolError(RuntimeError):
    """A tool the host runs (Verilator, the C++ compiler of the simulated board) is missing or
    failed; the message says which and where its log is."""
