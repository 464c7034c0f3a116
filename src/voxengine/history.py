"""Moved to :mod:`voxengine.session.history`; this name stays importable."""

from voxengine.session.history import ConversationHistory, HistoryEntry

__all__ = ["ConversationHistory", "HistoryEntry"]
