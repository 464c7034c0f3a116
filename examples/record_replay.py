"""Record a session against the fake server, then replay it with no network.

The replay serves the recorded server frames to the real client protocol and checks
every frame the client sends against the recording.
"""

import asyncio
from pathlib import Path

from voxengine import ResponseDone, VoiceEngine, VoiceEngineConfig
from voxengine.recording import Recorder, wrap_provider_connector
from voxengine.testing import run_fake_openai_server
from voxengine.testing.replay import ReplayFactory

PATH = Path("session.jsonl")
SETTINGS = {"instructions": "You book tables.", "vad_enabled": False, "output_modality": "text"}


async def record() -> str:
    async with run_fake_openai_server() as server:
        engine = VoiceEngine(VoiceEngineConfig(api_key="sk-test", base_url=server.url, **SETTINGS))
        with Recorder(PATH, meta={"example": "record_replay"}) as recorder:
            wrap_provider_connector(engine.provider, recorder.wrap)
            async with engine:
                await engine.send_text("a table for two")
                await engine.events.wait_for(ResponseDone, timeout=10)
    return engine.history[-1].text


async def replay() -> str:
    config = VoiceEngineConfig(**SETTINGS)
    with ReplayFactory() as factory:  # at the end: every recorded frame was sent
        provider = factory(PATH, session=config.session_config())
        async with VoiceEngine(config, provider=provider) as engine:
            await engine.send_text("a table for two")
            await engine.events.wait_for(ResponseDone, timeout=10)
    return engine.history[-1].text


async def main() -> None:
    recorded = await record()
    replayed = await replay()
    print(f"recorded: {recorded!r}\nreplayed: {replayed!r}")
    assert recorded == replayed


if __name__ == "__main__":
    asyncio.run(main())
