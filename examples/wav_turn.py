"""A spoken turn from a WAV file; the reply audio is written to a WAV file.

The question is synthesised speech-like audio (voxengine.testing.synthesize_speech);
use any 16-bit PCM WAV file instead. Usage: python wav_turn.py [IN.wav] [OUT.wav]
"""

import asyncio
import sys
from pathlib import Path

from voxengine import AudioDelta, ResponseDone, VoiceEngine, VoiceEngineConfig
from voxengine.audio import AudioFormat, read_wav, write_wav
from voxengine.testing import run_fake_openai_server, synthesize_speech


def question(path: Path) -> tuple[bytes, AudioFormat]:
    """The samples of ``path``, written first (speech-like audio) if it does not exist."""
    if not path.exists():
        speech = synthesize_speech("what time is it", sample_rate=24000)
        write_wav(path, speech, AudioFormat(sample_rate=24000))
    return read_wav(path)  # samples, not the file's bytes (send_audio refuses those)


async def main(
    pcm: bytes, fmt: AudioFormat, target: Path
) -> None:  # samples, not the file's bytes (send_audio refuses those)
    async with run_fake_openai_server() as server:
        config = VoiceEngineConfig(api_key="sk-test", base_url=server.url, vad_enabled=False)
        reply = bytearray()
        async with VoiceEngine(config) as engine:
            engine.events.on(AudioDelta, lambda e: reply.extend(e.audio))
            await engine.send_audio(pcm, sample_rate=fmt.sample_rate, channels=fmt.channels)
            await engine.commit_audio(respond=True)
            done = await engine.events.wait_for(ResponseDone, timeout=10)
            out_format = engine.provider.output_format
    write_wav(target, bytes(reply), out_format)
    seconds = out_format.duration(len(reply))
    print(f"{done.status.value}: {seconds:.2f} s of reply audio written to {target}")


if __name__ == "__main__":
    args = sys.argv[1:]
    source = Path(args[0]) if args else Path("question.wav")
    target = Path(args[1]) if len(args) > 1 else Path("answer.wav")
    asyncio.run(main(*question(source), target))
