"""The provider extension point: abstract interface, registry, and a custom provider."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

from voxengine import (
    ConfigError,
    Event,
    InvalidState,
    ResponseDone,
    ResponseStatus,
    VoiceEngine,
    VoiceEngineConfig,
)
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.config import SessionConfig
from voxengine.events import Interrupted, SessionClosed, SessionReady
from voxengine.providers import (
    BaseProvider,
    Capability,
    MockConfig,
    MockProvider,
    OpenAIProvider,
    ProviderConfig,
    get_provider,
    list_providers,
    register_provider,
    unregister_provider,
)

SEED = {
    "connect",
    "disconnect",
    "send_audio",
    "send_text",
    "interrupt",
    "create_response",
    "update_session",
    "events",
}
#: What a provider implements: the friendly send methods are wrappers over send().
ABSTRACT = {"connect", "disconnect", "send", "interrupt", "events"}


def test_base_provider_declares_the_seed_interface() -> None:
    assert all(callable(getattr(BaseProvider, name)) for name in SEED)
    assert BaseProvider.__abstractmethods__ >= ABSTRACT
    assert not BaseProvider.__abstractmethods__ & {"send_audio", "send_text", "update_session"}
    with pytest.raises(TypeError):
        BaseProvider(ProviderConfig())  # type: ignore[abstract]


def test_builtin_registry() -> None:
    assert list_providers() == ["anthropic", "azure", "gemini", "mock", "openai", "pipeline"]
    assert get_provider("openai") is OpenAIProvider
    assert get_provider("mock") is MockProvider
    with pytest.raises(ConfigError, match="known providers"):
        get_provider("gemini-ultra")


def test_capabilities_are_declared_not_probed() -> None:
    for name in list_providers():
        caps = get_provider(name).capabilities
        assert caps, name
        assert all(isinstance(c, Capability) for c in caps)
    assert Capability.TEMPERATURE not in OpenAIProvider.capabilities


class EchoProvider(BaseProvider):
    """A minimal third-party provider: echoes text, no network."""

    name = "echo"
    capabilities = frozenset({Capability.TEXT_INPUT, Capability.TEXT_OUTPUT})

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._events: list[Event] = []
        self._open = False

    @property
    def input_format(self) -> AudioFormat:
        return PCM16_24K

    @property
    def output_format(self) -> AudioFormat:
        return PCM16_24K

    @property
    def is_connected(self) -> bool:
        return self._open

    async def connect(self, retry_count: int = 3) -> None:
        self._open = True
        self._events.append(SessionReady(session_id="echo", model="echo"))

    async def disconnect(self) -> None:
        self._open = False
        self._events.append(SessionClosed(code=1000))

    async def send_audio(self, audio: bytes, *, sample_rate: int | None = None) -> None:
        self.require(Capability.AUDIO_INPUT)

    async def commit_audio(self) -> None:
        self.require(Capability.AUDIO_INPUT)

    async def clear_audio(self) -> None:
        self.require(Capability.AUDIO_INPUT)

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        if not self._open:
            raise InvalidState("not connected")
        self._events.append(ResponseDone(response_id=text, status=ResponseStatus.COMPLETED))

    async def create_response(
        self, *, instructions: str | None = None, modalities: object = None
    ) -> None:
        pass

    async def cancel_response(self) -> None:
        pass

    async def interrupt(self, played: float | None = None) -> Interrupted:
        return Interrupted(item_id=None)

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        self.require(Capability.FUNCTION_CALLING)

    async def update_session(self, session: SessionConfig) -> None:
        pass

    async def events(self) -> AsyncIterator[Event]:
        while True:
            while self._events:
                event = self._events.pop(0)
                yield event
                if isinstance(event, SessionClosed):
                    return
            import asyncio

            await asyncio.sleep(0.001)


async def test_a_custom_provider_registers_and_runs_under_the_engine() -> None:
    register_provider("echo", EchoProvider)
    try:
        assert "echo" in list_providers()
        with pytest.raises(ConfigError, match="already registered"):
            register_provider("echo", MockProvider)
        engine = VoiceEngine(VoiceEngineConfig(provider="echo", mode="provider"))
        async with engine:
            await engine.send_text("abc")
            done = await engine.events.wait_for(ResponseDone, timeout=2)
            assert done.response_id == "abc"
            with pytest.raises(ConfigError, match="audio_input"):
                await engine.send_audio(b"\x00\x00")
    finally:
        unregister_provider("echo")
    assert "echo" not in list_providers()


def test_registering_an_incomplete_provider_fails() -> None:
    class Half(BaseProvider):
        name = "half"

    with pytest.raises(ConfigError, match="does not implement"):
        register_provider("half", Half)
    with pytest.raises(ConfigError):
        register_provider("x", dict)  # type: ignore[arg-type]


async def test_mock_provider_seed_usage() -> None:
    provider = MockProvider(MockConfig(api_key="test-key"))
    await provider.connect()
    await provider.send_text("Hello!")
    types = []
    async for event in provider.events():
        types.append(event.type)
        if isinstance(event, ResponseDone):
            break
    await provider.disconnect()
    assert types[0] == "session.ready"
    assert "response.audio.delta" in types
    assert types[-1] == "response.done"
    assert inspect.isasyncgenfunction(EchoProvider.events)
