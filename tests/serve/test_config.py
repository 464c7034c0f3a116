"""Settings fail before the server binds a port; limits count exactly."""

from __future__ import annotations

import pytest

from voxengine.errors import ConfigError
from voxengine.serve import CallRefused, CloseReason, Limits, ServeConfig
from voxengine.serve.factory import CallContext, default_session_factory, engine_config
from voxengine.serve.limits import CallLimiter, RateWindow


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"provider": "opneai"}, "did you mean 'openai'"),
        ({"port": 70000}, "port must be 0..65535"),
        ({"secret": "short"}, "at least 16 characters"),
        ({"token_ttl": 0}, "token_ttl must be positive"),
        ({"drain_timeout": -1}, "drain_timeout must be non-negative"),
        ({"engine": {"provider": "openai"}}, "as ServeConfig fields"),
        ({"limits": {"max_calls": 3}}, "limits must be"),
    ],
)
def test_invalid_settings_fail_at_construction(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServeConfig(**settings)  # type: ignore[arg-type]


def test_the_secret_is_not_in_the_repr() -> None:
    config = ServeConfig(secret="a-very-secret-deployment-value")
    assert "a-very-secret" not in repr(config)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_calls": 0}, "max_calls must be a positive integer"),
        ({"max_message_bytes": 1.5}, "max_message_bytes must be a positive integer"),
        ({"max_call_seconds": float("inf")}, "max_call_seconds must be positive seconds"),
        ({"hello_timeout": 0}, "hello_timeout must be positive seconds"),
    ],
)
def test_invalid_limits(limits: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Limits(**limits)  # type: ignore[arg-type]


def test_call_limiter_counts_per_caller_and_in_total() -> None:
    limiter = CallLimiter(Limits(max_calls=3, max_calls_per_caller=2))
    limiter.acquire("a")
    limiter.acquire("a")
    with pytest.raises(CallRefused) as refused:
        limiter.acquire("a")
    assert refused.value.reason is CloseReason.TOO_MANY_CALLS
    limiter.acquire("b")
    with pytest.raises(CallRefused) as busy:
        limiter.acquire("c")
    assert busy.value.reason is CloseReason.BUSY
    limiter.release("a")
    limiter.acquire("c")
    assert limiter.active == 3


def test_rate_window_refills_with_time() -> None:
    now = [0.0]
    window = RateWindow(3, 1.0, clock=lambda: now[0])
    assert [window.allow() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.34  # one more event's worth
    assert [window.allow(), window.allow()] == [True, False]
    now[0] = 10.0  # never more than the bucket
    assert [window.allow() for _ in range(4)] == [True, True, True, False]


def test_engine_config_applies_changes_and_refuses_devices() -> None:
    config = ServeConfig(provider="mock", instructions="Be brief.", engine={"vad_type": "client"})
    engine = engine_config(config, temperature=0.7)
    assert (engine.provider, engine.instructions, engine.vad_type) == (
        "mock",
        "Be brief.",
        "client",
    )
    assert engine.temperature == 0.7
    assert engine.audio_backend is None
    with pytest.raises(ConfigError, match="no audio_backend"):
        engine_config(config, audio_backend="null")


def test_default_factory_builds_the_offline_stack_as_a_pipeline() -> None:
    context = CallContext(call_id="c-1", endpoint="test", caller="me", config=ServeConfig())
    engine = default_session_factory(context)
    assert engine.provider.name == "pipeline"
    assert not engine.is_connected


def test_close_reasons_have_unique_codes_and_names() -> None:
    codes = [reason.code for reason in CloseReason]
    assert len(set(codes)) == len(codes)
    assert all(1000 <= code < 5000 for code in codes)
    assert CloseReason.TOO_BIG.wire_name == "too_big"
