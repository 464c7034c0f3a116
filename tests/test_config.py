from __future__ import annotations

import pytest

from voxengine import ConfigError, SessionConfig, ToolSpec, TurnDetectionConfig, VoiceEngineConfig
from voxengine.config import Modality, TurnDetection


def test_engine_config_validates_before_any_io() -> None:
    with pytest.raises(ConfigError, match="mode"):
        VoiceEngineConfig(mode="turbo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="known providers: azure, mock, openai"):
        VoiceEngineConfig(provider="nope")
    with pytest.raises(ConfigError, match="turn_detection"):
        VoiceEngineConfig(turn_detection="sometimes")
    with pytest.raises(ConfigError, match="output_modality"):
        VoiceEngineConfig(output_modality="video")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="retry_count"):
        VoiceEngineConfig(retry_count=-1)


def test_engine_config_maps_to_session_config() -> None:
    cfg = VoiceEngineConfig(
        voice="marin",
        instructions="Be brief",
        output_modality="text",
        turn_detection="manual",
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
