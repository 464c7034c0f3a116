"""The engine's lanes (voxengine.strategies) on their own: a scripted provider, a real bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.bus import EventBus
from voxengine.config import SessionConfig
from voxengine.events import (
    AudioDelta,
    ConversationItem,
    Event,
    Interrupted,
    ItemDone,
    ItemKind,
    ResponseDone,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    Usage,
)
from voxengine.providers.base import BaseProvider, ProviderConfig
from voxengine.session.history import ConversationHistory
from voxengine.session.queue import Consumer
from voxengine.strategies import (
    STRATEGIES,
    BigLaneStrategy,
    FastLaneStrategy,
    ProviderStrategy,
)


def _reply(item_id: str, text: str) -> ItemDone:
    item = ConversationItem(item_id=item_id, kind=ItemKind.MESSAGE, role=Role.ASSISTANT, text=text)
    return ItemDone(item=item)


SCRIPT: list[Event] = [
    SessionReady(session_id="s1", model="m"),
    AudioDelta(response_id="r1", item_id="a1", audio=b"\x01\x00" * 4),
    _reply("a1", "hello"),
    SessionClosed(code=1000),
]


class Scripted(BaseProvider):
    """Yields a fixed list of events; pushes them when ``push`` is set."""

    name = "scripted"

    def __init__(
        self, script: list[Event], *, push: bool = False, keeps: ConversationHistory | None = None
    ) -> None:
        super().__init__(ProviderConfig())
        self.script = script
        self.push = push
        self.keeps = keeps

    @property
    def input_format(self) -> AudioFormat:
        return PCM16_24K

    @property
    def output_format(self) -> AudioFormat:
        return PCM16_24K

    @property
    def is_connected(self) -> bool:
        return True

    @property
    def kept_history(self) -> ConversationHistory | None:
        return self.keeps

    async def connect(self, retry_count: int = 3) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def send_audio(self, audio: bytes, *, sample_rate: int | None = None) -> None:
        pass

    async def commit_audio(self) -> None:
        pass

    async def clear_audio(self) -> None:
        pass

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        pass

    async def create_response(
        self, *, instructions: str | None = None, modalities: object = None
    ) -> None:
        pass

    async def cancel_response(self) -> None:
        pass

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        return Interrupted(item_id=item_id)

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        pass

    async def update_session(self, session: SessionConfig) -> None:
        pass

    async def events(self) -> AsyncIterator[Event]:
        for event in self.script:
            yield event

    def deliver_events(self, consumer: Consumer) -> bool:
        if not self.push:
            return False

        async def feed() -> None:
            for event in [*self.script, None]:
                pending = consumer(event)
                if pending is not None:
                    await pending

        self._feeder = asyncio.get_running_loop().create_task(feed())
        return True


def _seen(bus: EventBus) -> list[str]:
    seen: list[str] = []
    bus.on((SessionReady, AudioDelta, ItemDone, SessionClosed), lambda e: seen.append(e.type))
    return seen


@pytest.mark.parametrize("push", [False, True], ids=["pumped", "pushed"])
async def test_fast_lane_delivers_every_event_in_order_and_keeps_no_history(push: bool) -> None:
    bus = EventBus()
    seen = _seen(bus)
    lane = FastLaneStrategy(Scripted(SCRIPT, push=push), bus)
    assert not lane.observers()
    lane.start()
    await asyncio.wait_for(lane.wait_closed(), 10)
    assert seen == [e.type for e in SCRIPT]
    assert lane.history.entries == []


@pytest.mark.parametrize("push", [False, True], ids=["pumped", "pushed"])
async def test_provider_lane_builds_the_history_when_the_provider_keeps_none(push: bool) -> None:
    bus = EventBus()
    seen = _seen(bus)
    lane = ProviderStrategy(Scripted(SCRIPT, push=push), bus)
    lane.start()
    await asyncio.wait_for(lane.wait_closed(), 10)
    assert seen == [e.type for e in SCRIPT]
    assert [(h.role, h.text) for h in lane.history.entries] == [(Role.ASSISTANT, "hello")]


async def test_provider_lane_shows_the_providers_own_history_without_copying_it() -> None:
    kept = ConversationHistory()
    kept.observe(_reply("earlier", "from before a reconnect"))
    lane = ProviderStrategy(Scripted(SCRIPT, keeps=kept), EventBus())
    assert lane.history is kept
    lane.start()
    await asyncio.wait_for(lane.wait_closed(), 10)
    # The provider feeds its history itself; the lane added nothing to it.
    assert [h.text for h in lane.history.entries] == ["from before a reconnect"]


async def test_fast_lane_shows_no_history_even_when_the_provider_keeps_one() -> None:
    kept = ConversationHistory()
    kept.observe(_reply("x", "kept"))
    lane = FastLaneStrategy(Scripted(SCRIPT, keeps=kept), EventBus())
    assert lane.history is not kept
    assert lane.history.entries == []


async def test_on_closed_can_withhold_the_close_from_the_application() -> None:
    bus = EventBus()
    seen = _seen(bus)
    closes: list[SessionClosed] = []

    def take_over(event: SessionClosed) -> bool:
        closes.append(event)
        return True

    lane = ProviderStrategy(Scripted(SCRIPT), bus, on_closed=take_over)
    lane.start()
    await asyncio.wait_for(lane.wait_closed(), 10)
    assert [c.code for c in closes] == [1000]
    assert seen == [e.type for e in SCRIPT[:-1]]


async def test_a_failing_observer_does_not_stop_delivery() -> None:
    bus = EventBus()
    seen = _seen(bus)

    def broken(event: Event) -> None:
        raise RuntimeError("bookkeeping bug")

    lane = FastLaneStrategy(Scripted(SCRIPT), bus, extra_observers=[broken])
    lane.start()
    await asyncio.wait_for(lane.wait_closed(), 10)
    assert seen == [e.type for e in SCRIPT]


async def test_aclose_cancels_a_hanging_handler_and_names_it() -> None:
    bus = EventBus()
    started = asyncio.Event()

    async def hang(event: Event) -> None:
        started.set()
        await asyncio.Event().wait()

    bus.on(ItemDone, hang)
    lane = ProviderStrategy(Scripted(SCRIPT), bus)
    lane.start()
    await asyncio.wait_for(started.wait(), 10)
    assert await lane.aclose(timeout=0.05) == (ItemDone.type,)


def test_big_is_a_configuration_of_the_provider_lane() -> None:
    assert BigLaneStrategy is ProviderStrategy
    assert STRATEGIES["big"] is STRATEGIES["provider"] is ProviderStrategy
    assert STRATEGIES["fast"] is FastLaneStrategy
    provider = Scripted(SCRIPT)
    big = STRATEGIES["big"](provider, EventBus(), mode="big")
    assert big.mode == "big"
    assert ProviderStrategy(provider, EventBus()).mode == "provider"
    assert FastLaneStrategy.mode == "fast"


@pytest.mark.parametrize("push", [False, True], ids=["pumped", "pushed"])
async def test_async_handlers_hold_later_events_back_in_both_delivery_paths(push: bool) -> None:
    bus = EventBus()
    order: list[str] = []
    release = asyncio.Event()

    async def slow(event: Event) -> None:
        order.append(f"start {event.type}")
        await release.wait()
        order.append(f"end {event.type}")

    bus.on(AudioDelta, slow)
    bus.on((ItemDone, SessionClosed), lambda e: order.append(e.type))
    lane = FastLaneStrategy(Scripted(SCRIPT, push=push), bus)
    lane.start()
    for _ in range(100):
        if order:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # time for a later event to overtake, were that possible
    assert order == [f"start {AudioDelta.type}"]
    release.set()
    await asyncio.wait_for(lane.wait_closed(), 10)
    assert order == [
        f"start {AudioDelta.type}",
        f"end {AudioDelta.type}",
        ItemDone.type,
        SessionClosed.type,
    ]
    assert await lane.aclose(timeout=0.05) == ()  # nothing left running


async def test_the_provider_lane_keeps_metrics_and_the_fast_lane_none() -> None:
    script: list[Event] = [
        *SCRIPT[:-1],
        ResponseDone(
            response_id="r1", status=ResponseStatus.COMPLETED, usage=Usage(output_tokens=5)
        ),
        SCRIPT[-1],
    ]
    lanes = [
        ProviderStrategy(Scripted(script), EventBus()),
        FastLaneStrategy(Scripted(script), EventBus()),
    ]
    for lane in lanes:
        lane.start()
        await asyncio.wait_for(lane.wait_closed(), 10)
    provider_lane, fast_lane = (lane.metrics.snapshot() for lane in lanes)
    assert (provider_lane.responses, provider_lane.audio_chunks) == (1, 1)
    assert provider_lane.usage.output_tokens == 5
    assert lanes[0].metrics.model == "m"
    assert (fast_lane.responses, fast_lane.audio_chunks) == (0, 0)
