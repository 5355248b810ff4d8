"""Server benchmark: `voicegen serve` under 1, 4, 16 and 64 concurrent clients (the official openai client,
streaming pcm), in one run against one server.

Each client sends its requests one after another (closed loop); a request is a one-word opener and a sentence of
benchmarks/data/sentences_plain.txt of at most 60 characters ("Sure. She folded the letter twice and slipped it
under the door."): two chunks, about 5.5 s of speech. Per level it reports:
  throughput   seconds of audio received per wall-clock second, all clients together (x real time)
  latency      request sent -> last byte (p50, p95)
  ttfa         request sent -> first audio byte (p50, p95): streaming makes this one sentence's work
  batch, turn  mean chunks per forward pass and per scheduling turn (from /metrics), i.e. how much batching
  vs 1 client  throughput relative to the single-client level of the same run (the baseline)

Usage:
  python benchmarks/serve.py                                 # CPU, levels 1,4,16,64, at least 8 requests a level
  python benchmarks/serve.py --device cuda --min-requests 64 --levels 1,4,16,64,256
  python benchmarks/serve.py --url http://127.0.0.1:8880 --api-key KEY   # against a running server
  python benchmarks/serve.py --batch-cost        # no server: does batching lower the CPU cost per audio second?
  python benchmarks/serve.py --ttfa-lengths 0,1000,4000   # one client: time to first audio against input length
Starts `python -m voicegen serve` itself unless --url is given. Writes
benchmarks/results/serve-<device>-<date>.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "sentences_plain.txt"
SAMPLE_RATE = 24000
KEY = "bench"


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(device: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "voicegen", "serve", "--device", device, "--port", str(port),
                             "--api-key", KEY, "--log-level", "warning", *extra], env=env)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while time.monotonic() - started < 600:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/health", headers={"Authorization": f"Bearer {KEY}"}, timeout=5).status_code == 200:
                log(f"server ready after {time.monotonic() - started:.1f} s")
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not become ready in 600 s")


def metrics(url: str, key: str) -> dict[str, float]:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


OPENERS = ["Sure.", "Okay.", "Right.", "Well.", "Yes.", "Alright."]


def texts(max_chars: int) -> list[str]:
    """Requests of two chunks: a one-word opener, then a sentence of the plain corpus of at most `max_chars`
    characters (as a chat reply starts)."""
    lines = [line.strip() for line in DATA.read_text(encoding="utf-8").splitlines() if 0 < len(line.strip()) <= max_chars]
    return [f"{OPENERS[i % len(OPENERS)]} {line}" for i, line in enumerate(lines)]


async def run_level(url: str, key: str, clients: int, per_client: int, corpus: list[str], voice: str) -> list[dict]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=3600)
    results: list[dict] = []

    async def one(text: str) -> None:
        sent = time.monotonic()
        first, size = None, 0
        try:
            async with client.audio.speech.with_streaming_response.create(
                    model="tts-1", voice=voice, input=text, response_format="pcm") as response:
                async for part in response.iter_bytes():
                    if first is None and part:
                        first = time.monotonic() - sent
                    size += len(part)
        except Exception as exc:  # noqa: BLE001 - counted: a refused (429), timed-out (504) or cut-off request
            results.append({"error": f"{type(exc).__name__}: {str(exc)[:120]}", "audio_s": size / 2 / SAMPLE_RATE})
            return
        results.append({"latency": time.monotonic() - sent, "ttfa": first, "audio_s": size / 2 / SAMPLE_RATE})

    async def user(k: int) -> None:
        for j in range(per_client):
            await one(corpus[(k * per_client + j) % len(corpus)])

    await asyncio.gather(*(user(k) for k in range(clients)))
    await client.close()
    return results


def idle(url: str, key: str, limit: float = 600) -> None:
    """Wait until the server has no chunk queued or rendering (/health's queue_depth)."""
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < limit:
        health = httpx.get(url + "/health", headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
        if health.get("queue_depth") == 0:
            return
        time.sleep(0.05)
    raise SystemExit(f"the server still had chunks queued after {limit} s")


def ttfa_by_length(url: str, key: str, lengths: list[int], repeats: int, voice: str) -> list[dict]:
    """One client, one request at a time: every input starts with the same first sentence, followed by corpus
    sentences up to about `length` characters more, so the first chunk's rendering is the same work and what time to
    first audio adds with the length is the planning of the rest. The client leaves after the first audio, and the
    next request waits until the server is idle. Lengths alternate, `repeats` requests each."""
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=3600)
    lines = [line.strip() for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    first = "She folded the letter twice and slipped it under the door."

    def text(length: int, take: int) -> str:
        """The first sentence and `length` more characters, worded apart for each take (so that no phrase of the
        rest is in the server's phonemizer cache)."""
        out, k = first, 0
        while len(out) < len(first) + length:
            line = lines[k % len(lines)]
            out += f" In take {take} part {k}, {line[0].lower()}{line[1:]}"
            k += 1
        return out[:4096]

    inputs = {n: [text(n, take) for take in range(repeats)] for n in lengths}
    times: dict[int, list[float]] = {n: [] for n in lengths}
    for take in range(repeats):
        for n in lengths:
            sent = time.monotonic()
            with client.audio.speech.with_streaming_response.create(model="tts-1", voice=voice, input=inputs[n][take],
                                                                    response_format="pcm", extra_body={"seed": 1}) as r:
                for part in r.iter_bytes():
                    if part:
                        times[n].append(time.monotonic() - sent)
                        break
            idle(url, key)  # the client left after the first audio: wait until the server has dropped the rest
    base = float(np.median(times[lengths[0]]))
    planning = planning_by_length(inputs)
    rows = [{"extra_chars": n, "input_chars": len(inputs[n][0]), "ttfa_p50_s": round(float(np.median(t)), 4),
             "ttfa_min_s": round(min(t), 4), "vs_shortest": round(float(np.median(t)) / base, 3), **planning[n]}
            for n, t in times.items()]
    for row in rows:
        log(json.dumps(row))
    return rows


def planning_by_length(inputs: dict[int, list[str]]) -> dict[int, dict]:
    """In this process (this checkout's frontend, no model): seconds the frontend takes over each input whole (what
    `Engine.plan` does before a server that plans a request whole can queue it) and up to its first chunk (what
    `Engine.plan_parts` does before the first part), the median over the takes, with the phonemizer's cache emptied
    before each. The plans' items (a style row per chunk) add microseconds and are left out."""
    sys.path.insert(0, str(ROOT))
    from voicegen.text import Frontend
    from voicegen.text.phonemize import espeak_words

    frontend = Frontend()
    out = {}
    for n, takes in inputs.items():
        whole, first = [], []
        for text in takes:
            espeak_words.cache_clear()
            t = time.perf_counter()
            frontend(text)
            whole.append(time.perf_counter() - t)
            espeak_words.cache_clear()
            t = time.perf_counter()
            next(frontend.chunks(text))
            first.append(time.perf_counter() - t)
        out[n] = {"plan_whole_s": round(float(np.median(whole)), 4),
                  "plan_first_part_s": round(float(np.median(first)), 4)}
    return out


def batch_cost(repeats: int = 3) -> dict:
    """In process, no server: CPU seconds per audio second for 8 one-word sentences rendered one at a time and as
    one batch, on one thread (so that other processes' load moves wall time, not the CPU time compared)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from voicegen import Engine, Request

    torch.set_num_threads(1)
    engine = Engine(device="cpu")
    words = ["Yes.", "No.", "Okay.", "Thanks.", "Hello.", "Right.", "Sure.", "Great."]
    engine.synthesize("Warm up.")
    runs = []
    for _ in range(repeats):
        for mode in ("one at a time", "one batch"):
            plans = [engine.plan(Request(w, "jf_alpha", 1.0, 0)) for w in words]
            cpu = time.process_time()
            if mode == "one at a time":
                for plan in plans:
                    engine.renderer.render(plan.items)
            else:
                engine.renderer.render([item for plan in plans for item in plan.items])
            cpu = time.process_time() - cpu
            audio = sum(len(item.audio) for plan in plans for item in plan.items) / SAMPLE_RATE
            runs.append({"mode": mode, "cpu_s": round(cpu, 3), "audio_s": round(audio, 3),
                         "cpu_s_per_audio_s": round(cpu / audio, 3)})
            log(json.dumps(runs[-1]))
    return {"threads": 1, "words": words, "runs": runs}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--levels", default="1,4,16,64", help="concurrent clients per level (comma-separated)")
    ap.add_argument("--min-requests", type=int, default=8,
                    help="requests per level at least (each client sends ceil(this / clients), at least 1)")
    ap.add_argument("--voice", default="nova")
    ap.add_argument("--max-chars", type=int, default=60, help="corpus sentences up to this long (default 60: ~3 s)")
    ap.add_argument("--url", help="benchmark a running server instead of starting one")
    ap.add_argument("--api-key", default=KEY)
    ap.add_argument("--server-args", default="", help="extra `voicegen serve` flags, e.g. '--max-turn-items 16'")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/serve-<device>-<date>.json)")
    ap.add_argument("--batch-cost", action="store_true",
                    help="instead: CPU time per audio second, one at a time vs one batch, in process (no server)")
    ap.add_argument("--ttfa-lengths", help="instead: time to first audio of one client against the input's length "
                    "(characters after the first sentence, comma-separated, e.g. 0,1000,4000)")
    ap.add_argument("--repeats", type=int, default=7, help="requests per length for --ttfa-lengths")
    args = ap.parse_args()
    if args.batch_cost:
        result = {"date": datetime.date.today().isoformat(), "command": "python benchmarks/serve.py --batch-cost",
                  **batch_cost()}
        path = Path(args.out or ROOT / "benchmarks" / "results" / f"serve-batch-cost-{result['date']}.json")
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
        return

    levels = [int(x) for x in args.levels.split(",")]
    proc = None
    if args.url:
        url, key = args.url.rstrip("/"), args.api_key
    else:
        proc, url = start_server(args.device, args.server_args.split())
        key = KEY
    if args.ttfa_lengths:
        try:
            rows = ttfa_by_length(url, key, [int(x) for x in args.ttfa_lengths.split(",")], args.repeats, args.voice)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(60)
        result = {"date": datetime.date.today().isoformat(), "device": args.device,
                  "command": "python benchmarks/serve.py " + " ".join(sys.argv[1:]),
                  "baseline": "time to first audio of the shortest input, same run", "lengths": rows}
        path = Path(args.out or ROOT / "benchmarks" / "results" / f"serve-ttfa-{args.device}-{result['date']}.json")
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\n{'extra chars':>11} {'input chars':>11} {'ttfa p50 s':>10} {'min s':>7} {'vs shortest':>11} "
              f"{'plan whole s':>12} {'plan first s':>12}")
        for r in rows:
            print(f"{r['extra_chars']:>11} {r['input_chars']:>11} {r['ttfa_p50_s']:>10.3f} {r['ttfa_min_s']:>7.3f} "
                  f"{r['vs_shortest']:>11.2f} {r['plan_whole_s']:>12.4f} {r['plan_first_part_s']:>12.4f}")
        print(f"\nwrote {path}")
        return
    corpus = texts(args.max_chars)
    rows = []
    try:
        for clients in levels:
            per_client = max(1, math.ceil(args.min_requests / clients))
            before = metrics(url, key)
            load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
            started = time.monotonic()
            results = asyncio.run(run_level(url, key, clients, per_client, corpus, args.voice))
            wall = time.monotonic() - started
            after = metrics(url, key)

            def delta(name):
                return after.get(name, 0.0) - before.get(name, 0.0)

            audio = sum(r["audio_s"] for r in results)
            failed = [r["error"] for r in results if "error" in r]
            n = len(results)
            results = [r for r in results if "error" not in r] or [{"latency": float("nan"), "ttfa": float("nan")}]
            row = {
                "clients": clients, "requests": n, "failed": len(failed), "load_avg_1m_at_start": round(load, 2),
                "failures": sorted(set(failed))[:5], "audio_s": round(audio, 2), "wall_s": round(wall, 2),
                "throughput_x_realtime": round(audio / wall, 3),
                "latency_p50_s": round(pct([r["latency"] for r in results], 50), 3),
                "latency_p95_s": round(pct([r["latency"] for r in results], 95), 3),
                "ttfa_p50_s": round(pct([r["ttfa"] for r in results], 50), 3),
                "ttfa_p95_s": round(pct([r["ttfa"] for r in results], 95), 3),
                "chunks_per_forward_pass": round(delta("voicegen_batch_size_sum") / max(delta("voicegen_batch_size_count"), 1), 2),
                "chunks_per_turn": round(delta("voicegen_turn_size_sum") / max(delta("voicegen_turn_size_count"), 1), 2),
            }
            rows.append(row)
            log(json.dumps(row))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(60)
    base = rows[0]["throughput_x_realtime"]
    for row in rows:
        row["throughput_vs_first_level"] = round(row["throughput_x_realtime"] / base, 2)

    import torch

    out = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "device": args.device,
        "command": "python benchmarks/serve.py " + " ".join(sys.argv[1:]),
        "server_args": args.server_args,
        "baseline": f"throughput at {levels[0]} client(s), same run",
        "levels": rows,
    }
    path = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"serve-{args.device}-{out['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\n{'clients':>7} {'requests':>8} {'failed':>6} {'audio s':>8} {'x real time':>11} {'vs 1':>5} {'latency p50/p95 s':>18} "
          f"{'ttfa p50/p95 s':>15} {'chunks/pass':>11} {'chunks/turn':>11}")
    for r in rows:
        print(f"{r['clients']:>7} {r['requests']:>8} {r['failed']:>6} {r['audio_s']:>8.1f} {r['throughput_x_realtime']:>11.3f} "
              f"{r['throughput_vs_first_level']:>5.2f} {r['latency_p50_s']:>8.2f} / {r['latency_p95_s']:<7.2f} "
              f"{r['ttfa_p50_s']:>6.2f} / {r['ttfa_p95_s']:<6.2f} {r['chunks_per_forward_pass']:>11.2f} "
              f"{r['chunks_per_turn']:>11.2f}")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
