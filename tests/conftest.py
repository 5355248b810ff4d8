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
