"""The one model client: an OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp, an API).

Samples of one prompt are asked for in one request with `n`, so a server that supports it
(vLLM, llama.cpp's llama-server) shares the prompt's evaluation across them and decodes them
together; a server with a cap on `n` (llama-server: its slots) gets k in requests of at most
that many. A server that returns fewer choices than asked is topped up with concurrent
requests. Sample i always carries seed + i, however the k samples were split.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, replace

import openai
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from harness.types import Completion, SamplingConfig

TRANSIENT = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,
    openai.RateLimitError,
)


@dataclass(frozen=True)
class ClientOptions:
    base_url: str
    model: str
    api_key: str = "EMPTY"
    concurrency: int = 16
    """Requests in flight at once against the server."""
    timeout_s: float = 600.0
    """Per request; a slow answer past it is retried like a transient error."""
    retries: int = 4
    """Attempts per request, the first included."""
    backoff_s: float = 0.5
    max_n: int | None = None
    """The most choices one request may ask for (llama-server refuses more than its
    --parallel slots); None: no cap."""
    tokenize_url: str | None = None
    """A tokenizer endpoint (llama-server's /tokenize) that counts each choice's completion
    tokens when one request asked for several: llama-server's usage then counts only the
    first choice's."""
    merge_system: bool = False
    """Fold the system message into the first user turn, for chat templates without a
    system role (Gemma's)."""


class OpenAICompatModel:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self.model_name = options.model
        self.requests_sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind_to_running_loop(self) -> None:
        """The HTTP client and the semaphore belong to one event loop; a caller that runs
        several loops (asyncio.run per issue) gets fresh ones for each."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.options.concurrency)
            self._client = openai.AsyncOpenAI(
                base_url=self.options.base_url,
                api_key=self.options.api_key,
                timeout=self.options.timeout_s,
                max_retries=0,  # tenacity owns retrying
            )

    async def aclose(self) -> None:
        """Close the HTTP client of the running loop (before that loop ends: a client left
        to the garbage collector tries to close on a loop that is gone)."""
        if self._loop is asyncio.get_running_loop():
            await self._client.close()
            self._loop = None

    async def complete(
        self,
        messages: list[dict],
        sampling: SamplingConfig,
        k: int,
        tools: list[dict] | None = None,
    ) -> list[Completion]:
        self._bind_to_running_loop()
        messages = _merge_system(messages) if self.options.merge_system else messages
        step = self.options.max_n or max(k, 1)
        parts = await asyncio.gather(
            *(
                self._samples(messages, sampling, start, min(step, k - start), tools)
                for start in range(0, k, step)
            )
        )
        return [c for part in parts for c in part]

    async def _samples(self, messages, sampling, start: int, n: int, tools) -> list[Completion]:
        """Samples start .. start + n - 1: one request for n, then one per missing sample."""

        def seed(index: int) -> int | None:
            return None if sampling.seed is None else sampling.seed + index

        first = await self._request(messages, sampling, n, seed(start), tools)
        extra = await asyncio.gather(
            *(
                self._request(messages, sampling, 1, seed(start + len(first) + i), tools)
                for i in range(n - len(first))
            )
        )
        return (first + [c for batch in extra for c in batch])[:n]

    async def _request(
        self,
        messages,
        sampling: SamplingConfig,
        n: int,
        seed: int | None,
        tools: list[dict] | None = None,
    ):
        async with self._slots:
            start = time.monotonic()
            try:
                response = await self._with_retries(messages, sampling, n, seed, tools)
                completions = _split(response, time.monotonic() - start)
                if self.options.tokenize_url and len(completions) > 1:
                    completions = await self._recount(completions)
                return completions
            except Exception as exc:  # noqa: BLE001 - a failed request fails its n samples
                error = _describe(exc)
                latency = time.monotonic() - start
                return [Completion("", error=error, latency_s=latency) for _ in range(n)]

    async def _recount(self, completions: list[Completion]) -> list[Completion]:
        """Each choice's completion tokens, counted by the server's own tokenizer (its usage
        for n > 1 undercounts). A count that fails leaves the apportioned one, marked so."""
        counts = await asyncio.gather(
            *(asyncio.to_thread(self._count_tokens, c.text) for c in completions)
        )
        if any(n is None for n in counts):
            return completions
        return [
            replace(c, completion_tokens=n, usage_exact=True)
            for c, n in zip(completions, counts, strict=True)
        ]

    def _count_tokens(self, text: str) -> int | None:
        request = urllib.request.Request(
            self.options.tokenize_url,
            data=json.dumps({"content": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout_s) as response:
                return len(json.load(response)["tokens"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def _with_retries(self, messages, sampling, n, seed, tools=None):
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.options.retries),
            wait=wait_exponential(multiplier=self.options.backoff_s, max=30),
            retry=retry_if_exception_type(TRANSIENT),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self.requests_sent += 1
                return await self._client.chat.completions.create(
                    model=self.options.model,
                    messages=messages,
                    n=n,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_tokens=sampling.max_tokens,
                    seed=seed,
                    **({"tools": tools} if tools else {}),
                )
        raise RetryError(None)  # pragma: no cover - reraise=True raises first


def _split(response, latency_s: float) -> list[Completion]:
    """One Completion per choice, with the request's usage shared out so sums stay exact."""
    choices = sorted(response.choices, key=lambda c: c.index)
    texts = [c.message.content or "" for c in choices]
    usage = response.usage
    prompt = _apportion(usage.prompt_tokens if usage else 0, [1] * len(choices))
    generated = _apportion(usage.completion_tokens if usage else 0, [len(t) for t in texts])
    exact = len(choices) == 1
    return [
        Completion(
            text,
            choice.finish_reason,
            p,
            g,
            latency_s,
            exact,
            tool_calls=_tool_calls(choice.message),
        )
        for text, choice, p, g in zip(texts, choices, prompt, generated, strict=True)
    ]


def _tool_calls(message) -> list[dict]:
    return [
        {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
        for call in (getattr(message, "tool_calls", None) or [])
    ]


def _apportion(total: int, weights: list[int]) -> list[int]:
    """Split `total` in proportion to `weights` (evenly when all are 0); shares sum to total."""
    weights = weights if any(weights) else [1] * len(weights)
    shares = [total * w // sum(weights) for w in weights]
    shares[0] += total - sum(shares)
    return shares


def _merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    return rest


def _describe(exc: Exception) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {str(exc.message)[:200]}"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the model server: {exc}"
    if isinstance(exc, AttributeError | TypeError | KeyError | ValueError):
        # A 200 whose body is not a chat completion (a proxy's error page, a wrong route).
        return f"malformed response from the server ({type(exc).__name__}: {exc})"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


class BalancedModel:
    """Several servers of one model: each call goes to the next server in turn."""

    def __init__(self, models: list[OpenAICompatModel]) -> None:
        self.models = models
        self.model_name = models[0].model_name
        self._turn = 0

    async def aclose(self) -> None:
        for model in self.models:
            await model.aclose()

    async def complete(
        self, messages, sampling: SamplingConfig, k: int, tools: list[dict] | None = None
    ) -> list[Completion]:
        model = self.models[self._turn % len(self.models)]
        self._turn += 1
        return await model.complete(messages, sampling, k, tools)
