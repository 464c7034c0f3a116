"""Moved to :mod:`voxengine.session.queue`; this name stays importable."""

from voxengine.session.queue import Consumer, EventQueue

__all__ = ["Consumer", "EventQueue"]
