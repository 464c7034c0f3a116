"""Conversation logic above one provider session: tools and context injection.

The pure parts sit beside the drivers that run them on a live session:

* :mod:`.tools` (:func:`~voxengine.conversation.tools.tool`, :class:`Tool`,
  :class:`ToolResult`), :mod:`.tool_schema` (JSON Schema from signatures),
  :mod:`.tool_validation` (arguments against the schema), :mod:`.tool_registry`
  (:class:`ToolRegistry`: offering tools, executing calls), and the driver
  :mod:`.tool_runner` (answers a session's tool calls);
* :mod:`.context` (what to inject and when: :class:`ContextEntry`, the scheduler) and
  the driver :mod:`.injector` (sends due entries through the provider).

Import the public names from :mod:`voxengine` (or :mod:`voxengine.tools`,
:mod:`voxengine.context`, which re-export them).
"""
