"""The engine's audio path: input → (resample, local VAD) → provider; provider → speaker.

:class:`VoiceIO` owns the optional devices (microphone/speaker, files, or null), the
stream resamplers between device and provider rates, the client-side VAD, and the
playback tracker that makes barge-in exact: when the user starts talking while the
assistant is audible, playback stops at once, the response is cancelled (unless the
provider's VAD already did it) and the assistant item is truncated at the audio the
speaker actually *played*, not the audio received.

``observe`` runs synchronously on every provider event, before application handlers,
so stopping playback never waits for a slow handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, final

from voxengine.audio.devices import (
    AudioInput,
    AudioOutput,
    FileInput,
    FileOutput,
    NullInput,
    NullOutput,
    SoundDeviceInput,
    SoundDeviceOutput,
)
from voxengine.audio.format import AudioFormat, validate_sample_rate
from voxengine.audio.pcm16 import downmix_to_mono, validate_pcm16
from voxengine.audio.resample import Resampler, StreamResampler
from voxengine.audio.vad import VAD, SpeechAudio, SpeechEnd, SpeechStart, VADConfig, make_vad
from voxengine.commands import SendAudio
from voxengine.engine_config import VoiceEngineConfig
from voxengine.errors import ConfigError, InvalidState
from voxengine.events import (
    AudioDelta,
    AudioDone,
    Event,
    Interrupted,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
)
from voxengine.playback import PlaybackTracker
from voxengine.providers.base import BaseProvider

__all__ = ["ResamplerFactory", "VoiceIO"]

logger = logging.getLogger("voxengine.voice")

Emit = Callable[[Event], Awaitable[None]]

#: Makes the stream resampler from one rate (Hz) to another.
ResamplerFactory = Callable[[int, int], Resampler]


#: The event classes :meth:`VoiceIO.observe` acts on (its ``match``).
_VOICE_EVENTS: frozenset[type] = frozenset(
    {AudioDelta, AudioDone, ResponseStarted, ResponseDone, SpeechStarted}
)


@final
class VoiceIO:
    """Audio in, audio out, local VAD and barge-in for one engine.

    ``resampler_factory`` makes the stream resamplers between the devices' (or the
    caller's) rates and the provider's: soxr's :class:`StreamResampler` (``"HQ"``) by
    default; a server sets :class:`~voxengine.audio.lowdelay.LowDelayResampler`
    before ``connect()``, which holds no audio back. Set it before audio flows.
    """

    # Slots: one of these per session (memory per idle session).
    __slots__ = (
        "_config",
        "_emit",
        "_input_bytes_per_second",
        "_input_format",
        "_listen_task",
        "_on_audio_sent",
        "_on_request",
        "_out_resampler",
        "_output",
        "_playback",
        "_provider",
        "_provider_cancels",
        "_resamplers",
        "_responding",
        "_tasks",
        "audio_observers",
        "input",
        "on_output_change",
        "resampler_factory",
        "vad",
    )

    def __init__(
        self,
        provider: BaseProvider,
        config: VoiceEngineConfig,
        emit: Emit,
        on_request: Callable[[], None] = lambda: None,
        on_audio_sent: Callable[[float], None] | None = None,
    ) -> None:
        self._provider = provider
        self._config = config
        self._emit = emit
        #: Called after :attr:`output` changed (who plays the audio); ``None``: nobody asks.
        self.on_output_change: Callable[[], None] | None = None
        self._on_request = on_request
        self._on_audio_sent = on_audio_sent
        self._playback: PlaybackTracker | None = None  # made once audio is played
        self.input: AudioInput | None = None
        #: What must see assistant audio: :meth:`observe` while there is an output to
        #: play it, else nothing (a live list; the engine's strategy reads it per chunk).
        self.audio_observers: list[Callable[[Event], None]] = []
        self._output: AudioOutput | None = None
        self.resampler_factory: ResamplerFactory = StreamResampler
        self._resamplers: dict[int, Resampler] | None = None  # by input rate, made on need
        self._out_resampler: Resampler | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._tasks: dict[asyncio.Task[None], None] | None = None  # barge-ins running
        self._responding = False
        self.vad: VAD | None = None
        self.attach(provider)
        # With provider VAD and interrupt_response, the provider cancels by itself.
        self._provider_cancels = (
            config.vad_enabled and config.vad_type in ("server", "semantic") and config.barge_in
        )

    @property
    def playback(self) -> PlaybackTracker:
        """Queued seconds per assistant item on the output (for barge-in truncation)."""
        playback = self._playback
        if playback is None:
            playback = self._playback = PlaybackTracker()
        return playback

    @property
    def output(self) -> AudioOutput | None:
        """Where assistant audio plays (``None``: nowhere; the application handles it)."""
        return self._output

    @output.setter
    def output(self, output: AudioOutput | None) -> None:
        self._output = output
        self.audio_observers[:] = [] if output is None else [self.observe]
        if self.on_output_change is not None:
            self.on_output_change()

    def attach(self, provider: BaseProvider) -> None:
        """Serve ``provider`` from now on (failover): formats, resamplers and VAD follow it."""
        self._provider = provider
        #: The provider's input format's byte rate (the sent audio's duration, per chunk).
        self._input_format = provider.input_format
        self._input_bytes_per_second = self._input_format.bytes_per_second
        self._resamplers = None
        self._responding = False
        config = self._config
        if config.vad_enabled and config.vad_type == "client":
            self.vad = make_vad(
                config.vad_engine,
                VADConfig(
                    threshold=config.vad_threshold,
                    speech_start=config.vad_speech_start_ms / 1000,
                    speech_end=config.vad_speech_end_ms / 1000,
                    pre_roll=config.vad_prefix_padding_ms / 1000,
                ),
                provider.input_format.sample_rate,
            )
        output = self.output
        if output is not None:
            rate = provider.output_format.sample_rate
            target = output.format.sample_rate
            self._out_resampler = self.resampler_factory(rate, target) if rate != target else None

    # -- devices ------------------------------------------------------------------------

    def _device_format(self, provider_format: AudioFormat) -> AudioFormat:
        # Sound cards commonly run at 48 kHz; files and null devices at the provider rate.
        default = 48_000 if self._config.audio_backend == "sounddevice" else None
        rate = self._config.device_sample_rate or default or provider_format.sample_rate
        return AudioFormat(sample_rate=rate)

    async def open(self) -> None:
        """Create and start the configured output (input starts with listening)."""
        backend = self._config.audio_backend
        if backend is None:
            return
        in_fmt = self._device_format(self._provider.input_format)
        out_fmt = self._device_format(self._provider.output_format)
        cfg = self._config
        if backend == "sounddevice":
            self.input = SoundDeviceInput(in_fmt, input_device=cfg.input_device)
            if cfg.playback:
                self.output = SoundDeviceOutput(out_fmt, output_device=cfg.output_device)
        elif backend == "file":
            if cfg.input_file is not None:
                self.input = FileInput(cfg.input_file, in_fmt)
            if cfg.playback:
                self.output = FileOutput(out_fmt)
        else:
            self.input = NullInput(in_fmt)
            if cfg.playback:
                self.output = NullOutput(out_fmt)
        if self.output is not None:
            if out_fmt.sample_rate != self._provider.output_format.sample_rate:
                self._out_resampler = self.resampler_factory(
                    self._provider.output_format.sample_rate, out_fmt.sample_rate
                )
            await self.output.start()

    async def close(self) -> None:
        """Stop listening and playback; save the output file when one is configured."""
        await self.stop_listening()
        for task in list(self._tasks or ()):
            with contextlib.suppress(Exception):
                await task
        if self.output is not None:
            await self.output.stop()
            if isinstance(self.output, FileOutput) and self._config.output_file is not None:
                self.output.save(self._config.output_file)

    async def start_listening(self) -> None:
        """Stream the input device to the provider until :meth:`stop_listening`."""
        if self.input is None:
            raise ConfigError("no audio input: set audio_backend (and input_file for 'file')")
        if self._listen_task is not None and not self._listen_task.done():
            raise InvalidState("already listening")
        await self.input.start()
        self._listen_task = asyncio.create_task(self._listen(self.input), name="voxengine-mic")

    async def _listen(self, source: AudioInput) -> None:
        rate = source.format.sample_rate
        try:
            while True:
                chunk = await source.read()
                if not chunk:
                    return
                await self.send_audio(chunk, sample_rate=rate, channels=1)
        except InvalidState:
            logger.debug("listening stopped: session closed")

    async def stop_listening(self) -> None:
        """Stop the input device and the streaming task."""
        task, self._listen_task = self._listen_task, None
        if self.input is not None:
            await self.input.stop()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_listening_done(self) -> None:
        """Wait until the input ends by itself (a file input reaching its end)."""
        if self._listen_task is not None:
            await self._listen_task

    # -- input path ---------------------------------------------------------------------

    def send_audio(
        self, audio: bytes, *, sample_rate: int | None, channels: int
    ) -> Coroutine[Any, Any, None]:
        """Validate, convert to the provider's format, and send (through local VAD).
        Returns the coroutine that does it; it raises what it finds wrong.

        The common case (mono at the provider's rate, no local VAD, nobody told of the
        audio sent) is the provider's own ``send_audio`` coroutine, handed on: the
        provider's checks are the one check of the caller's bytes.

        Raises:
            AudioError: (when awaited) ``sample_rate`` or ``channels`` not a positive
                int; malformed audio.
        """
        if (
            type(channels) is int
            and channels == 1
            and (
                sample_rate is None
                or (type(sample_rate) is int and sample_rate == self._input_format.sample_rate)
            )
            and self.vad is None
            and self._on_audio_sent is None
        ):
            return self._provider.send_audio(audio)
        return self._send_audio(audio, sample_rate, channels)

    async def _send_audio(self, audio: bytes, sample_rate: int | None, channels: int) -> None:
        """:meth:`send_audio`'s general path: checks, conversion, local VAD."""
        if sample_rate is not None and (type(sample_rate) is not int or sample_rate <= 0):
            sample_rate = validate_sample_rate(sample_rate)
        if type(channels) is not int:
            channels = validate_sample_rate(channels, "channels")
        target = self._input_format
        if channels == 1 and (sample_rate is None or sample_rate == target.sample_rate):
            if self.vad is None:
                await self._provider.send_audio(audio)
                sent = self._on_audio_sent
                if sent is not None and audio:
                    sent(len(audio) / self._input_bytes_per_second)
                return
            pcm = SendAudio(audio=audio).audio
        else:
            rate = target.sample_rate if sample_rate is None else sample_rate
            fmt = AudioFormat(sample_rate=rate, channels=channels)
            pcm = validate_pcm16(audio, fmt)
            if fmt.channels != 1:
                pcm = downmix_to_mono(pcm, fmt.channels)
            if fmt.sample_rate != target.sample_rate:
                resamplers = self._resamplers
                if resamplers is None:
                    resamplers = self._resamplers = {}
                resampler = resamplers.get(fmt.sample_rate)
                if resampler is None:
                    resampler = self.resampler_factory(fmt.sample_rate, target.sample_rate)
                    resamplers[fmt.sample_rate] = resampler
                pcm = resampler.process(pcm)
            if self.vad is None:
                await self._send(pcm)
                return
        for event in self.vad.process(pcm):
            match event:
                case SpeechStart(audio=pre, start=start):
                    await self._emit(SpeechStarted(item_id=None, audio_start=start))
                    if self._config.barge_in and self._audible():
                        await self._barge_in(cancel=True)
                    await self._send(pre)
                case SpeechAudio(audio=chunk):
                    await self._send(chunk)
                case SpeechEnd(end=end):
                    await self._emit(SpeechStopped(item_id=None, audio_end=end))
                    await self._provider.commit_audio()
                    if self._config.auto_respond:
                        self._on_request()
                        await self._provider.create_response()

    async def flush_input(self) -> None:
        """Send the audio the input resamplers still hold: the end of the user's turn.

        A streaming resampler keeps a few milliseconds back (its filter delay); called
        when the turn is committed, so that tail belongs to this turn instead of
        starting the next one. The resamplers start afresh afterwards.
        """
        for resampler in (self._resamplers or {}).values():
            await self._send(resampler.flush())

    async def _send(self, pcm: bytes) -> None:
        if pcm:
            await self._send_command(SendAudio(audio=pcm))

    async def _send_command(self, command: SendAudio) -> None:
        pcm = command.audio
        if pcm:
            await self._provider.send(command)
            if self._on_audio_sent is not None:
                self._on_audio_sent(len(pcm) / self._input_bytes_per_second)

    # -- output path and barge-in -------------------------------------------------------------

    def _audible(self) -> bool:
        return self._responding or (self.output is not None and self.output.pending > 0)

    def observe(self, event: Event) -> None:
        """Play audio and react to speech; runs before application handlers."""
        kind = type(event)
        if kind not in _VOICE_EVENTS or (kind is AudioDelta and self.output is None):
            return  # deltas, and audio with nothing to play it: one check on the hot path
        match event:
            case AudioDelta(item_id=item_id, audio=audio):
                output = self.output
                if output is None:
                    return
                seconds = self._provider.output_format.duration(len(audio))
                pcm = self._out_resampler.process(audio) if self._out_resampler else audio
                output.write(pcm)
                self.playback.written(item_id, seconds)
            case ResponseStarted():
                self._responding = True
                if self.output is not None and self.output.pending <= 0:
                    self.output.mark()
                    self.playback.reset()
            case AudioDone():
                self._flush_output()
            case ResponseDone():
                self._responding = False
                self._flush_output()
            case SpeechStarted():
                if self._config.barge_in and self._audible():
                    self._spawn(self._barge_in(cancel=not self._provider_cancels))
            case _:
                pass

    def _flush_output(self) -> None:
        """The reply's audio ended: play the tail the output resampler still holds
        (its filter delay), instead of holding it until the next reply."""
        if self._out_resampler is not None and self.output is not None:
            tail = self._out_resampler.flush()
            if tail:
                self.output.write(tail)

    def _spawn(self, coro: Awaitable[Interrupted]) -> None:
        async def run() -> None:
            try:
                await coro
            except InvalidState:
                logger.debug("barge-in after the session closed")

        task = asyncio.create_task(run(), name="voxengine-barge-in")
        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = {}
        tasks[task] = None
        task.add_done_callback(lambda done: tasks.pop(done, None))

    async def _barge_in(self, *, cancel: bool, played: float | None = None) -> Interrupted:
        item_id: str | None = None
        output = self.output
        if output is not None:
            # Clear first, then read what was played: a clocked output keeps consuming
            # between two calls, so reading first could miss audio the clear let play.
            dropped = output.clear()
            position = self.playback.locate(output.played)
            output.mark()
            self.playback.reset()
            if self._out_resampler is not None:
                self._out_resampler.flush()
            if position is not None:
                item_id, played = position.item_id, position.played
            logger.debug(
                "barge-in: played %.3fs of %s, dropped %.3fs", played or 0, item_id, dropped
            )
        return await self._provider.interrupt(played, item_id=item_id, cancel=cancel)

    async def interrupt(self, played: float | None = None) -> Interrupted:
        """Stop the assistant now (the app's request); see :meth:`VoiceEngine.interrupt`."""
        return await self._barge_in(cancel=True, played=played)
