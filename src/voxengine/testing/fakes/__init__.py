"""Protocol-faithful fake peers, one package per service: :mod:`.openai` (Realtime),
:mod:`.gemini` (Live) and :mod:`.llm` (the HTTP chat, transcription and speech APIs
of the cascaded pipeline). Each models the service from its wire reference; none
imports the client stack above ``voxengine.protocols``. Users import them from
:mod:`voxengine.testing`.
"""
