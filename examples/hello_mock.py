"""The smallest engine: one text turn with the mock provider (offline, scripted)."""

import asyncio

from voxengine import ResponseDone, VoiceEngine, VoiceEngineConfig


async def main() -> None:
    async with VoiceEngine(VoiceEngineConfig(provider="mock")) as engine:
        engine.on_text_response = lambda text: print(text, end="", flush=True)
        await engine.send_text("Hello!")
        done = await engine.events.wait_for(ResponseDone, timeout=10)
    print(f"\nstatus: {done.status.value}, usage: {engine.get_usage()}")


if __name__ == "__main__":
    asyncio.run(main())
