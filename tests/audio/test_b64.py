"""voxengine.audio.b64: strict base64 with the optional pybase64 accelerator.

The accelerator must not change the contract: every input gets the result, or the
exception, that CPython's ``binascii.a2b_base64(strict_mode=True)`` gives it, and
malformed audio gives the same typed errors with and without ``pybase64``.
"""

from __future__ import annotations

import binascii
import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxengine.audio import b64

# valid, and every way of being invalid strict binascii tells apart
CORPUS: list[object] = [
    "",
    "AAAA",
    "AA==",
    "AAA=",
    "AB==",  # non-zero unused bits: accepted by both
    "AA+/",
    "AAAA=",  # padding after a whole quantum: strict binascii accepts, pybase64 refuses
    "AAAA====",
    "AAAB=",
    "AA=",
    "AA",
    "A",
    "A===",
    "=AAA",
    "AA=A",
    "AA==AA==",
    "AAAA\n",
    " AAAA",
    "AA AA",
    "AA\x00A",
    "AA-_",  # the URL-safe alphabet is not this one
    "AAÀA",  # non-ASCII str: ValueError
    b"AAAA",
    bytearray(b"AA=="),
    memoryview(b"AAA="),
    b"AA\xffA",
    None,
    5,
]


def _outcome(decode: object, data: object) -> tuple[str, object]:
    try:
        return ("ok", decode(data))  # type: ignore[operator]
    except (ValueError, TypeError) as exc:
        return (type(exc).__name__, str(exc))


def _strict(data: object) -> bytes:
    return binascii.a2b_base64(data, strict_mode=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", CORPUS, ids=repr)
def test_decode_gives_what_strict_binascii_gives(data: object) -> None:
    assert _outcome(b64.b64decode_strict, data) == _outcome(_strict, data)


@given(st.text(alphabet="ABCabc019+/= \n-_é\x00", max_size=14))
def test_decode_agrees_with_strict_binascii_on_any_text(text: str) -> None:
    assert _outcome(b64.b64decode_strict, text) == _outcome(_strict, text)


@given(st.binary(max_size=200))
def test_encode_round_trips_and_matches_binascii(data: bytes) -> None:
    expected = binascii.b2a_base64(data, newline=False)
    assert b64.b64encode_bytes(data) == expected
    assert b64.b64encode_str(data) == expected.decode("ascii")
    assert b64.b64decode_strict(b64.b64encode_str(data)) == data


# Run in a fresh interpreter, with pybase64 importable or blocked: the public decode
# paths (b64decode_pcm16, the OpenAI and Gemini protocol layers) on malformed audio.
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    if sys.argv[1] == "blocked":
        sys.modules["pybase64"] = None  # import pybase64 raises ImportError
    from voxengine.audio import b64, b64decode_pcm16
    from voxengine.errors import AudioError
    from voxengine.protocols.openai._decode import decode_audio_delta
    out = {"accelerator": b64.ACCELERATOR, "pcm16": [], "openai": []}
    for text in ["***", "AAAA=", "AAA", "AAAA\\n", "YWJj", "AAAAAA=="]:
        try:
            out["pcm16"].append(b64decode_pcm16(text).hex())
        except AudioError as exc:
            out["pcm16"].append("AudioError: " + str(exc))
        event = decode_audio_delta(
            {"type": "response.output_audio.delta", "delta": text, "item_id": "i"}
        )
        out["openai"].append(getattr(event, "code", None) or event.audio.hex())
    print(json.dumps(out))
    """
)


def _run(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_malformed_audio_gives_the_same_typed_errors_with_and_without_pybase64() -> None:
    pytest.importorskip("pybase64", reason="the accelerated path needs pybase64 (dev extra)")
    accelerated, plain = _run("importable"), _run("blocked")
    assert str(accelerated["accelerator"]).startswith("pybase64 ")
    assert plain["accelerator"] is None
    expected_pcm16 = [
        "AudioError: audio payload is not valid base64",
        "AudioError: decoded audio has an odd byte count (3)",  # "AAAA=": strict accepts
        "AudioError: audio payload is not valid base64",
        "AudioError: audio payload is not valid base64",
        "AudioError: decoded audio has an odd byte count (3)",
        "00000000",
    ]
    assert accelerated["pcm16"] == plain["pcm16"] == expected_pcm16
    expected_openai = ["malformed_audio"] * 5 + ["00000000"]
    assert accelerated["openai"] == plain["openai"] == expected_openai
