"""Settings of a cascaded pipeline: :class:`PipelineConfig` and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxengine.audio.vad import VADConfig
from voxengine.config import SessionConfig, TurnDetection, TurnDetectionConfig
from voxengine.errors import ConfigError
from voxengine.providers.base import ProviderConfig

from ._http import OPENAI_BASE_URL, HttpSettings
from ._packaged import local_extra_installed
from ._turn import EARLY_TRANSCRIPTION_AFTER
from .llm import LlamaCppLLM, LocalResponder, OpenAIChatLLM
from .sentence import FIRST_CLAUSE_CHARS
from .stages import LanguageModel, SpeechToText, TextToSpeech
from .stt import PocketSphinxSTT, WhisperSTT
from .tts import EspeakTTS, PiperTTS
from .vad import VAD_ENGINES, VADEngine

__all__ = ["PipelineConfig", "check_session", "merge_session"]


def check_session(session: SessionConfig) -> None:
    """Reject session settings the pipeline cannot honour.

    Raises:
        ConfigError: SEMANTIC_VAD, or ``turn_detection.idle_timeout``.
    """
    td = session.turn_detection
    if td is None:
        return
    if td.mode is TurnDetection.SEMANTIC_VAD:
        raise ConfigError(
            "the pipeline has no semantic VAD; use TurnDetection.SERVER_VAD (energy VAD in "
            "the pipeline) or LOCAL_VAD"
        )
    if td.idle_timeout is not None:
        raise ConfigError("the pipeline does not support turn_detection.idle_timeout")


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineConfig(ProviderConfig):
    """Settings of a cascaded pipeline.

    Attributes:
        stt: speech-to-text stage; ``None``: :class:`~.stt.whisper.WhisperSTT` when the
            ``local`` extra is installed, else the fallback :class:`~.stt.PocketSphinxSTT`.
        llm: language model; ``None``: an :class:`~.llm.OpenAIChatLLM` when ``model``
            or ``base_url`` is set (``base_url`` default: OpenAI; ``api_key`` its key),
            else the local :class:`~.llm.llama.LlamaCppLLM` (SmolLM2) when the ``local``
            extra is installed, else the fallback :class:`~.llm.LocalResponder` (fixed
            rules, not an AI model).
        tts: text-to-speech stage; ``None``: :class:`~.tts.piper.PiperTTS` when the
            ``local`` extra is installed, else the fallback :class:`~.tts.EspeakTTS`.
        vad_engine: ``"energy"`` (:class:`~voxengine.audio.vad.EnergyVAD`), ``"webrtc"``
            or ``"silero"`` (:class:`~.vad.SileroVAD`, ``local`` extra) for SERVER_VAD
            turn detection; ``None``: Silero when the ``local`` extra is installed,
            else energy.
        speech_start: seconds of voice that start a turn (SERVER_VAD).
        speculate: with SERVER_VAD and ``create_response``, start the reply during the
            end-of-turn silence, as soon as the early transcript is in, its events held
            back until the turn really ends (and dropped, unheard, if the user goes on:
            :mod:`.speculation`). ``None``: on when the language model and the
            synthesiser run in this process (the local models, the fallback), where a
            dropped reply costs only CPU time; off for API stages, where it would cost
            a request.
        early_transcription: seconds of end-of-turn silence after which the turn is
            transcribed (and, with ``speculate``, answered) early, while the VAD waits
            for the rest of ``silence_duration`` (SERVER_VAD). Earlier: the reply is
            ready sooner, but more pauses inside a sentence start work that is then
            dropped (CPU time only: nothing is delivered before the turn ends). At or
            above ``silence_duration``: no early transcription.
        first_clause: the first piece of a reply goes to the synthesiser at the first
            clause break (comma, colon, dash) once it holds this many characters,
            instead of at the end of the first sentence; later pieces are whole
            sentences. Shorter: the first audio comes sooner, but the next piece has
            less time to be ready before the first one has played. 0: whole
            sentences only.

    ``session.instructions`` is the system prompt; ``session.turn_detection`` sets the
    VAD threshold (``threshold``), pre-roll (``prefix_padding``), end-of-turn silence
    (``silence_duration``), auto-response (``create_response``) and barge-in
    (``interrupt_response``). Replies run one after another, so each request gets its
    own (``session.reply_policy`` QUEUE); INTERRUPT cancels the running reply first.
    ``session.voice`` and ``input_transcription_model`` are
    properties of the TTS and STT stages and are ignored here, and so are ``reconnect``
    and ``watchdog`` (a pipeline holds no long-lived connection). ``event_queue_size``
    bounds :meth:`PipelineProvider.events` as for every provider; ``connect_timeout``
    and ``ssl_context`` reach the language model this config builds from ``model`` /
    ``base_url`` (:meth:`http_settings`); stages passed in keep their own settings.

    Raises:
        ConfigError: SEMANTIC_VAD or ``idle_timeout`` requested; invalid VAD settings.
    """

    stt: SpeechToText | None = field(default=None, compare=False)
    llm: LanguageModel | None = field(default=None, compare=False)
    tts: TextToSpeech | None = field(default=None, compare=False)
    vad_engine: VADEngine | None = None
    speech_start: float = 0.2
    speculate: bool | None = None
    early_transcription: float = EARLY_TRANSCRIPTION_AFTER
    first_clause: int = FIRST_CLAUSE_CHARS

    def __post_init__(self) -> None:
        super(PipelineConfig, self).__post_init__()
        check_session(self.session)
        if self.vad_engine is not None and self.vad_engine not in VAD_ENGINES:
            raise ConfigError(f"vad_engine must be one of {', '.join(VAD_ENGINES)}")
        if not 0 <= self.speech_start <= 5:
            raise ConfigError("speech_start must be within 0..5 seconds")
        if not 0 <= self.early_transcription <= 5:
            raise ConfigError("early_transcription must be within 0..5 seconds")
        if self.first_clause < 0:
            raise ConfigError("first_clause must be >= 0 characters")

    def make_stt(self) -> SpeechToText:
        """The speech-to-text stage to use (see the ``stt`` attribute)."""
        if self.stt is not None:
            return self.stt
        return WhisperSTT() if local_extra_installed() else PocketSphinxSTT()

    def make_llm(self) -> LanguageModel:
        """The language model to use (see the ``llm`` attribute).

        Raises:
            ConfigError: ``base_url`` without ``model``, or no key for the OpenAI API.
        """
        if self.llm is not None:
            return self.llm
        if self.base_url is not None and not self.model:
            raise ConfigError("a pipeline with base_url needs model= (the LLM served there)")
        if self.model or self.base_url:
            return OpenAIChatLLM(
                model=self.model or "",
                base_url=self.base_url or OPENAI_BASE_URL,
                api_key=self.api_key,
                http=self.http_settings(),
            )
        return LlamaCppLLM() if local_extra_installed() else LocalResponder()

    def http_settings(self) -> HttpSettings:
        """The HTTP settings of a stage this config builds: ``connect_timeout`` bounds
        opening its connection and ``ssl_context`` verifies an ``https://`` server."""
        return HttpSettings(connect=self.connect_timeout, ssl_context=self.ssl_context)

    def make_tts(self) -> TextToSpeech:
        """The text-to-speech stage to use (see the ``tts`` attribute)."""
        if self.tts is not None:
            return self.tts
        return PiperTTS() if local_extra_installed() else EspeakTTS()

    def speculates(self, llm: LanguageModel, tts: TextToSpeech) -> bool:
        """Whether replies start during the end-of-turn silence (see ``speculate``)
        with these stages."""
        if self.speculate is not None:
            return self.speculate
        return isinstance(llm, LlamaCppLLM | LocalResponder) and isinstance(
            tts, PiperTTS | EspeakTTS
        )

    @property
    def vad_engine_in_use(self) -> VADEngine:
        """The SERVER_VAD detector: ``vad_engine``, or the default it stands for."""
        if self.vad_engine is not None:
            return self.vad_engine
        return "silero" if local_extra_installed() else "energy"

    def vad_config(self, td: TurnDetectionConfig) -> VADConfig:
        """The VAD settings for turn detection ``td``."""
        return VADConfig(
            threshold=td.threshold,
            speech_start=self.speech_start,
            speech_end=max(td.silence_duration, 0.02),
            pre_roll=td.prefix_padding,
        )


def merge_session(old: SessionConfig, new: SessionConfig) -> SessionConfig:
    """``old`` with the non-``None`` fields of ``new`` applied."""
    values = {name: getattr(new, name) for name in SessionConfig.__dataclass_fields__}
    for name, value in values.items():
        if value is None:
            values[name] = getattr(old, name)
    return SessionConfig(**values)
