"""Base64 for audio in JSON frames: one place, with an optional SIMD accelerator.

Every base64 audio payload voxengine decodes or encodes goes through these functions
(the OpenAI and Gemini protocol layers, :func:`voxengine.audio.b64decode_pcm16` and
:func:`voxengine.audio.b64encode_pcm16`). When the optional ``pybase64`` package is
installed (``pip install 'voxengine[speedups]'``) they use it; a 20 ms frame of 24 kHz
PCM16 (1,280 base64 characters) then costs about a sixth of the instructions of
CPython's ``binascii`` to decode and a sixth to encode.

The contract does not depend on the accelerator: :func:`b64decode_strict` accepts and
refuses exactly what ``binascii.a2b_base64(data, strict_mode=True)`` does, with the same
result and the same exception. ``pybase64.b64decode(validate=True)`` refuses a few inputs
that strict ``binascii`` accepts (padding beyond a whole quantum, as in ``"AAAA="``) and
accepts nothing it refuses, so whatever ``pybase64`` refuses is handed to ``binascii``
for its verdict: the refused case costs one extra decode, the clean case none.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Final

__all__ = [
    "ACCELERATOR",
    "b64decode_quick",
    "b64decode_strict",
    "b64encode_bytes",
    "b64encode_str",
]

Buffer = str | bytes | bytearray | memoryview

_a2b: Final = binascii.a2b_base64
_b2a: Final = binascii.b2a_base64


# Plain functions, not functools.partial: a partial with keywords builds a dict per call
# (about 1,500 instructions, five times the cost of this frame).
def _binascii_decode(data: Buffer) -> bytes:
    return _a2b(data, strict_mode=True)


def _binascii_decode_quick(data: Buffer, _altchars: None, _validate: bool) -> bytes:
    return _a2b(data, strict_mode=True)


def _binascii_encode_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return _b2a(data, newline=False)


def _binascii_encode_str(data: bytes | bytearray | memoryview) -> str:
    return _b2a(data, newline=False).decode("ascii")


def _accelerated() -> tuple[
    str | None,
    Callable[[Buffer, None, bool], bytes],
    Callable[[Buffer], bytes],
    Callable[[bytes | bytearray | memoryview], bytes],
    Callable[[bytes | bytearray | memoryview], str],
]:
    """The implementations in use: pybase64's when it imports, else binascii's."""
    try:
        import pybase64
    except ImportError:
        return (
            None,
            _binascii_decode_quick,
            _binascii_decode,
            _binascii_encode_bytes,
            _binascii_encode_str,
        )
    decode = pybase64.b64decode

    def decode_strict(data: Buffer) -> bytes:
        try:
            return decode(data, validate=True)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            return _a2b(data, strict_mode=True)  # its verdict: raises, or the stricter refusal

    return (
        f"pybase64 {pybase64.get_version()}",
        decode,
        decode_strict,
        pybase64.b64encode,
        pybase64.b64encode_as_string,
    )


_IMPLEMENTATIONS: Final = _accelerated()

#: The accelerator in use (``"pybase64 <version>"``), or None (CPython's ``binascii``).
ACCELERATOR: Final[str | None] = _IMPLEMENTATIONS[0]

#: ``b64decode_quick(data, None, True) -> bytes``: the hot path's decode, for a caller
#: that hands whatever it refuses to :func:`b64decode_strict` for the verdict. With
#: ``pybase64``, its validating decode itself (the positional ``altchars=None,
#: validate=True``: no keyword dict built per call, no Python frame in between); else
#: strict ``binascii``. It accepts nothing :func:`b64decode_strict` refuses, with the
#: same result for what both accept; it may refuse a few inputs that one accepts
#: (padding beyond a whole quantum). Refusals raise ``ValueError`` or ``TypeError``.
b64decode_quick: Final = _IMPLEMENTATIONS[1]

#: ``b64decode_strict(data) -> bytes``: strict base64 decode of ``str`` (ASCII) or a
#: bytes-like object. Same verdict, result and exceptions as
#: ``binascii.a2b_base64(data, strict_mode=True)``: ``binascii.Error`` (a ``ValueError``)
#: for invalid base64 (a character outside the alphabet, whitespace, bad padding),
#: ``ValueError`` for a non-ASCII ``str``, ``TypeError`` for another type.
b64decode_strict: Final = _IMPLEMENTATIONS[2]

#: ``b64encode_bytes(data) -> bytes``: standard base64 of ``data``, no newline.
b64encode_bytes: Final = _IMPLEMENTATIONS[3]

#: ``b64encode_str(data) -> str``: the same as ``str``.
b64encode_str: Final = _IMPLEMENTATIONS[4]
