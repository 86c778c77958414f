"""What samples cost: dollars from a configurable price table, and inference FLOPs from the
model's size by the formula Brown et al. (2024) use (after Kaplan et al., 2020):
FLOPs per token = 2 * (parameters + 2 * layers * context * d_model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelSize:
    params: float
    """Parameters active per token (for a mixture of experts, the active ones)."""
    layers: int
    d_model: int


KNOWN_SIZES = {
    "qwen2.5-coder-0.5b-instruct": ModelSize(0.49e9, 24, 896),
    "qwen2.5-coder-1.5b-instruct": ModelSize(1.54e9, 28, 1536),
    "Qwen/Qwen2.5-Coder-7B-Instruct": ModelSize(7.6e9, 28, 3584),
    "Qwen/Qwen2.5-Coder-32B-Instruct": ModelSize(32.8e9, 64, 5120),
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct": ModelSize(2.4e9, 27, 2048),
}


def model_size(model: str) -> ModelSize | None:
    """A known size for a --model spec (vllm:NAME, URL#NAME or a bare name), if any."""
    name = model.removeprefix("vllm:").rpartition("#")[2] or model
    return KNOWN_SIZES.get(name) or KNOWN_SIZES.get(name.rpartition("/")[2])


def flops_per_token(size: ModelSize, context: float) -> float:
    return 2 * (size.params + 2 * size.layers * context * size.d_model)


def inference_flops(
    size: ModelSize, prompt_tokens: int, completion_tokens: int, mean_context: float
) -> float:
    return (prompt_tokens + completion_tokens) * flops_per_token(size, mean_context)


@dataclass(frozen=True)
class PriceTable:
    """Either an API's per-million-token prices, or a local server's GPU-hours (or both)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    gpu_hour_usd: float = 0.0
    gpus: int = 1

    def dollars(self, prompt_tokens: int, completion_tokens: int, wall_s: float) -> float:
        return (
            prompt_tokens / 1e6 * self.input_per_mtok
            + completion_tokens / 1e6 * self.output_per_mtok
            + self.gpu_hour_usd * self.gpus * wall_s / 3600
        )

    def to_dict(self) -> dict:
        return asdict(self)
