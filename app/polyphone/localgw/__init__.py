"""A local gateway faithful to the PolyAI WebRTC Gateway spec (offline use, demos, tests)."""

from .server import Faults, LocalGateway

__all__ = ["Faults", "LocalGateway"]
