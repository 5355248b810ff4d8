#!/usr/bin/env bash
# The second device call of a GPU session, on the machine benchmarks/gpu_session.sh has just used (it stays warm 30 s
# after a call: make this call at once). It reuses that call's unpacked bundle (/tmp/site), its A/B switches
# (/tmp/custom/sitecustomize.py) and its compile cache (/tmp/vgc), so each compiled engine warms up from the cache
# (~40 s) instead of compiling for minutes. Carry nothing:
#     device: command="bash benchmarks/gpu_followup.sh", timeout_s=<what the session has left>
# Steps, each cut at its limit (0 skips it):
#   OVERLAP_S (0 s)    issue 11 item 4's A/B as two engines: the compiled mode with and without Renderer.overlap
#                      (the token phase on a second stream, pipelined by token batch), one throughput.py run, each
#                      engine warmed up from the cache -> overlap-cuda.json; gpu_session.sh's benchmark already
#                      makes this A/B on one warm engine (--ab overlap), so this is a second opinion
#   PROFILE_S (70 s)   where the one-minute script's time and time to first audio go: gpu_profile.py --script-only
#                      (torch.profiler, top kernels and host operations) -> profile.json
#   TOKEN_CORPUS_S (0 s)  the token phase over the 10-minute corpus in each of token_phase.py's settings (ALBERT
#                      float32/float16; BiLSTMs packed, unpacked, one-way; graphs; the text-encoder stream) and token
#                      budgets of 16k and 32k against the default 8k (no compile; its JSON saved after every round)
#                      -> token-phase-cuda-corpus.json
#   CUDNN_S (0 s)      the compiled mode with torch.backends.cudnn.benchmark on (cuDNN times its convolution algorithms
#                      per shape) -> cudnn-benchmark-cuda.json; the baseline: gpu_session.sh's throughput-cuda.json
#                      (same machine, another process) or OVERLAP_S's run without overlap
#   TOKEN_GRAPHS_S (40 s)  where the token phase in CUDA graphs (layers.TOKEN_GRAPHS) goes wrong on the corpus:
#                      token_graphs_check.py, eager, graphed against eager per token batch, then singles and pairs
#                      -> token-graphs-check.json
# Everything printed goes to followup.log. Back under $OUT: followup.log and the JSONs above.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ ! -d /tmp/site ] || [ ! -d /tmp/vgc ]; then
    echo "no unpacked bundle or compile cache here: run benchmarks/gpu_session.sh first on this warm machine" \
        | tee "$OUT/followup.log"
    exit 2
fi
mkdir -p /tmp/custom && touch /tmp/custom/sitecustomize.py
export PYTHONPATH=/tmp/custom:/tmp/site:$PWD VOICEGEN_CACHE=/tmp/vgc TORCHINDUCTOR_CACHE_DIR=/tmp/vgc/torch-compile
{ echo "switches from gpu_session.sh:"; cat /tmp/custom/sitecustomize.py; } > "$OUT/followup.log"
MODE=cuda-compiled-bf16-graphs
if [ "${OVERLAP_S:-0}" != 0 ]; then
    timeout "$OVERLAP_S" python3 benchmarks/throughput.py --device cuda --minutes ${MINUTES:-10} --asr 0 \
        --modes "$MODE,$MODE-overlap" --no-cached-warmup --out "$OUT/overlap-cuda.json" >> "$OUT/followup.log" 2>&1
    echo "overlap A/B exit $?" >> "$OUT/followup.log"
fi
if [ "${PROFILE_S:-70}" != 0 ]; then
    timeout "${PROFILE_S:-70}" python3 benchmarks/gpu_profile.py --script-only --out "$OUT" >> "$OUT/followup.log" 2>&1
    echo "profile exit $?" >> "$OUT/followup.log"
fi
if [ "${TOKEN_GRAPHS_S:-40}" != 0 ]; then
    timeout "${TOKEN_GRAPHS_S:-40}" python3 benchmarks/token_graphs_check.py --device cuda --minutes 10 \
        --out "$OUT/token-graphs-check.json" >> "$OUT/followup.log" 2>&1
    echo "token graphs check exit $?" >> "$OUT/followup.log"
fi
if [ "${TOKEN_CORPUS_S:-0}" != 0 ]; then
    timeout "$TOKEN_CORPUS_S" python3 benchmarks/token_phase.py --device cuda --corpus 10 --rounds 5 \
        --budgets 16384,32768 --out "$OUT/token-phase-cuda-corpus.json" >> "$OUT/followup.log" 2>&1
    echo "token phase (corpus) exit $?" >> "$OUT/followup.log"
fi
if [ "${CUDNN_S:-0}" != 0 ]; then
    mkdir -p /tmp/custom-cudnn
    { cat /tmp/custom/sitecustomize.py; echo 'import torch; torch.backends.cudnn.benchmark = True'; } \
        > /tmp/custom-cudnn/sitecustomize.py
    PYTHONPATH=/tmp/custom-cudnn:/tmp/site:$PWD timeout "$CUDNN_S" python3 benchmarks/throughput.py --device cuda \
        --minutes ${MINUTES:-10} --asr 0 --modes "$MODE" --no-cached-warmup --out "$OUT/cudnn-benchmark-cuda.json" \
        >> "$OUT/followup.log" 2>&1
    echo "cudnn benchmark run exit $?" >> "$OUT/followup.log"
fi
tail -40 "$OUT/followup.log"
