"""Tools the model can call: re-exported from :mod:`voxengine.conversation`.

:func:`tool` and :class:`Tool`/:class:`ToolResult` live in
:mod:`voxengine.conversation.tools`, :class:`ToolRegistry` in
:mod:`voxengine.conversation.tool_registry`; this module keeps the import path users
know.
"""

from __future__ import annotations

from voxengine.conversation.tool_registry import ToolRegistry
from voxengine.conversation.tools import Tool, ToolResult, tool

__all__ = ["Tool", "ToolRegistry", "ToolResult", "tool"]
