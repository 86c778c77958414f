"""Cost arithmetic and the FLOPs-matched comparison, on hand-made summaries."""

import pytest

from harness.cost import KNOWN_SIZES, PriceTable, flops_per_token, inference_flops, model_size
from harness.report import flops_matched


def test_price_table_adds_tokens_and_gpu_hours():
    api = PriceTable(input_per_mtok=3.0, output_per_mtok=15.0)
    assert api.dollars(2_000_000, 1_000_000, wall_s=999) == pytest.approx(6 + 15)
    local = PriceTable(gpu_hour_usd=2.0, gpus=4)
    assert local.dollars(10**9, 10**9, wall_s=1800) == pytest.approx(4.0)


def test_flops_follow_the_papers_formula():
    size = KNOWN_SIZES["Qwen/Qwen2.5-Coder-32B-Instruct"]
    per_token = flops_per_token(size, context=4096)
    assert per_token == 2 * (32.8e9 + 2 * 64 * 4096 * 5120)
    assert inference_flops(size, 1000, 500, 4096) == pytest.approx(1500 * per_token)


@pytest.mark.parametrize(
    "spec,name",
    [
        ("vllm:Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen/Qwen2.5-Coder-32B-Instruct"),
        ("http://gpu:8000/v1#Qwen/Qwen2.5-Coder-7B-Instruct", "Qwen/Qwen2.5-Coder-7B-Instruct"),
        ("embedded", None),
        ("vllm:some/unknown-model", None),
    ],
)
def test_model_sizes_are_known_or_left_out(spec, name):
    assert model_size(spec) == (KNOWN_SIZES[name] if name else None)


def summary(run_id, flops_per_sample, coverage):
    return {
        "run_id": run_id,
        "samples_per_issue": len(coverage),
        "cost": {"flops_per_sample": flops_per_sample},
        "curve": {"k": list(range(1, len(coverage) + 1)), "coverage": coverage},
    }


def test_flops_matched_pairs_many_small_samples_with_few_large_ones():
    small = summary("small", 1e12, [0.1 * k for k in range(1, 11)][:10])
    large = summary("large", 5e12, [0.3, 0.4])
    rows = flops_matched(small, large)
    assert rows == [
        {
            "flops_per_issue": 5e12,
            "small": {"k": 5, "coverage": pytest.approx(0.5)},
            "large": {"k": 1, "coverage": 0.3},
        },
        {
            "flops_per_issue": 1e13,
            "small": {"k": 10, "coverage": pytest.approx(1.0)},
            "large": {"k": 2, "coverage": 0.4},
        },
    ]
    assert flops_matched(summary("a", None, [0.1]), large) == []
