"""A Python function as a tool: the engine runs the model's call and sends the result.

The fake server's responder plays the model: it calls the tool, then answers with
the tool's output.
"""

import asyncio
from typing import Literal

from voxengine import ResponseDone, ToolCall, VoiceEngine, VoiceEngineConfig, tool
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    run_fake_openai_server,
)


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Current weather for a city.

    Args:
        city: the city name.
        unit: the temperature unit.
    """
    return f"18 degrees {unit} and sunny in {city}"


def responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "tool_output":
        return FakeReply(text=f"It is {turn.text}.")
    call = FakeToolCall(name="get_weather", arguments='{"city": "Paris"}')
    return FakeReply(tool_calls=(call,))


async def main() -> None:
    async with run_fake_openai_server(FakeOpenAIConfig(responder=responder)) as server:
        config = VoiceEngineConfig(api_key="sk-test", base_url=server.url, tools=(get_weather,))
        async with VoiceEngine(config) as engine:
            engine.events.on(ToolCall, lambda e: print(f"tool call: {e.name}({e.arguments})"))
            engine.on_text_response = lambda text: print(text, end="", flush=True)
            await engine.send_text("What's the weather in Paris?")
            await engine.events.wait_for(ResponseDone, timeout=10)  # the call
            await engine.events.wait_for(ResponseDone, timeout=10)  # the answer
    print()


if __name__ == "__main__":
    asyncio.run(main())
