"""The input ledger: pure bookkeeping of what the application sent until the service
has it (see voxengine.session.ledger)."""

from __future__ import annotations

from voxengine.audio.format import PCM16_24K
from voxengine.commands import CommitAudio, CreateResponse, SendAudio, SendText, SendToolResult
from voxengine.events import ConversationItem, ItemAdded, ItemKind, Role, UndeliveredInput
from voxengine.session.ledger import InputLedger

SECOND = b"\x00\x00" * PCM16_24K.sample_rate


def ledger(acknowledged: bool = True, buffer: float = 2.0) -> InputLedger:
    return InputLedger(PCM16_24K, buffer, acknowledged)


def added(kind: ItemKind, **fields: object) -> ItemAdded:
    return ItemAdded(item=ConversationItem(item_id="item_1", kind=kind, **fields))  # type: ignore[arg-type]


def test_texts_and_tool_outputs_stay_until_the_service_confirms_them() -> None:
    led = ledger()
    hello, result = SendText(text="hello"), SendToolResult(call_id="c1", output="{}")
    led.delivered(hello)
    led.delivered(result)
    led.confirm(added(ItemKind.MESSAGE, role=Role.ASSISTANT, text="hello"))  # not ours
    led.confirm(added(ItemKind.MESSAGE, role=Role.USER, text="other"))
    assert led.unconfirmed == [hello, result]
    led.confirm(added(ItemKind.FUNCTION_CALL_OUTPUT, call_id="c1"))
    led.confirm(added(ItemKind.MESSAGE, role=Role.USER, text="hello"))
    assert led.unconfirmed == []


def test_a_named_item_is_confirmed_by_its_id() -> None:
    led = ledger()
    led.delivered(SendText(text="x", item_id="mine"))
    led.confirm(added(ItemKind.MESSAGE, role=Role.USER, text="x"))  # item_1, not "mine"
    assert len(led.unconfirmed) == 1


def test_without_confirmations_nothing_is_held() -> None:
    led = ledger(acknowledged=False)
    led.delivered(SendText(text="hello"))
    assert led.unconfirmed == []


def test_a_drop_requeues_unconfirmed_input_first_in_order() -> None:
    led = ledger()
    first, second = SendText(text="1"), SendText(text="2")
    led.delivered(first)
    led.delivered(second)
    later = CreateResponse()
    assert led.queue(later) == 0.0
    assert led.requeue_unconfirmed() == 2
    assert [led.take(), led.take(), led.take(), led.take()] == [first, second, later, None]


def test_queued_audio_is_bounded_oldest_first() -> None:
    led = ledger(buffer=2.0)
    assert led.queue(SendAudio(audio=SECOND)) == 0.0
    text = SendText(text="kept")
    led.queue(text)
    assert led.queue(SendAudio(audio=SECOND)) == 0.0
    assert led.queue(SendAudio(audio=SECOND)) == 1.0  # the oldest second goes
    assert led.queued[0] is text


def test_put_back_restores_order_and_accounting() -> None:
    led = ledger()
    audio, text = SendAudio(audio=SECOND), SendText(text="t")
    led.queue(audio)
    led.queue(text)
    taken = [led.take(), led.take()]
    led.put_back([c for c in taken if c is not None])
    assert list(led.queued) == [audio, text]
    report = led.undelivered("gone", closing=True)
    assert report == UndeliveredInput(texts=("t",), audio_seconds=1.0, reason="gone")


def test_the_turn_in_progress_is_retained_until_committed() -> None:
    led = ledger()
    led.delivered(SendAudio(audio=SECOND))
    assert led.retained_audio() == SECOND
    led.delivered(CommitAudio())
    assert led.retained_audio() == b""


def test_undelivered_report_on_failure_includes_the_turn_and_unconfirmed_input() -> None:
    led = ledger()
    led.delivered(SendAudio(audio=SECOND))
    led.delivered(SendText(text="sent"))
    led.queue(SendToolResult(call_id="c9", output="1"))
    led.queue(CreateResponse())
    report = led.undelivered("gave up", closing=False)
    assert report == UndeliveredInput(
        texts=("sent",), tool_outputs=("c9",), audio_seconds=1.0, other_commands=1, reason="gave up"
    )
    assert led.undelivered("again", closing=False) is None  # emptied


def test_on_close_only_the_queue_is_reported() -> None:
    led = ledger()
    led.delivered(SendText(text="in flight"))
    led.delivered(SendAudio(audio=SECOND))
    assert led.undelivered("closed", closing=True) is None


def test_refused_commands_are_reported_once() -> None:
    led = ledger()
    led.refuse(SendToolResult(call_id="c1", output="x"))
    led.forget_refusals()
    assert led.refused_report() is None
    led.refuse(SendToolResult(call_id="c2", output="x"))
    report = led.refused_report()
    assert report is not None
    assert report.tool_outputs == ("c2",)
    assert led.refused_report() is None


def _strict_retained(chunks: list[bytes], limit: int) -> list[bytes]:
    """What trimming after every chunk keeps: the longest run of the latest chunks
    whose bytes fit ``limit`` (a chunk over the limit by itself leaves nothing)."""
    kept: list[bytes] = []
    for chunk in chunks:
        kept.append(chunk)
        while sum(map(len, kept)) > limit and kept:
            kept.pop(0)
    return kept


def test_retained_audio_is_the_latest_that_fits_the_bound_whenever_it_is_read() -> None:
    # chunks of uneven sizes (one over the whole bound), read after every chunk and
    # after runs of them: always exactly what trimming after every chunk would keep
    sizes = [960, 480, 4800, 2, 96_000, 960, 1920, 7_200, 960, 100_000, 482] * 9
    chunks = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    limit = int(1.5 * PCM16_24K.bytes_per_second)
    led = ledger(buffer=1.5)
    for count, chunk in enumerate(chunks, 1):
        led.delivered_audio(chunk)
        if count % 7 == 0 or count > len(chunks) - 3:
            expected = b"".join(_strict_retained(chunks[:count], limit))
            assert led.retained_audio() == expected
    report = led.undelivered("gave up", closing=False)
    assert report is not None
    expected_bytes = len(b"".join(_strict_retained(chunks, limit)))
    assert report.audio_seconds == PCM16_24K.duration(expected_bytes)


def test_no_retained_audio_with_a_zero_bound() -> None:
    led = ledger(buffer=0.0)
    for _ in range(10):
        led.delivered_audio(SECOND[:960])
    assert led.retained_audio() == b""
    assert led.undelivered("gave up", closing=False) is None
