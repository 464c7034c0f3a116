"""An engine against the bundled fake OpenAI Realtime server over a real WebSocket."""

import asyncio

from voxengine import ResponseDone, VoiceEngine, VoiceEngineConfig
from voxengine.testing import FakeOpenAIConfig, FakeReply, run_fake_openai_server


async def main() -> None:
    fake = FakeOpenAIConfig(responder=lambda turn: FakeReply(text=f"Booked: {turn.text}."))
    async with run_fake_openai_server(fake) as server:
        config = VoiceEngineConfig(api_key="sk-test", base_url=server.url, voice="marin")
        async with VoiceEngine(config) as engine:
            engine.on_text_response = lambda text: print(text, end="", flush=True)
            await engine.send_text("a table for two at eight")
            await engine.events.wait_for(ResponseDone, timeout=10)
        sent = [event["type"] for event in server.connections[0].received]
    print(f"\nthe client sent: {', '.join(sent)}")


if __name__ == "__main__":
    asyncio.run(main())
