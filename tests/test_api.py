"""The public API: synthesize(), voices(), Audio, the Engine's calls and its errors."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import torch
import pytest
import soundfile as sf

import voicegen
from voicegen import Audio, Request, synthesize


def test_voices_lists_the_builtin_voices():
    assert voicegen.voices() == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def test_synthesize_returns_audio_with_sentence_and_word_timings():
    audio = synthesize("Good morning. How are you today?", seed=1)
    assert isinstance(audio, Audio)
    assert audio.sample_rate == 24000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert np.abs(audio.samples).max() <= 1.0
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01  # not silence
    assert 1.5 < audio.duration < 6.0
    assert audio.duration == pytest.approx(len(audio.samples) / 24000)
    first, second = audio.segments
    assert first.text == "Good morning." and second.text.startswith("How are you")
    assert 0 <= first.start < first.end <= second.start < second.end <= audio.duration + 1e-6
    words = [w for s in audio.segments for w in s.words]
    assert [w.text.strip(".?") for w in words] == ["Good", "morning", "How", "are", "you", "today"]
    assert all(a.start < a.end <= b.start + 1e-9 for a, b in zip(words, words[1:]))


def test_seed_makes_output_reproducible_bit_for_bit():
    a = synthesize("Reproducible output matters.", seed=42)
    b = synthesize("Reproducible output matters.", seed=42)
    c = synthesize("Reproducible output matters.", seed=43)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_speed_changes_duration():
    slow = synthesize("The train leaves at noon.", speed=0.8, seed=0).duration
    fast = synthesize("The train leaves at noon.", speed=1.25, seed=0).duration
    assert fast < 0.85 * slow


def test_voice_blend_is_accepted(engine):
    audio = engine.synthesize("Blended voices.", voice="jf_alpha+jf_nezumi", seed=0)
    assert audio.duration > 0.5
    with pytest.raises(ValueError, match="blend weight"):
        engine.voice_table("jf_alpha:x+jf_nezumi")


def test_long_text_is_chunked_and_rendered(engine):
    sentence = "This sentence is repeated to build a long text for the engine to speak. "
    text = sentence * 45 + "And one last sentence without any punctuation at all that goes on " * 8
    assert len(text) > 3000
    audio = engine.synthesize(text, seed=3)
    assert len(audio.segments) >= 46
    assert audio.duration > 150
    assert all(s.end > s.start for s in audio.segments)


def test_synthesize_many_keeps_order_and_settings(engine, assert_batch_invariant):
    texts = ["One.", "Two is a longer sentence than one.", "Three!"]
    many = engine.synthesize_many([Request(t, voice="jm_kumo", seed=5) for t in texts])
    assert [a.segments[0].text for a in many] == texts
    alone = engine.synthesize(texts[1], voice="jm_kumo", seed=5)
    assert_batch_invariant(many[1].samples, alone.samples)


def test_concurrent_calls_from_threads_are_batched_and_correct(engine, assert_batch_invariant):
    """Calls that arrive while the worker is busy are rendered together, and each gets its own audio."""
    texts = [f"Caller number {n} is speaking." for n in ("one", "two", "three", "four")]
    results = {}

    def call(i):
        results[i] = engine.synthesize(texts[i], seed=i)

    busy = threading.Thread(target=engine.synthesize, args=("A long first request keeps the worker busy. " * 6,))
    busy.start()
    time.sleep(0.5)  # the worker is now rendering the long request
    before = engine.stats.token_batches
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    busy.join()
    for t in threads:
        t.join()
    assert engine.stats.token_batches - before <= 2  # the four waiting calls shared one token batch (+ the tail of the first)
    for i, text in enumerate(texts):
        assert results[i].segments[0].text == text
        assert_batch_invariant(results[i].samples, engine.synthesize(text, seed=i).samples)


def test_stream_yields_chunks_in_order(engine):
    text = "First sentence here. Second one follows. Third ends it."
    chunks = list(engine.stream(text, seed=2))
    assert [c.segments[0].text for c in chunks] == ["First sentence here.", "Second one follows.", "Third ends it."]
    starts = [c.segments[0].start for c in chunks]
    assert starts == sorted(starts) and starts[0] == 0.0


def test_stream_pieces_keep_their_pauses_and_join_into_the_whole(engine, assert_batch_invariant):
    """Each streamed chunk but the last ends with its pause, and its times count from the start of the text, so
    the joined stream is `synthesize`'s audio (catches a stream that drops the pauses between sentences)."""
    text = "First sentence here. Second one follows. Third ends it."
    chunks = list(engine.stream(text, seed=2))
    whole = engine.synthesize(text, seed=2)
    joined = np.concatenate([c.samples for c in chunks])
    assert_batch_invariant(joined, whole.samples)
    for chunk, seg in zip(chunks, whole.segments):
        assert chunk.segments[0].start == pytest.approx(seg.start) and chunk.segments[0].end == pytest.approx(seg.end)
        assert [w.start for w in chunk.segments[0].words] == pytest.approx([w.start for w in seg.words])


def test_engines_share_one_renderer_each_with_its_own_lexicon(engine):
    from voicegen import Engine

    other = Engine(renderer=engine.renderer, lexicon={"voicegen": "vˈYsʤɛn"})
    assert other.renderer is engine.renderer  # one network in memory
    assert other.frontend("voicegen")[0].phonemes == "vˈYsʤɛn"
    assert engine.frontend("voicegen")[0].phonemes != "vˈYsʤɛn"  # the first engine's frontend is untouched
    assert other.synthesize("voicegen", seed=0).duration > 0.3
    with pytest.raises(ValueError, match="shared renderer"):
        Engine(device="cpu", renderer=engine.renderer)


def test_unknown_voice_lists_the_voices():
    with pytest.raises(ValueError, match=r"unknown voice 'af_heart'.*jf_alpha.*jm_kumo"):
        synthesize("Hello.", voice="af_heart")


@pytest.mark.parametrize("speed", [0, -1.0, float("nan"), 100.0, "fast"])
def test_bad_speed_is_refused(speed):
    with pytest.raises(ValueError, match="speed must be"):
        synthesize("Hello.", speed=speed)


@pytest.mark.parametrize("text", ["", "   \n\t ", "🙂🙂🙂", "\x00\x01"])
def test_empty_or_unspeakable_text_is_a_clear_value_error(text):
    with pytest.raises(ValueError, match="speakable"):
        synthesize(text)


def test_bad_seed_is_refused():
    with pytest.raises(ValueError, match="seed must be an integer"):
        synthesize("Hello.", seed=1.5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"device": "tpu"}, ValueError, r"unknown device 'tpu'; use 'cpu' or 'cuda'"),
    ({"device": "cpu:5"}, ValueError, r"device 'cpu:5': the CPU is one device .*; use 'cpu'"),
    ({"device": 5}, TypeError, r"device must be a str .*; got int"),
    ({"voice": 5}, TypeError, r"voice must be a name, a blend .*; got int"),
    ({"voice": {"jf_alpha": 1}}, TypeError, r"voice must be .*; got dict"),
    ({"voices": ["A"]}, TypeError, r"voices must be a mapping \{speaker: voice\}; got list"),
    ({"voices": "jf_alpha"}, TypeError, r"voices must be a mapping .*; got str"),
])
def test_arguments_of_the_wrong_kind_get_a_clear_error(kwargs, error, message):
    """Found by probing the API with bad input: a device torch does not know raised torch's own RuntimeError, a
    number for the device 'Cannot access accelerator', a list of voices an AttributeError from deep in the
    script path, a string of voices was read letter by letter ('unknown speaker j'), a number for the voice a
    message about tensor shapes."""
    text = "A: Hello.\nB: Hi." if "voices" in kwargs else "Hello."
    with pytest.raises(error, match=message):
        synthesize(text, **kwargs)


def test_a_voice_with_a_script_is_refused_not_ignored():
    """A script's voices come from `voices` and its cast: `voice=` beside them was silently ignored."""
    from voicegen.podcast import Script

    with pytest.raises(ValueError, match=r"voice='jf_alpha' is for plain text; .*voices=\{speaker: voice\}"):
        synthesize("A: Hello.\nB: Hi.", voice="jf_alpha", voices={"A": "jf_nezumi"})
    with pytest.raises(ValueError, match="is for plain text"):
        synthesize(Script.parse("A: Hello."), voice="jf_alpha")


def test_a_voice_file_path_may_be_a_path_object(tmp_path):
    """os.PathLike voices are read like their str (a Path was taken for a table and refused by its shape)."""
    from pathlib import Path

    engine = voicegen.get_engine("cpu")
    voice = engine.voice_bank.voice("jf_alpha")
    path = tmp_path / "copy.voice"
    voice.save(path)
    assert isinstance(path, Path)
    np.testing.assert_array_equal(engine.voice_table(path).numpy(), engine.voice_table(str(path)).numpy())


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"])
def test_save_writes_a_readable_file(tmp_path, ext):
    audio = synthesize("Saving to disk.", seed=0)
    path = audio.save(tmp_path / f"out{ext}")
    data, rate = sf.read(path)
    assert rate == 24000
    assert abs(len(data) - len(audio.samples)) <= 2048  # lossy codecs may pad
    assert not list(tmp_path.glob("*.part"))


def test_saving_minutes_of_audio_as_ogg_does_not_crash(tmp_path):
    """One libsndfile write of ~2**21 frames into an .ogg file overflows libvorbis's stack (a segfault: 90 s of audio
    at 24 kHz did, in one `sf.write`); in a child process, so that a crash fails this test instead of the run."""
    code = ("import numpy as np; from voicegen.audio import Audio; "
            "Audio((0.3 * np.sin(np.arange(24000 * 100) * 0.0576)).astype(np.float32)).save(r'%s')" % (tmp_path / "long.ogg"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    data, rate = sf.read(tmp_path / "long.ogg")
    assert rate == 24000 and abs(len(data) - 100 * rate) <= 2048 and not list(tmp_path.glob("*.part"))


def test_save_refuses_unknown_extension_and_leaves_nothing(tmp_path):
    audio = Audio(np.zeros(2400, np.float32))
    with pytest.raises(ValueError, match=r"unknown extension '\.xyz'.*\.wav"):
        audio.save(tmp_path / "out.xyz")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import voicegen.audio as audio_module

    def broken_write(self, data):  # the temporary file is open and holds a header when the disk fills up
        raise OSError("disk full")

    monkeypatch.setattr("soundfile.SoundFile.write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        audio_module.Audio(np.zeros(100, np.float32)).save(tmp_path / "x.wav")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc (Linux)")
@pytest.mark.parametrize("voice", ["jf_alpha", "jf_alpha+jm_kumo:2"])
def test_planning_in_another_thread_starts_no_openmp_pool(engine, voice):
    """Catches torch work in `engine.plan` large enough to run as an OpenMP parallel region: that gives the
    planning thread (a server's request threads, the podcast frontend's) an OpenMP pool of its own, and two pools in
    one process made rendering 25-45% slower on 2 cores (benchmarks/RESULTS.md, "one OpenMP pool"). A pool shows
    as new OS threads that live while the planning thread does."""
    engine.plan(Request("Warm the frontend up.", voice))  # lazy loads happen once, outside the count
    time.sleep(0.3)  # threads of earlier exited threads are gone
    before, seen = len(os.listdir("/proc/self/task")), {}

    def plan():
        engine.plan(Request("Hello there, how are you today? Fine, thanks.", voice))
        seen["added"] = len(os.listdir("/proc/self/task")) - before - 1  # less this thread itself

    thread = threading.Thread(target=plan)
    thread.start()
    thread.join()
    assert seen["added"] == 0


def test_stream_phonemizes_the_rest_only_after_the_first_chunk(engine, monkeypatch):
    """Catches a stream whose time to first audio grows with the text: the first piece must come after at most
    two sentences have been phonemized (the first, and the next to know whether a pause follows it), the rest
    only when asked for; the pieces are the chunks `plan` makes, in order."""
    frontend = engine.frontend
    original, phonemized = frontend._pieces, []

    def counting(sentence, inline, first=0):
        phonemized.append(sentence)
        return original(sentence, inline, first)

    monkeypatch.setattr(frontend, "_pieces", counting)
    text = " ".join(f"This is sentence number {i}, and it is short." for i in range(1, 9))
    pieces = engine.stream(text, "jf_alpha", seed=3)
    first = next(pieces)
    assert len(phonemized) == 2
    rest = list(pieces)
    assert len(phonemized) == 8
    planned = engine.plan(Request(text, "jf_alpha", seed=3))
    assert [p.segments[0].text for p in [first, *rest]] == [c.written for c in planned.chunks]


def test_plan_parts_are_the_plan_split_after_its_first_chunk(engine):
    """Catches a streamed request that renders other chunks, seeds or pauses than the whole plan (the server and
    `Engine.stream` plan in two parts), and a one-sentence text that claims more follows."""
    text = "A first sentence. Then, a second one; and a third? Yes!"
    whole = engine.plan(Request(text, "jf_alpha", seed=11, speed=1.1))
    parts = list(engine.plan_parts(Request(text, "jf_alpha", seed=11, speed=1.1)))
    assert [more for _, more in parts] == [True, False] and len(parts[0][0].items) == 1
    chunks = [c for plan, _ in parts for c in plan.chunks]
    items = [i for plan, _ in parts for i in plan.items]
    assert chunks == whole.chunks
    assert [(i.tokens, i.seed, i.speed, i.pitch) for i in items] == [(i.tokens, i.seed, i.speed, i.pitch)
                                                                       for i in whole.items]
    assert all(torch.equal(a.style, b.style) for a, b in zip(items, whole.items))
    (alone, more), = engine.plan_parts("Just one.")
    assert not more and len(alone.chunks) == 1
    with pytest.raises(ValueError, match="nothing speakable"):
        next(engine.plan_parts("... !"))


def test_none_is_the_default_voice_on_every_path(engine):
    """README: "`None` is the default voice". Catches: the engine's calls and Request refusing None (a TypeError)
    while `synthesize` took it."""
    from voicegen.engine import DEFAULT_VOICE

    default = engine.plan(Request("Hi there.", DEFAULT_VOICE)).items[0].style
    assert torch.equal(engine.plan(Request("Hi there.", None)).items[0].style, default)
    assert torch.equal(engine.plan(Request("Hi there.", voice=None)).items[0].style, default)
    assert next(engine.plan_parts(Request("Hi there.", None)))[0].items[0].style.equal(default)


def test_the_default_device_and_its_name_share_one_engine_and_a_closed_one_is_built_again(monkeypatch):
    """synthesize() and synthesize(device="cpu") built two engines on a CPU machine (+760 MB), and once the shared
    engine was closed, every later synthesize() raised WorkerClosed."""
    import types

    import voicegen.api as api
    from voicegen.performance import resolve_device

    built = []
    monkeypatch.setattr(api, "_engines", {})
    monkeypatch.setattr(api, "Engine", lambda device: built.append(device) or types.SimpleNamespace(closed=False))
    first = api.get_engine(None)
    assert api.get_engine(str(resolve_device(None))) is first and len(built) == 1
    first.closed = True
    assert api.get_engine(None) is not first and len(built) == 2


def test_synthesize_many_refuses_a_single_text(engine):
    """A string was taken for a sequence of requests: "Hi" rendered "H" and "i"."""
    with pytest.raises(TypeError, match="sequence of requests"):
        engine.synthesize_many("Hi")


@pytest.mark.parametrize("samples, rate, message", [
    (np.zeros(10, np.int16), 24000, "int16 samples / 32768"),
    (np.zeros((2, 1000), np.float32), 24000, r"got \(2, 1000\)"),
    ([0.0, 0.1], 24000, "got list"),
    (np.zeros(10, np.float32), 0, "positive integer"),
    (np.zeros(10, np.float32), 24000.0, "positive integer"),
])
def test_audio_refuses_what_it_cannot_hold(samples, rate, message):
    """int16 samples were written clipped at full scale, (2, N) as a 1000-channel file, a zero rate divided by zero."""
    with pytest.raises(ValueError, match=message):
        Audio(samples, rate)
