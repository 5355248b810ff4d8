#!/usr/bin/env bash
# One prepared device call for the GPU measurements (issue 14): environment, the CUDA throughput benchmark (cold
# compile cache, then the cached warm-up in a fresh process), a kernel profile of the compiled path, then the CUDA
# tests; every log and JSON lands under $OUT (with GRAPHS_BACK=1 also the compiled graphs, graphs.tar.xz, which a
# later call can start from: carry them in .gpu/graphs, this script copies them into the compile cache first). If the
# compiled mode fails in inductor, it is run once more traced size-obliviously without layout optimization.
# Prepare once on the CPU, from the project root:
#     bash ../shared/gpu/make-bundle.sh                        # builds .gpu/ (about 3-6 minutes)
# then call the device tool with
#     command="TOKEN_S=1 PROFILE_S=0 FIT_S=0 TESTS_S=60 bash benchmarks/gpu_session.sh", carry=[".gpu"], timeout_s=520
# (the benchmark with its A/B and the CUDA tests in one call, ~8 minutes with start-up; the token phase, profile and
# fit are for a second call or a longer budget). The cold warm-up varies by machine: 169 s and 204 s on two H200
# starts of the seventeenth session (compile 134 s and 165 s), so BENCH_S below ~400 s can cut the A/B.
# Budget (the device gives ~15 minutes per session, start-up included), each step cut at its limit, the next one
# still run:
#   TOKEN_S (60 s)     first, the token phase in each setting of benchmarks/token_phase.py (ALBERT float32/float16;
#                      BiLSTMs packed, unpacked, one-way float32/float16; the encoder in CUDA graphs; the text encoder
#                      on a second stream), 20 rounds, no compile; TOKEN_S=1 skips it in effect (the corpus with
#                      larger token budgets is gpu_followup.sh's TOKEN_CORPUS_S)
#   BENCH_S (420 s)    the benchmark, b1-eager and the compiled mode (the cold warm-up, compile and every bucket shape
#                      captured, took 169 s on an H200 in the seventeenth session), then its A/B: AB (default
#                      albert-graphs,pipelined-script,packed+one-stream,overlap,tokens-8192,overhead-256,
#                      exact-padding,buckets-4,buckets-4+overhead-256; empty: none) are variants the compiled mode's
#                      warm engine renders the corpus, the script and first audio with, alternating with it as it is,
#                      AB_ROUNDS (3) rounds after an untimed pass (throughput.py --ab; `ab` in its JSON; ~30 s in all,
#                      new buckets' CUDA graphs captured in the untimed pass): ALBERT replayed from CUDA graphs (the
#                      first audio is launch-bound), the script's windows pipelined (mixing overlapping the GPU), the
#                      token phase as it was before the seventeenth session (packed float32 BiLSTMs, the text encoder
#                      on the main stream), Renderer.overlap (issue 11 item 4), the token budget before then,
#                      the batch planner's per-batch cost against its 1,024 frames, exact token padding, 4 frame
#                      buckets per octave instead of 2 (its token batches and host time are in the JSON per variant,
#                      its stages in `corpus_stages_s`)
#   FALLBACK_S (170 s) if the compiled mode failed in inductor: once more, traced size-obliviously
#   PROFILE_S (60 s), TESTS_S (80 s), FIT_S (60 s)   the profile, the CUDA tests, voice fitting (0 skips a step)
# Switches: SWITCHES=a,b sets module switches by their names in benchmarks/switches.py for every process of the call
# (fp32-albert, unpacked, one-way-fp16, token-graphs, text-encoder-stream, exact-padding, channels-last, ...);
# TOKEN_AUTO=1 (without SWITCHES) sets them from the token-phase run: the fastest of unpacked, graphs, one-way-fp16,
# one-way-fp16-graphs, text-encoder-stream, one-way-fp16-stream and exact-padding, if >= 1.1x the default with
# durations at most a frame from float32's; CUDNN_BENCHMARK=1 lets cuDNN time its convolution algorithms per shape
# (torch.backends.cudnn.benchmark; off: heuristics); GRAPH_MAX_FRAMES=N captures CUDA graphs up to N frames per batch
# (default: all).
# The machine stays warm 30 s after a call, with its compile cache in /tmp/vgc: a second call made at once
# (PYTHONPATH=/tmp/custom:/tmp/site:$PWD VOICEGEN_CACHE=/tmp/vgc TORCHINDUCTOR_CACHE_DIR=/tmp/vgc/torch-compile,
# .gpu/setup.sh skipped) warms up from the cache in ~40 s: `bash benchmarks/gpu_followup.sh` is that call, prepared
# (the script and first-audio profile, more A/Bs); what a step measured is saved as it goes. The 8 files that come
# back (the device's limit): env.txt, throughput-cuda.json, throughput.log (with the profile's log), profile.json,
# kernels.txt, pytest-cuda.log (with the fit's log), voices-cuda.json, and throughput-cuda-fallback.json or
# graphs.tar.xz.
# DRY_RUN=1 runs the same steps on this CPU machine in about 10 minutes, to check the call's plumbing before device
# time is spent on it (the bundle unpacked and used, the switches, TOKEN_AUTO, the A/B, the tests' collection): the
# token phase one round, the benchmark batched-fft over a 0.2-minute corpus with AB=packed+one-stream,pipelined-script and one A/B
# round (BENCH_S 900 s), no profile, no fit, tests/test_cuda.py only (it skips without a GPU). Its figures mean
# nothing; run it on a quiet machine (under load the benchmark step can run past its limit).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
DEV=cuda
if [ -n "${DRY_RUN:-}" ]; then
    DEV=cpu MODES=${MODES:-batched-fft} MINUTES=${MINUTES:-0.2} AB=${AB-packed+one-stream,pipelined-script} AB_ROUNDS=${AB_ROUNDS:-1}
    TOKEN_ROUNDS=${TOKEN_ROUNDS:-1} PROFILE_S=0 FIT_S=0 TESTS="tests/test_cuda.py" BENCH_S=${BENCH_S:-900}
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
bash .gpu/setup.sh > "$OUT/env.txt" 2>&1
for wheel in .gpu/extra/*.whl; do [ -e "$wheel" ] && python3 -m zipfile -e "$wheel" /tmp/site; done
export PYTHONPATH=/tmp/site:$PWD VOICEGEN_CACHE=/tmp/vgc TORCHINDUCTOR_CACHE_DIR=/tmp/vgc/torch-compile
GRAPHS=/tmp/vgc/torch-compile/frame-phase
if [ -d .gpu/graphs ]; then mkdir -p "$GRAPHS" && cp -r .gpu/graphs/. "$GRAPHS/"; fi
{ nvidia-smi; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"; } \
    >> "$OUT/env.txt" 2>&1
CUSTOM=/tmp/custom  # one sitecustomize.py (Python imports only the first it finds) for the A/B switches below
mkdir -p "$CUSTOM" && : > "$CUSTOM/sitecustomize.py" && export PYTHONPATH=$CUSTOM:$PYTHONPATH
[ -n "${GRAPH_MAX_FRAMES:-}" ] && echo "import voicegen.model.cuda_graphs as g; g.GRAPH_MAX_FRAMES = int($GRAPH_MAX_FRAMES)" \
    >> "$CUSTOM/sitecustomize.py"
SWITCHES_PY="import sys; sys.path.append('$PWD/benchmarks'); import switches"  # last on the path: shadows nothing
[ -n "${SWITCHES:-}" ] && echo "$SWITCHES_PY; switches.set_all('$SWITCHES'.split(','), 'cuda')" >> "$CUSTOM/sitecustomize.py"
[ -n "${CUDNN_BENCHMARK:-}" ] && echo 'import torch; torch.backends.cudnn.benchmark = True' >> "$CUSTOM/sitecustomize.py"
cat "$CUSTOM/sitecustomize.py" >> "$OUT/env.txt"
# the token phase in each of token_phase.py's settings, alternating (seconds; its JSON goes into throughput.log; it
# sets the switches itself, on top of SWITCHES)
timeout ${TOKEN_S:-60} python3 benchmarks/token_phase.py --device $DEV --rounds ${TOKEN_ROUNDS:-20} --out /tmp/token-phase-cuda.json \
    > "$OUT/throughput.log" 2>&1
echo "token phase exit $?" >> "$OUT/throughput.log"
cat /tmp/token-phase-cuda.json >> "$OUT/throughput.log" 2>/dev/null
if [ -n "${TOKEN_AUTO:-}" ] && [ -z "${SWITCHES:-}" ]; then  # the setting that won by >= 10%, if one did
    python3 - /tmp/token-phase-cuda.json "$SWITCHES_PY" >> "$CUSTOM/sitecustomize.py" 2>> "$OUT/throughput.log" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rows = {s["setting"]: s for s in r["settings"]}
base = rows.get("one-way-fp16-stream")  # CUDA's default since the seventeenth session
base = base or rows[{"float16": "fp16", "bfloat16": "bf16"}.get(r["albert_default"], "fp32") + "-albert"]
switches = {"unpacked": ["unpacked"], "graphs": ["unpacked", "token-graphs"], "exact-padding": ["exact-padding"],
            "one-way-fp16": ["one-way-fp16"], "one-way-fp16-graphs": ["one-way-fp16", "token-graphs"],
            "text-encoder-stream": ["text-encoder-stream"],
            "one-way-fp16-stream": ["one-way-fp16", "text-encoder-stream"]}
best = min((rows[n] for n in switches if n in rows), key=lambda s: s["wall_ms"], default=None)
if best and best["wall_ms"] * 1.1 <= base["wall_ms"] and best["largest_duration_difference"] <= 1:
    print(f"{sys.argv[2]}; switches.set_all({switches[best['setting']]!r}, 'cuda')")
PY
    { echo "token setting chosen by TOKEN_AUTO:"; cat "$CUSTOM/sitecustomize.py"; } >> "$OUT/throughput.log"
fi
MODES=${MODES:-b1-eager,cuda-compiled-bf16-graphs}
AB_DEFAULT=albert-graphs,pipelined-script,packed+one-stream,overlap,tokens-8192,overhead-256,exact-padding
AB_DEFAULT=$AB_DEFAULT,buckets-4,buckets-4+overhead-256
timeout ${BENCH_S:-420} python3 benchmarks/throughput.py --device $DEV --minutes ${MINUTES:-10} --asr 0 --modes "$MODES" \
    --ab "${AB-$AB_DEFAULT}" \
    --ab-rounds ${AB_ROUNDS:-3} \
    --out "$OUT/throughput-cuda.json" \
    >> "$OUT/throughput.log" 2>&1
echo "benchmark exit $?" >> "$OUT/throughput.log"
if grep -q "InductorError" "$OUT/throughput.log"; then  # the compiled mode again, traced size-obliviously, no layout optimization
    printf '%s\n' 'import torch._inductor.config as c; c.layout_optimization = False' \
        'import voicegen.compiled as v; v.SIZE_OBLIVIOUS["cuda"] = True' >> "$CUSTOM/sitecustomize.py"  # profile, tests too
    timeout ${FALLBACK_S:-170} python3 benchmarks/throughput.py --device cuda \
        --minutes ${MINUTES:-10} --asr 0 --modes cuda-compiled-bf16-graphs --out "$OUT/throughput-cuda-fallback.json" \
        >> "$OUT/throughput.log" 2>&1
    echo "fallback benchmark exit $?" >> "$OUT/throughput.log"
fi
[ -d "$GRAPHS" ] && ls -laR "$GRAPHS" >> "$OUT/env.txt"
[ -n "${GRAPHS_BACK:-}" ] && tar cf - -C "$GRAPHS" . | xz -T0 -6 > "$OUT/graphs.tar.xz"
tail -30 "$OUT/throughput.log" > /tmp/bench-tail.txt
if [ "${PROFILE_S:-60}" != 0 ]; then
    timeout ${PROFILE_S:-60} python3 benchmarks/gpu_profile.py --minutes 2 --out "$OUT" > /tmp/profile.log 2>&1
    echo "profile exit $?" >> /tmp/profile.log; cat /tmp/profile.log >> "$OUT/throughput.log"  # 8 files come back at most
fi
TESTS=${TESTS:-tests/test_cuda.py tests/test_compile.py::test_bf16_autocast_stays_close_to_float32
    tests/test_compile.py::test_cuda_graphs_match_eager
    tests/test_precision.py::test_reduced_precision_on_cuda_stays_within_015_nats_of_float32}
timeout ${TESTS_S:-80} python3 -m pytest -q -p no:cacheprovider -m "not slow" $TESTS > "$OUT/pytest-cuda.log" 2>&1
echo "pytest exit $?" >> "$OUT/pytest-cuda.log"
if [ "${FIT_S:-60}" != 0 ]; then  # issue 13: fitting time on the GPU (no judge there)
    timeout ${FIT_S:-60} python3 benchmarks/voices.py --device cuda --judge 0 --asr 0 --targets jf_nezumi --train 2 \
        --out "$OUT/voices-cuda.json" >> "$OUT/pytest-cuda.log" 2>&1
    echo "voices exit $?" >> "$OUT/pytest-cuda.log"
fi
cat /tmp/bench-tail.txt; tail -3 /tmp/profile.log 2>/dev/null; tail -8 "$OUT/pytest-cuda.log"
