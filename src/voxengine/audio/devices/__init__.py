"""Audio input and output backends with one interface, usable from asyncio.

This is the only module of :mod:`voxengine.audio` that uses asyncio, and it is not
re-exported by the package: import it as ``voxengine.audio.devices``.

Inputs (:class:`AudioInput`) deliver PCM16 chunks through ``await read()``:

* :class:`SoundDeviceInput`: a microphone via ``sounddevice`` (PortAudio).
* :class:`FileInput`: a WAV file, paced like a microphone, then trailing silence.
* :class:`NullInput`: silence, paced like a microphone.

End of stream: ``read()`` returns ``b""`` once a finite input is exhausted (and on
every later call); it never returns ``b""`` before that. ``read()`` raises
:class:`~voxengine.errors.AudioError` when the input is not started or is stopped,
including when ``stop()`` is called while a ``read()`` is waiting.

Outputs (:class:`AudioOutput`) take PCM16 through the non-blocking ``write()`` and
account for playback exactly, because barge-in truncation (``audio_end_ms``) is
computed from it:

* ``played``: seconds of *written* audio consumed by the device (or its clock)
  since the last ``mark()``; underrun silence is not counted.
* ``pending``: seconds written but not yet consumed.
* ``clear()``: drops the pending audio and returns its length in seconds; ``played``
  is unchanged.

Backends: :class:`SoundDeviceOutput` (speakers), :class:`FileOutput` (collects what
was played; WAV via ``save()``), :class:`NullOutput` (discards). With
``realtime=True`` the file and null outputs consume audio at ``sample_rate`` frames
per second of the loop clock (or an injected clock), from ``start()`` until
``stop()``, like a speaker that plays silence when it has nothing; with
``realtime=False`` everything written counts as played at once.

Threads: PortAudio calls the device callbacks on its own thread. Input chunks reach
the loop only via ``loop.call_soon_threadsafe`` into a bounded queue
(:class:`ChunkQueue`, oldest dropped when full); output callbacks pull from a
lock-protected :class:`PlaybackBuffer`. Both helpers are public so that other
backends (and tests) can reuse the exact hand-off and accounting logic.

Errors: a missing optional package raises :class:`~voxengine.errors.ConfigError`
with an install hint; a missing or failing device raises
:class:`~voxengine.errors.AudioError`. Any other exception is a bug.

The package, by concern: :mod:`.base` (the :class:`AudioInput`/:class:`AudioOutput`
protocols), :mod:`.handoff` (the thread-to-loop hand-off), :mod:`.files` (WAV files
and silence) and :mod:`.portaudio` (sound cards via ``sounddevice``).
"""

from __future__ import annotations

from voxengine.audio.devices.base import AudioInput, AudioOutput
from voxengine.audio.devices.files import FileInput, FileOutput, NullInput, NullOutput
from voxengine.audio.devices.handoff import ChunkQueue, PlaybackBuffer
from voxengine.audio.devices.portaudio import (
    DeviceInfo,
    SoundDeviceInput,
    SoundDeviceOutput,
    list_devices,
)

__all__ = [
    "AudioInput",
    "AudioOutput",
    "ChunkQueue",
    "DeviceInfo",
    "FileInput",
    "FileOutput",
    "NullInput",
    "NullOutput",
    "PlaybackBuffer",
    "SoundDeviceInput",
    "SoundDeviceOutput",
    "list_devices",
]
