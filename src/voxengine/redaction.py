"""The one list of secret names, and the functions that hide their values.

Everything that shows a URL, a header set or a text that may quote them — the
``ConnectRequest`` repr, exception messages of the transport and the HTTP stages,
``websockets``' handshake logs, recordings — redacts through this module, so there
is a single answer to "which header / query parameter holds a key".

Two complementary ways are used:

* **By name**: values of :data:`SECRET_HEADERS` and :data:`SECRET_QUERY_PARAMS`
  are replaced by ``***`` wherever they appear as ``name: value``, ``name=value``,
  ``"name": "value"`` (JSON, a Python dict repr) or ``?name=value`` (a URL); the
  browser-style subprotocol ``openai-insecure-api-key.<key>`` too.
* **By value**: the actual secrets of a request (:func:`secrets_in`) are replaced
  wherever they appear, e.g. a server or proxy that echoes the request in a
  refusal body in a shape no pattern foresees.

Pure functions with no I/O; importable from every layer.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "redact",
    "redact_headers",
    "redact_url",
    "remember_secrets",
    "secrets_in",
]

#: What a secret is replaced with.
MASK = "***"

#: Headers (lower-case) whose value is, or contains, a credential.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        # browsers authenticate to OpenAI with "openai-insecure-api-key.<KEY>" here
        "sec-websocket-protocol",
    }
)

#: URL query parameters (lower-case) whose value is a credential (Gemini ``?key=``).
SECRET_QUERY_PARAMS = frozenset({"key", "api-key", "api_key", "access_token"})

#: Shortest string treated as a secret by value (shorter ones would mask ordinary words).
_MIN_SECRET = 8
#: Shortest secret remembered process-wide: real API keys are far longer (OpenAI
#: ``sk-...`` and Google ``AIza...`` keys have 39+ characters), test placeholders are not.
_MIN_REMEMBERED = 16

_SCHEMES = ("bearer", "basic", "token")

_HEADER_NAMES = "|".join(
    re.escape(n) for n in sorted(SECRET_HEADERS - {"sec-websocket-protocol"}, key=len, reverse=True)
)
# name, an optional closing quote (JSON / dict repr), a separator, an optional opening
# quote, an optional auth scheme; then the value up to a delimiter.
_SECRET_HEADER = re.compile(
    rf"((?<![\w-])(?:{_HEADER_NAMES})[\"']?\s*[:=]\s*[\"']?)"
    rf"(?:({'|'.join(_SCHEMES)})\s+)?[^\s,;'\"&}}\]]+",
    re.IGNORECASE,
)
_SECRET_QUERY = re.compile(
    rf"([?&](?:{'|'.join(re.escape(n) for n in sorted(SECRET_QUERY_PARAMS))})=)[^&\s'\"#]+",
    re.IGNORECASE,
)
_INSECURE_SUBPROTOCOL = re.compile(r"(openai-insecure-api-key\.)[^\s,;'\"]+", re.IGNORECASE)

# Secrets seen by this process's connections, newest last, with the forms they are
# masked in (plain and URL-quoted); bounded so a process that rotates keys keeps only
# the recent ones. Used for log records, where the request that carried the secret is
# not at hand.
_REMEMBERED: deque[str] = deque(maxlen=16)
_REMEMBERED_FORMS: tuple[str, ...] = ()


def secrets_in(url: str = "", headers: Mapping[str, str] | None = None) -> set[str]:
    """The credential values a request carries in ``headers`` and ``url``'s query."""
    found: set[str] = set()
    for name, value in (headers or {}).items():
        name = name.lower()
        if name not in SECRET_HEADERS:
            continue
        for part in re.split(r"[\s,]+", value):
            if name == "sec-websocket-protocol":  # only the key subprotocol is secret
                token = _INSECURE_SUBPROTOCOL.fullmatch(part)
                part = part[token.end(1) :] if token else ""
            if len(part) >= _MIN_SECRET and part.lower() not in _SCHEMES:
                found.add(part)
    if url:
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            if name.lower() in SECRET_QUERY_PARAMS and len(value) >= _MIN_SECRET:
                found.add(value)
    return found


def remember_secrets(secrets: Iterable[str]) -> None:
    """Also mask ``secrets`` (those of 16 characters or more) in every later
    :func:`redact` call of this process.

    The transport calls this for each connection it opens, so log records (which do
    not know the request) are redacted by value too.
    """
    global _REMEMBERED_FORMS
    added = False
    for secret in secrets:
        if len(secret) >= _MIN_REMEMBERED and secret not in _REMEMBERED:
            _REMEMBERED.append(secret)
            added = True
    if added:
        _REMEMBERED_FORMS = tuple(_forms(_REMEMBERED))


def _forms(secrets: Iterable[str]) -> set[str]:
    """The strings to mask for ``secrets``: each as is and URL-quoted."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= _MIN_SECRET:
            forms.add(secret)
            forms.add(quote(secret, safe=""))
    return forms


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential replaced by ``***``.

    Masks ``secrets`` (and the remembered ones, see :func:`remember_secrets`) by
    value, in their plain and URL-quoted forms, then credential headers and query
    parameters by name.
    """
    for form in (*_forms(secrets), *_REMEMBERED_FORMS) if secrets else _REMEMBERED_FORMS:
        if form in text:
            text = text.replace(form, MASK)
    lowered = text.lower()
    if "key" not in lowered and "authorization" not in lowered and "token" not in lowered:
        return text  # the fast path of log filters: no credential name, nothing to mask
    text = _SECRET_HEADER.sub(
        lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + MASK, text
    )
    text = _INSECURE_SUBPROTOCOL.sub(rf"\g<1>{MASK}", text)
    return _SECRET_QUERY.sub(rf"\g<1>{MASK}", text)


def redact_url(url: str) -> str:
    """``url`` with the values of secret query parameters replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, MASK if k.lower() in SECRET_QUERY_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the values of :data:`SECRET_HEADERS` replaced by ``***``."""
    return {k: (MASK if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}
