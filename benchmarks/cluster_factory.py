"""The session factory of the cluster test and benchmark workers
(``voxengine serve --factory benchmarks.cluster_factory:make_engine``): every call
talks to the fake OpenAI server whose URL is in ``VOXENGINE_FAKE_OPENAI_URL``. A call
whose metadata has a ``tag`` uses the model ``gpt-realtime-bench-<tag>``, so the stamping
provider fake of the scale benchmark (benchmarks/serving_parts.py) tells callers apart."""

from __future__ import annotations

import os

from voxengine import VoiceEngine, VoiceEngineConfig
from voxengine.serve import CallContext


def make_engine(context: CallContext) -> VoiceEngine:
    """An OpenAI engine on the fake server (key from ``OPENAI_API_KEY``)."""
    tag = context.params.get("tag")
    return VoiceEngine(
        VoiceEngineConfig(
            provider="openai",
            base_url=os.environ["VOXENGINE_FAKE_OPENAI_URL"],
            mode="big",
            model=f"gpt-realtime-bench-{tag}" if isinstance(tag, str) else None,
        )
    )
