"""Shared fixtures: one engine and one converted network per test session (weights load once)."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_configure(config):
    # A run's conversion cache lives beside the tests' other temporary files unless the caller chose one.
    os.environ.setdefault("VOICEGEN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "voicegen"))


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


BATCH_MAX_ABS = 2e-2
BATCH_REL_RMS = 3e-2


@pytest.fixture(scope="session")
def assert_batch_invariant():
    """Same item, different batch: equal up to float32 rounding as this network amplifies it.

    Padding is masked exactly, so the only differences are rounding differences from kernels that block their
    sums differently for different batch shapes. The network amplifies a few of them: the noise branch takes
    the *phase* of the source's STFT, which jumps by 2*pi where a bin crosses +-pi, so a last-bit change can
    flip one input feature, and the output magnitude is exp() of a conv output. Measured: 98.5% of samples
    within 2e-4; isolated spikes up to 2.2e-3 on sentences and 9.7e-3 on random token strings; RMS of the
    difference up to 2.4e-3 x RMS of the audio (-52 dB) on sentences and 1.2e-2 (-38 dB) on a 0.6 s item of
    random tokens. That last figure is larger than rounding alone obviously explains and is an open question
    (issue 4 note). We hold: same length (durations are integers and must match exactly), RMS of the difference
    <= 3e-2 x RMS of the audio (-30 dB), no sample off by more than 2e-2.
    (A padding leak would change whole frames near an item's end rather than isolated samples.)
    """
    import numpy as np

    def check(a, b):
        assert a.shape == b.shape
        diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
        assert np.abs(diff).max() <= BATCH_MAX_ABS, np.abs(diff).max()
        rms = np.sqrt(np.mean(np.asarray(b, np.float64) ** 2))
        assert np.sqrt(np.mean(diff**2)) <= BATCH_REL_RMS * max(rms, 1e-3), (np.sqrt(np.mean(diff**2)), rms)

    return check
