"""Our per-item STFT/iSTFT against torch's, alone and inside padded batches."""

import torch

from voicegen.model.layers import lengths_to_mask
from voicegen.model.vocoder.stft import istft, stft

N_FFT, HOP = 20, 5


def test_stft_matches_torch_stft_for_an_unpadded_item():
    x = torch.randn(1, 3000)
    mag, phase = stft(x, torch.tensor([3000]), N_FFT, HOP)
    ref = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, pad_mode="reflect", return_complex=True)
    assert mag.shape == ref.shape
    torch.testing.assert_close(mag, ref.abs(), atol=1e-5, rtol=1e-5)
    # compare phases as unit phasors (angles of +-pi are the same angle)
    torch.testing.assert_close(torch.polar(torch.ones_like(phase), phase), ref / ref.abs().clamp(min=1e-12), atol=1e-4, rtol=0)


def test_stft_of_a_padded_item_equals_the_item_alone():
    long, short = torch.randn(2000), torch.randn(1200)
    batch = torch.zeros(2, 2000)
    batch[0], batch[1, :1200] = long, short
    mag, phase = stft(batch, torch.tensor([2000, 1200]), N_FFT, HOP)
    alone_mag, alone_phase = stft(short[None], torch.tensor([1200]), N_FFT, HOP)
    frames = 1200 // HOP + 1
    torch.testing.assert_close(mag[1:, :, :frames], alone_mag, atol=1e-6, rtol=0)
    torch.testing.assert_close(phase[1:, :, :frames], alone_phase, atol=1e-5, rtol=0)


def test_istft_matches_torch_istft():
    spec = torch.randn(1, N_FFT // 2 + 1, 401, dtype=torch.complex64)
    spec[:, 0] = spec[:, 0].real + 0j  # DC and Nyquist bins of a real signal are real
    spec[:, -1] = spec[:, -1].real + 0j
    ours = istft(spec.abs(), spec.angle(), torch.ones(1, 1, 401), N_FFT, HOP)
    ref = torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True)
    assert ours.shape == ref.shape == (1, 2000)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_istft_of_a_padded_batch_equals_each_item_alone():
    frames = torch.tensor([401, 241])
    mag, phase = torch.rand(2, 11, 401), torch.randn(2, 11, 401)
    mask = lengths_to_mask(frames, 401)
    batch = istft(mag, phase, mask, N_FFT, HOP)
    alone = istft(mag[1:, :, :241], phase[1:, :, :241], torch.ones(1, 1, 241), N_FFT, HOP)
    torch.testing.assert_close(batch[1:, : alone.shape[1]], alone, atol=1e-6, rtol=0)
