#!/usr/bin/env bash
# Install llama-cpp-python built for a portable CPU, never for the build host's own extensions.
#
# pip compiles llama.cpp with GGML_NATIVE, i.e. for every instruction the build host reports.
# On a host that reports AVX-512 and AMX the server then died at its first request (general
# protection fault in libggml-cpu), and pip's wheel cache would carry such a build to other
# machines. So: AVX2/FMA/F16C on x86-64 (the baseline of every machine we run on), the
# defaults elsewhere, built once into a cache keyed by version and flags.
#
# Usage: scripts/install-llama-cpp.sh PIP   (PIP is the venv's pip)
set -euo pipefail
PIP=${1:?usage: install-llama-cpp.sh PIP}
VERSION=0.3.36
if [ "$(uname -m)" = x86_64 ]; then
  FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  FLAGS="$FLAGS -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF"
  FLAGS="$FLAGS -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF"
  FLAGS="$FLAGS -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
else
  FLAGS="-DGGML_NATIVE=OFF"
fi
key=$(printf '%s %s %s' "$VERSION" "$FLAGS" "$(uname -m)" | sha256sum | cut -c1-12)
dir="${SWEM_WHEEL_CACHE:-$HOME/.cache/swe-monkeys/wheels}/llama-cpp-python-$VERSION-$key"
if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION for a portable CPU (about 5-10 min, once)" >&2
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  CMAKE_ARGS="$FLAGS" "$PIP" wheel -q --no-deps --no-cache-dir \
    "llama-cpp-python==$VERSION" -w "$dir.tmp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
# --force-reinstall: a native build of the same version may be there already.
"$PIP" install -q --force-reinstall --no-deps "$dir"/llama_cpp_python-*.whl
