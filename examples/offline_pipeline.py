"""The offline speech stack the CLI uses by default: no network, no key.

Speech recognition, the built-in local responder (fixed rules, not an AI model) and
speech synthesis; here one text turn, answered in text and speech.
"""

import asyncio

from voxengine import AudioDelta, ResponseDone, VoiceEngine, VoiceEngineConfig
from voxengine.providers.pipeline import PipelineConfig, PipelineProvider


async def main() -> None:
    provider = PipelineProvider(PipelineConfig())
    audio = bytearray()
    async with VoiceEngine(VoiceEngineConfig(provider="pipeline"), provider=provider) as engine:
        engine.on_text_response = lambda text: print(text, end="", flush=True)
        engine.events.on(AudioDelta, lambda e: audio.extend(e.audio))
        await engine.send_text("What time is it?")
        await engine.events.wait_for(ResponseDone, timeout=60)
        seconds = engine.provider.output_format.duration(len(audio))
    print(f"\n({seconds:.1f} s of speech)")


if __name__ == "__main__":
    asyncio.run(main())
