#!/usr/bin/env bash
# One prepared device call for the GPU measurements (issue 14): environment, the CUDA throughput benchmark (cold
# compile cache), the cached warm-up and a kernel profile, then the CUDA tests; every log and JSON lands under $OUT.
# Prepare once on the CPU, from the project root:
#     bash ../shared/gpu/make-bundle.sh                        # builds .gpu/ (about 3-6 minutes)
#     pip download -d .gpu/extra --no-deps --only-binary=:all: --python-version 3.12 \
#         --platform manylinux2014_x86_64 xxhash                # our dependencies the bundle lacks (scipy is there)
# then call the device tool with
#     command="bash benchmarks/gpu_session.sh", carry=[".gpu"], timeout_s=590
# Budget (the device gives ~15 minutes per session, start-up included): benchmark <= 330 s, profile <= 100 s,
# tests <= 110 s. Each step is cut at its limit and the next one still runs; what a step measured is saved as it goes.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
bash .gpu/setup.sh > "$OUT/setup.log" 2>&1
for wheel in .gpu/extra/*.whl; do [ -e "$wheel" ] && python3 -m zipfile -e "$wheel" /tmp/site; done
export PYTHONPATH=/tmp/site:$PWD VOICEGEN_CACHE=/tmp/vgc
{ nvidia-smi; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"; } \
    > "$OUT/env.txt" 2>&1
MODES=${MODES:-b1-eager,batched-eager,cuda-bf16-graphs,cuda-compiled-bf16-graphs}
timeout ${BENCH_S:-330} python3 benchmarks/throughput.py --device cuda --minutes ${MINUTES:-15} --asr 0 --modes "$MODES" \
    --out "$OUT/throughput-cuda.json" > "$OUT/throughput.log" 2>&1
echo "benchmark exit $?" >> "$OUT/throughput.log"
timeout ${PROFILE_S:-100} python3 benchmarks/gpu_profile.py --minutes 2 --out "$OUT" > "$OUT/profile.log" 2>&1
echo "profile exit $?" >> "$OUT/profile.log"
timeout ${TESTS_S:-110} python3 -m pytest -q -p no:cacheprovider -m "not slow" tests/test_cuda.py tests/test_compile.py tests/test_precision.py \
    tests/test_noise.py tests/test_batching.py > "$OUT/pytest-cuda.log" 2>&1
echo "pytest exit $?" >> "$OUT/pytest-cuda.log"
tail -25 "$OUT/throughput.log"; tail -3 "$OUT/profile.log"; tail -5 "$OUT/pytest-cuda.log"
