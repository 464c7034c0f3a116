from __future__ import annotations

import pytest

from voxengine import ConfigError, SessionConfig, ToolSpec, TurnDetectionConfig, VoiceEngineConfig
from voxengine.config import Modality, TurnDetection


def test_engine_config_validates_before_any_io() -> None:
    with pytest.raises(ConfigError, match="mode"):
        VoiceEngineConfig(mode="turbo")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match="known providers: anthropic, azure, gemini, mock, openai, pipeline"
    ):
        VoiceEngineConfig(provider="nope")
    with pytest.raises(ConfigError, match="vad_type"):
        VoiceEngineConfig(vad_type="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="vad_speech_end_ms"):
        VoiceEngineConfig(vad_speech_end_ms=-5)
    with pytest.raises(ConfigError, match="vad_threshold"):
        VoiceEngineConfig(vad_threshold=2)
    with pytest.raises(ConfigError, match="input_file"):
        VoiceEngineConfig(audio_backend="file")
    with pytest.raises(ConfigError, match="audio_backend"):
        VoiceEngineConfig(audio_backend="alsa")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="output_modality"):
        VoiceEngineConfig(output_modality="video")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="retry_count"):
        VoiceEngineConfig(retry_count=-1)


def test_engine_config_maps_to_session_config() -> None:
    cfg = VoiceEngineConfig(
        voice="marin",
        instructions="Be brief",
        output_modality="text",
        vad_enabled=False,
        input_transcription_model="whisper-1",
        max_output_tokens=50,
    )
    session = cfg.session_config()
    assert session.voice == "marin"
    assert session.modalities == (Modality.TEXT,)
    assert session.turn_detection is not None
    assert session.turn_detection.mode is TurnDetection.MANUAL
    assert session.input_transcription_model == "whisper-1"
    assert session.max_output_tokens == 50
    server = VoiceEngineConfig(vad_threshold=0.7, vad_speech_end_ms=800, barge_in=False)
    td = server.session_config().turn_detection
    assert td is not None
    assert (td.mode, td.threshold, td.silence_duration, td.interrupt_response) == (
        TurnDetection.SERVER_VAD,
        0.7,
        0.8,
        False,
    )
    client = VoiceEngineConfig(vad_type="client").session_config().turn_detection
    assert client is not None
    assert client.mode is TurnDetection.LOCAL_VAD
    semantic = VoiceEngineConfig(vad_type="semantic", vad_eagerness="high").turn_detection()
    assert (semantic.mode, semantic.eagerness) == (TurnDetection.SEMANTIC_VAD, "high")


def test_presets() -> None:
    cfg = VoiceEngineConfig.from_preset("customer_service", api_key="k", voice="cedar")
    assert cfg.voice == "cedar"
    assert cfg.mode == "big"
    assert cfg.input_transcription_model == "gpt-4o-mini-transcribe"
    assert "customer service" in (cfg.instructions or "")
    transcription = VoiceEngineConfig.from_preset("transcription")
    assert transcription.auto_respond is False
    assert transcription.session_config().modalities == (Modality.TEXT,)
    with pytest.raises(ConfigError, match="known presets"):
        VoiceEngineConfig.from_preset("pirate")
    with pytest.raises(ConfigError, match="unknown VoiceEngineConfig fields"):
        VoiceEngineConfig.from_preset("tutor", colour="blue")


def test_api_key_is_not_in_repr() -> None:
    cfg = VoiceEngineConfig(api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(cfg)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 1.5},
        {"silence_duration": -1},
        {"prefix_padding": float("nan")},
        {"eagerness": "eager"},
        {"idle_timeout": 0},
    ],
)
def test_turn_detection_ranges(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TurnDetectionConfig(**kwargs)  # type: ignore[arg-type]


def test_session_and_tool_validation() -> None:
    with pytest.raises(ConfigError):
        ToolSpec(name="bad name")
    with pytest.raises(ConfigError):
        ToolSpec(name="f", parameters={"type": "array"})
    with pytest.raises(ConfigError):
        ToolSpec(name="f", parameters={"type": "object", "default": object()})
    with pytest.raises(ConfigError, match="duplicate"):
        SessionConfig(tools=(ToolSpec(name="f"), ToolSpec(name="f")))
    with pytest.raises(ConfigError, match="tool_choice"):
        SessionConfig(tool_choice="g", tools=(ToolSpec(name="f"),))
    assert SessionConfig(tool_choice="f", tools=(ToolSpec(name="f"),)).tool_choice == "f"
    with pytest.raises(ConfigError):
        SessionConfig(modalities=())
    with pytest.raises(ConfigError):
        SessionConfig(max_output_tokens=0)
