"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) for the tests
of the served page: one set of launch flags and one way to open a page, so every
browser test runs the browser the same way.

Chromium's fake-media flags feed a WAV file as the microphone; Playwright gives each
launch a fresh profile (--user-data-dir) itself and is never asked to download a
browser (executable_path)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"
)
"""Marks a test that drives the browser (skipped, with the reason, without it)."""


def chromium_flags(wav: Path) -> list[str]:
    """Flags that work as root on this machine, with the WAV as the microphone and
    WebRTC host candidates on this machine's addresses (loopback included, no mDNS)."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]


@contextlib.asynccontextmanager
async def chromium_page(
    wav: Path, *, init_script: str | None = None, audible: bool = True
) -> AsyncIterator[tuple[Any, list[str]]]:
    """A fresh Chromium with ``wav`` as its microphone and one page in it; yields the
    page and the list its uncaught script errors go to. ``init_script`` runs in the
    page before its own scripts; ``audible`` keeps Playwright from muting the audio
    output (the page's played-position reports need it playing). Skips without
    Playwright; the browser is closed on the way out whatever happened."""
    async_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=chromium_flags(wav),
            ignore_default_args=["--mute-audio"] if audible else None,
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            if init_script is not None:
                await page.add_init_script(init_script)
            yield page, errors
        finally:
            await browser.close()
