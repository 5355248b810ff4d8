"""The long convolutions through the FFT (voicegen.model.fft_conv): the same numbers as `F.conv1d` to float32
rounding for any shape, used exactly where and when they are meant to be, and the default CPU engine's audio the
same as the direct convolutions' audio."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from voicegen.model import fft_conv
from voicegen.model.fft_conv import SpectralConvs, fft_conv1d, kernel_spectrum
from voicegen.model.layers import Conv1d


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 3),
    c_in=st.integers(1, 24),
    c_out=st.integers(1, 24),
    frames=st.integers(1, 300),
    half_taps=st.integers(0, 7),
    dilation=st.integers(1, 6),
    block=st.sampled_from([16, 32, 64]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fft_conv1d_equals_conv1d_for_any_shape(rows, c_in, c_out, frames, half_taps, dilation, block, bias, seed):
    taps = 2 * half_taps + 1
    if taps >= block:
        return
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, c_in, frames, generator=g)
    w = torch.randn(c_out, c_in, taps, generator=g)
    b = torch.randn(c_out, generator=g) if bias else None
    want = F.conv1d(x, w, b, padding=dilation * (taps - 1) // 2, dilation=dilation)
    got = fft_conv1d(x, kernel_spectrum(w, block), b, taps, dilation)
    assert got.shape == want.shape
    scale = want.abs().max().item() + 1e-6
    assert (got - want).abs().max().item() <= 1e-5 * scale


def test_fft_conv1d_refuses_what_it_cannot_compute():
    x, w = torch.randn(1, 4, 20), torch.randn(4, 4, 4)
    with pytest.raises(ValueError, match="odd kernels"):
        fft_conv1d(x, kernel_spectrum(w, 16), None, 4)
    with pytest.raises(ValueError, match="too short"):
        fft_conv1d(x, kernel_spectrum(torch.randn(4, 4, 17), 16), None, 17)


def test_the_spectra_are_the_generators_long_convolutions_and_nothing_else(network):
    spectra = SpectralConvs(network)
    names = {name for name, m in network.named_modules() if m in spectra.spectra}
    want = set()
    for name, m in network.named_modules():
        if isinstance(m, torch.nn.Conv1d) and not isinstance(m, torch.nn.ConvTranspose1d) and m.kernel_size[0] >= 7 \
                and m.in_channels >= 64 and m.out_channels >= 64:
            want.add(name)
    assert names == want
    # the residual blocks' 7- and 11-tap convolutions of both stages, with the noise branch's: 36 of them
    assert len(names) == 36 and all(".resblocks." in n or ".noise_res." in n for n in names), sorted(names)
    assert not any("conv_post" in n for n in names)
    assert spectra.nbytes == sum(s.numel() * 8 for s in spectra.spectra.values())
    # blocks of 128 samples (65 bins) for the 128-channel stage, 64 (33 bins) for the 256-channel one
    assert {(m.in_channels, s.shape[0]) for m, s in spectra.spectra.items()} == {(128, 65), (256, 33)}


def _spy(monkeypatch) -> list:
    calls = []
    real = fft_conv.fft_conv1d

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    import voicegen.model.layers as layers

    monkeypatch.setattr(layers, "fft_conv1d", spy)
    return calls


def test_a_convolution_goes_through_the_fft_only_where_its_spectra_are_active(monkeypatch):
    calls = _spy(monkeypatch)
    conv = Conv1d(64, 64, 7, padding=9, dilation=3).eval()
    x = torch.randn(2, 64, 50)
    spectra = SpectralConvs(conv)
    assert len(spectra) == 1
    with torch.no_grad():
        direct = conv(x)
        assert calls == []  # not active: direct
        with spectra.active():
            fast = conv(x)
            assert len(calls) == 1
            seen = []  # another thread does not see this thread's spectra
            t = threading.Thread(target=lambda: seen.append(conv(x)))
            t.start()
            t.join()
            assert len(calls) == 1
            with torch.autocast("cpu", dtype=torch.bfloat16):  # reduced precision keeps the direct convolution
                conv(x)
            assert len(calls) == 1
        conv(x)
        assert len(calls) == 1  # inactive again after the block
    with spectra.active():
        conv(x)  # autograd on: direct (the spectra are not the weights autograd would differentiate)
    assert len(calls) == 1
    assert torch.allclose(fast, direct, rtol=0, atol=1e-5 * direct.abs().max().item())
    torch.testing.assert_close(seen[0], direct, rtol=0, atol=0)


def test_short_narrow_and_strided_convolutions_stay_direct():
    module = torch.nn.ModuleDict({
        "short": Conv1d(64, 64, 3, padding=1),
        "narrow": Conv1d(128, 22, 7, padding=3),
        "strided": Conv1d(64, 64, 7, stride=2, padding=3),
        "causal": Conv1d(64, 64, 7, padding=0),
        "long": Conv1d(64, 64, 11, padding=25, dilation=5),
    })
    spectra = SpectralConvs(module)
    assert set(spectra.spectra) == {module["long"]}


def test_the_cpu_default_uses_the_fft_and_the_debug_path_does_not():
    from voicegen import Performance
    from voicegen.performance import cpu_supports_bf16

    cpu = torch.device("cpu")
    assert Performance.default(cpu).check(cpu).fft_convs
    assert not Performance().check(cpu).fft_convs
    # compiled or reduced precision: the direct convolutions (the option resolves off, nothing is prepared)
    assert not Performance.default(cpu, compile=True).check(cpu).fft_convs
    if cpu_supports_bf16():
        assert not Performance(fft_convs=True, dtype=torch.bfloat16).check(cpu).fft_convs
    with pytest.raises(ValueError, match="fft_convs is for the CPU"):
        Performance(fft_convs=True).check(torch.device("meta"))


def test_the_default_engine_sounds_as_the_direct_convolutions_do(engine):
    """Same text, voice and seed: the default CPU engine (FFT) and an engine with direct convolutions give the same
    durations and the same audio to float32 rounding (amplified a little by the network: see
    conftest.assert_batch_invariant)."""
    from voicegen import Engine, Performance
    from voicegen.eval.spectral import log_mel_distance

    assert engine.renderer.performance.fft_convs and engine.renderer._spectra is not None
    direct = Engine(device="cpu", performance=Performance())
    text = "Every morning the baker opens her shop before sunrise."
    a = engine.synthesize(text, voice="jf_alpha", seed=3).samples
    b = direct.synthesize(text, voice="jf_alpha", seed=3).samples
    assert a.shape == b.shape
    assert np.sqrt(np.mean((a - b) ** 2)) <= 1e-3 * np.sqrt(np.mean(b**2))
    assert log_mel_distance(a, b) <= 0.01
