"""``voxengine serve --twilio-token-env NAME [--public-url URL]`` mounts the Twilio routes."""

from __future__ import annotations

import argparse

import pytest

from voxengine.cli import main
from voxengine.cli._errors import CliError
from voxengine.cli._serve import _twilio_routes


def test_twilio_routes_need_the_token_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VOX_TEST_TWILIO_TOKEN", raising=False)
    code = main(["serve", "--provider", "mock", "--twilio-token-env", "VOX_TEST_TWILIO_TOKEN"])
    assert code == 2
    assert "$VOX_TEST_TWILIO_TOKEN is not set" in capsys.readouterr().err


def test_twilio_routes_from_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOX_TEST_TWILIO_TOKEN", "secret-twilio-token-0123")
    args = argparse.Namespace(
        twilio_token_env="VOX_TEST_TWILIO_TOKEN", public_url="https://voice.example.com"
    )
    assert [route.path for route in _twilio_routes(args)] == ["/twilio/voice", "/twilio/stream"]
    assert _twilio_routes(argparse.Namespace(twilio_token_env=None, public_url=None)) == []
    bad = argparse.Namespace(twilio_token_env="VOX_TEST_TWILIO_TOKEN", public_url="ftp://x")
    with pytest.raises(CliError, match="public_url"):
        _twilio_routes(bad)
