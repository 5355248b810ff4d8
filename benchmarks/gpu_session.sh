#!/usr/bin/env bash
# One prepared device call for the GPU measurements (issue 14): environment, the CUDA tests, then the CUDA
# throughput benchmark; every log and JSON lands under $OUT. Prepare once on the CPU, from the project root:
#     bash ../shared/gpu/make-bundle.sh                        # builds .gpu/ (about 3-6 minutes)
# then call the device tool with
#     command="bash benchmarks/gpu_session.sh", carry=[".gpu"], timeout_s=560
# Budget (the device gives ~15 minutes per session, start-up included): tests <= 150 s, benchmark <= 330 s.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
bash .gpu/setup.sh > "$OUT/setup.log" 2>&1
export PYTHONPATH=/tmp/site:$PWD VOICEGEN_CACHE=/tmp/vgc
{ nvidia-smi; python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"; } \
    > "$OUT/env.txt" 2>&1
# CUDA tests: compile, graphs, reduced precision, noise and batch invariance (modules that need no soundfile)
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_compile.py tests/test_noise.py tests/test_batch.py \
    tests/test_batching.py > "$OUT/pytest-cuda.log" 2>&1
echo "pytest exit $?" >> "$OUT/pytest-cuda.log"
# Throughput: every CUDA mode (compiled ones warm up through engine.warmup()), the one-minute script's stages
timeout 330 python3 benchmarks/throughput.py --device cuda --minutes ${MINUTES:-20} --asr 0 \
    --out "$OUT/throughput-cuda.json" > "$OUT/throughput.log" 2>&1
echo "benchmark exit $?" >> "$OUT/throughput.log"
tail -20 "$OUT/throughput.log"
