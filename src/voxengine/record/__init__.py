"""Record and replay: a session's wire frames to a file, and back in place of the service.

:mod:`.recording` (:class:`~voxengine.record.recording.Recorder`, the file format),
:mod:`.replay` (:class:`~voxengine.record.replay.ReplayConnector`, frame matching) and
:mod:`.logs` (the CLI's wire log). :mod:`voxengine.testing.replay` builds test
fixtures on them and ``voxengine replay`` (:mod:`voxengine.cli._replay`) runs a file.
The public import paths :mod:`voxengine.recording`, :mod:`voxengine.replay` and
:mod:`voxengine.logs` re-export these modules.
"""
