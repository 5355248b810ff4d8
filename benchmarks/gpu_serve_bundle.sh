#!/usr/bin/env bash
# Builds .gpu-serve/ (git-ignored, ~8 MB): the wheels `voicegen serve`, benchmarks/serve.py and tests/test_server.py
# need on the lent GPU machine beyond what it has (fastapi, uvicorn, prometheus-client, soundfile, the openai client
# and their dependencies; numpy and torch are there already). It cannot travel beside .gpu/ (61 MiB) within the
# device's 64 MiB, so it goes in a second call on the same warm machine, where .gpu/ and its unpacked site stay:
#     bash benchmarks/gpu_serve_bundle.sh                       # here, once (about a minute)
#     device: command="bash benchmarks/gpu_session.sh", carry=[".gpu"]          (first call)
#     device: command="bash benchmarks/gpu_serve.sh",   carry=[".gpu-serve"]    (second call, machine still warm)
# Versions are pinned to the ones the CPU suite runs with.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
OUTDIR="$ROOT/.gpu-serve"
EXCLUDE="$(git -C "$ROOT" rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$EXCLUDE")"; grep -qx "/.gpu-serve/" "$EXCLUDE" 2>/dev/null || echo "/.gpu-serve/" >> "$EXCLUDE"
rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$OUTDIR" fastapi==0.165.0 uvicorn==0.54.0 prometheus-client openai==3.57.0 httpx==0.28.1 soundfile==0.14.0 \
  2>&1 | grep -v WARNING || true
rm -f "$OUTDIR"/numpy-*.whl  # the GPU machine has its own
du -sh "$OUTDIR"
