"""Failures a fake server can be told to produce."""

from __future__ import annotations

__all__ = ["FakeServerError"]


class FakeServerError(Exception):
    """Raised by a fake responder to make the fake server fail the response.

    The server reports it the way the real service does: an ``error`` event with
    ``code`` and ``message`` (type ``server_error``) and a ``response.done`` with
    status ``failed``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
