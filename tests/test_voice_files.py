"""Voice files (safetensors, no pickle), the user's voice folder, voices by path and blend, `voicegen voice`."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from voicegen.weights import Voice, VoiceBank, VoiceError, install_voice, read_voice, user_voice_dir
from voicegen.weights.voice_file import FORMAT


def a_voice(name="host", pitch=-2.5, speed=1.1, seed=0) -> Voice:
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(510, 256, generator=g) * 0.3
    table[7, 3] = float.fromhex("0x1.fffffep-126")  # a subnormal-adjacent value: any lossy conversion shows
    return Voice(name, table, pitch=pitch, speed=speed, provenance={"method": "fit", "start": "jf_alpha", "loss": [0.5, 0.25]})


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEGEN_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_voice_files_round_trip_bit_for_bit(tmp_path):
    """Catches a lossy table (dtype or byte-order conversion), lost metadata, and a writer whose header order
    changes between writes (safetensors' own writer orders metadata by a hash map)."""
    voice = a_voice()
    path = voice.save(tmp_path / "host.voice")
    loaded = read_voice(path)
    assert loaded.table.dtype == torch.float32
    assert loaded.table.numpy().tobytes() == voice.table.numpy().tobytes()
    assert (loaded.name, loaded.pitch, loaded.speed, loaded.provenance) == (voice.name, voice.pitch, voice.speed, voice.provenance)
    again = loaded.save(tmp_path / "again.voice")
    assert again.read_bytes() == path.read_bytes()
    # written in another process too: no per-process hash order
    code = ("import sys; from voicegen.weights import read_voice; "
            "read_voice(sys.argv[1]).save(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "other.voice")], check=True,
                   env=dict(os.environ, PYTHONHASHSEED="123"))
    assert (tmp_path / "other.voice").read_bytes() == path.read_bytes()


def test_a_voice_file_is_plain_safetensors(tmp_path):
    """Catches drift from the documented format: any safetensors reader must see one float32 'style' tensor
    (510, 256) and the metadata keys."""
    from safetensors import safe_open

    path = a_voice().save(tmp_path / "v.voice")
    with safe_open(str(path), framework="np") as f:
        assert list(f.keys()) == ["style"]
        style = f.get_tensor("style")
        meta = f.metadata()
    assert style.dtype == np.float32 and style.shape == (510, 256)
    assert meta["format"] == FORMAT and meta["version"] == "1" and meta["name"] == "host"
    assert float(meta["pitch"]) == -2.5 and float(meta["speed"]) == 1.1
    assert json.loads(meta["provenance"])["method"] == "fit"


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _safetensors_bytes(tensors: dict, metadata: dict | None) -> bytes:
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        dtype = {np.float32: "F32", np.float64: "F64"}[array.dtype.type]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def test_corrupt_and_foreign_files_are_clear_errors_never_code(tmp_path):
    """Catches a loader that unpickles (a pickle that would run a command), one that crashes with a raw
    library error or accepts a foreign safetensors file (model weights), a wrong shape or dtype, extra tensors,
    NaNs, out-of-range defaults or a newer format version."""
    good = a_voice().to_bytes()
    marker = tmp_path / "pwned"
    boom = _Boom()
    boom.marker = marker
    table = np.zeros((510, 256), np.float32)
    meta = {"format": FORMAT, "version": "1", "name": "x", "pitch": "0.0", "speed": "1.0", "provenance": "{}"}
    cases = {
        "garbage.voice": (b"not a voice at all" * 10, "not a voice file"),
        "empty.voice": (b"", "not a voice file"),
        "truncated.voice": (good[: len(good) // 2], "not a voice file"),
        "pickle.voice": (pickle.dumps(boom), "not a voice file"),
        "weights.voice": (_safetensors_bytes({"decoder.weight": table}, {"format": "pt"}), "not a voicegen voice"),
        "nometa.voice": (_safetensors_bytes({"style": table}, None), "not a voicegen voice"),
        "shape.voice": (_safetensors_bytes({"style": table[:100]}, meta), r"must be float32 \(510, 256\)"),
        "dtype.voice": (_safetensors_bytes({"style": table.astype(np.float64)}, meta), "must be float32"),
        "extra.voice": (_safetensors_bytes({"style": table, "more": table}, meta), "exactly one tensor"),
        "nan.voice": (_safetensors_bytes({"style": table + np.nan}, meta), "NaN"),
        "pitch.voice": (_safetensors_bytes({"style": table}, meta | {"pitch": "40"}), "pitch must be"),
        "speed.voice": (_safetensors_bytes({"style": table}, meta | {"speed": "nan"}), "speed must be"),
        "provenance.voice": (_safetensors_bytes({"style": table}, meta | {"provenance": "[1"}), "provenance"),
        "newer.voice": (_safetensors_bytes({"style": table}, meta | {"version": "9"}), "newer than this voicegen"),
        "name.voice": (_safetensors_bytes({"style": table}, meta | {"name": "a b+c"}), "bad voice name"),
    }
    for filename, (blob, message) in cases.items():
        path = tmp_path / filename
        path.write_bytes(blob)
        with pytest.raises(VoiceError, match=message) as err:
            read_voice(path)
        assert filename in str(err.value), err.value  # names the file
    assert not marker.exists()
    with pytest.raises(VoiceError, match="not found"):
        read_voice(tmp_path / "missing.voice")


def test_user_voices_load_by_name_and_a_broken_one_fails_only_when_used(data_dir):
    """Catches a bank that ignores the user's folder, lets a user file shadow a built-in voice, or fails to
    build (every engine!) because one user file is corrupt."""
    assert user_voice_dir() == data_dir / "voices"
    path = install_voice(a_voice("host"))
    assert path == data_dir / "voices" / "host.voice"
    (data_dir / "voices" / "broken.voice").write_bytes(b"\x00" * 64)
    (data_dir / "voices" / "jf_alpha.voice").write_bytes(a_voice("jf_alpha").to_bytes())
    bank = VoiceBank()
    assert {"host", "broken", "jf_alpha"} <= set(bank.names)
    assert bank.voice("host").pitch == -2.5
    assert torch.equal(bank.table("jf_alpha"), VoiceBank(user=False).table("jf_alpha"))  # built-in wins
    with pytest.raises(VoiceError, match="broken.voice"):
        bank.voice("broken")
    with pytest.raises(VoiceError, match="built-in voice"):
        install_voice(a_voice("jm_kumo"))
    with pytest.raises(VoiceError, match="exists already"):
        install_voice(a_voice("host"))


def test_a_user_voice_file_whose_name_is_no_voice_name_is_not_listed(data_dir):
    """Catches `voicegen voices` listing a file put there by hand ("bad name.voice") that no request can name."""
    install_voice(a_voice("host"))
    (data_dir / "voices" / "bad name.voice").write_bytes(a_voice("host").to_bytes())
    with pytest.warns(UserWarning, match="bad name.voice.*rename it"):
        bank = VoiceBank()
    assert "host" in bank.names and "bad name" not in bank.names


def test_voices_by_path_and_in_blends(tmp_path):
    """Catches a path treated as a name, a blend that drops a file's table or its pitch/speed defaults, and an
    unknown name that does not list the known voices."""
    bank = VoiceBank(user=False)
    host = a_voice("host", pitch=-4.0, speed=1.2)
    path = str(host.save(tmp_path / "host.voice"))
    assert torch.equal(bank.table(path), host.table)
    mixed = bank.voice(f"{path}:3+jm_kumo:1")
    expected = host.table * 0.75 + bank.table("jm_kumo") * 0.25
    assert torch.allclose(mixed.table, expected, atol=1e-6)
    assert mixed.pitch == pytest.approx(-3.0) and mixed.speed == pytest.approx(1.15)
    assert mixed.provenance == {"method": "blend", "spec": f"{path}:3+jm_kumo:1"}
    with pytest.raises(VoiceError, match=r"unknown voice 'jf_alhpa'; known voices: jf_alpha, "):
        bank.voice("jf_alhpa")
    engine_bank = VoiceBank(path, user=False)  # Engine(voices=...) accepts .voice files as well
    assert "host" in engine_bank and engine_bank.voice("host").speed == 1.2


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "voicegen", *args], capture_output=True, text=True, timeout=300,
                          env=env or dict(os.environ))


def test_cli_blend_show_and_list(tmp_path, data_dir):
    """Catches `voicegen voices` breaking its one-name-per-line output or missing user voices, a blend file that
    is not the blend, and errors that are not one line with exit status 2."""
    env = dict(os.environ, VOICEGEN_DATA=str(data_dir))
    out = tmp_path / "mix.voice"
    r = _cli("voice", "blend", "jf_alpha:2+jm_kumo:1", "-o", str(out), "--pitch", "-2", env=env)
    assert r.returncode == 0, r.stderr
    mix = read_voice(out)
    bank = VoiceBank(user=False)
    assert torch.allclose(mix.table, bank.table("jf_alpha") * (2 / 3) + bank.table("jm_kumo") / 3, atol=1e-6)
    assert (mix.name, mix.pitch, mix.provenance["spec"]) == ("mix", -2.0, "jf_alpha:2+jm_kumo:1")
    r = _cli("voice", "blend", "jf_nezumi+jf_tebukuro", "--name", "duo", env=env)  # into the user's voices
    assert r.returncode == 0, r.stderr
    r = _cli("voices", env=env)
    assert r.returncode == 0 and r.stdout.splitlines() == [
        "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo", "duo"]
    r = _cli("voices", "--long", env=env)
    assert "duo\tuser (blend)\tpitch 0" in r.stdout
    r = _cli("voice", "show", str(out), env=env)
    assert json.loads(r.stdout)["pitch"] == -2.0
    for bad in (["voice", "blend", "jf_alpha", "-o", str(tmp_path / "x.wav")],
                ["voice", "blend", "jf_alpha", "-o", str(out)],  # exists, no --force
                ["voice", "blend", "nobody", "--name", "z"],
                ["voice", "show", str(tmp_path / "missing.voice")]):
        r = _cli(*bad, env=env)
        assert r.returncode == 2 and r.stderr.startswith("voicegen: error: ") and r.stderr.count("\n") == 1, r.stderr


def test_a_blend_ending_in_a_voice_file_gets_a_valid_name(tmp_path, monkeypatch, capsys):
    """QA: a blend whose last part was a .voice file was refused ('bad voice name jf_alpha_mix.voice'), while the
    same parts in the other order worked. Catches: a blend name that keeps a file's '.voice' or folders, and a
    blend that drops the file's table."""
    from voicegen import cli
    from voicegen.weights.voice_file import check_voice_name

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    host = a_voice("host", pitch=-2.0, speed=1.0)
    host.save(tmp_path / "mix.voice")
    host.save(tmp_path / "sub" / "h.voice")
    bank = VoiceBank(user=False)
    for spec, name, share in (("jf_alpha+mix.voice", "jf_alpha_mix", 1 / 2), ("jf_alpha+sub/h.voice", "jf_alpha_h", 1 / 2),
                              ("mix.voice+jf_alpha", "mix_jf_alpha", 1 / 2), ("jf_alpha:2+mix.voice:1", "jf_alpha_2_mix_1", 1 / 3),
                              (f"jf_alpha+{tmp_path / 'sub' / 'h.voice'}", "jf_alpha_h", 1 / 2)):
        voice = bank.voice(spec)
        assert voice.name == name and check_voice_name(voice.name) == name
        assert voice.pitch == pytest.approx(-2.0 * share)  # the file's pitch, weighted
        assert torch.allclose(voice.table, bank.table("jf_alpha") * (1 - share) + host.table * share, atol=1e-6)
    from voicegen.weights.voices import blend_name  # odd specs: still a valid name

    for spec in ("a.voice.voice+b.voice", "x+.voice", "+".join(["a" * 40 + ".voice"] * 3)):
        check_voice_name(blend_name(spec))
    assert cli.main(["voice", "show", "jf_alpha+mix.voice"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "jf_alpha_mix"


def test_voice_tables_of_the_wrong_size_are_refused_where_the_user_gives_them(tmp_path):
    """QA: a (10, 256) .npy loaded and rendered. Catches: a table the user gives (a file, a dict, a table as the
    voice) with other than 510 rows; a Voice in memory may still have fewer (the docstring's promise)."""
    from voicegen.weights import load_voice_file

    small = np.zeros((10, 256), np.float32)
    np.save(tmp_path / "bad.npy", small)
    np.savez(tmp_path / "bad.npz", bad=small)
    torch.save({"bad": torch.zeros(511, 256)}, tmp_path / "bad.pt")
    message = r"a voice table has shape \(510, 1, 256\) or \(510, 256\); got \((10|511), 256\)"
    for call in (lambda: load_voice_file(tmp_path / "bad.npy"), lambda: load_voice_file(tmp_path / "bad.npz"),
                 lambda: load_voice_file(tmp_path / "bad.pt"), lambda: VoiceBank(str(tmp_path / "bad.npy"), user=False),
                 lambda: VoiceBank({"bad": small}, builtin=False, user=False),
                 lambda: VoiceBank(user=False).voice(small), lambda: VoiceBank(user=False).voice(np.zeros((10, 1, 256)))):
        with pytest.raises(VoiceError, match=message):
            call()
    assert VoiceBank({"ok": np.zeros((510, 1, 256))}, builtin=False, user=False).table("ok").shape == (510, 256)
    assert Voice("short", torch.zeros(10, 256)).table.shape == (10, 256)  # in memory: allowed
    with pytest.raises(VoiceError, match="at most 510 rows"):
        Voice("long", torch.zeros(511, 256))


def test_out_of_range_pitch_or_speed_names_the_voices_own_and_the_request(engine, tmp_path):
    """QA: with a voice of pitch -2, --pitch -12 failed with 'pitch must be ... from -12 to 12; got -14.0', a
    number the user never typed. Catches: a message that does not say the voice's own value, the request's and
    their total, or the request range that works with this voice."""
    from voicegen import Request

    path = str(Voice("low", engine.voice_table("jf_alpha"), pitch=-2.0, speed=1.25).save(tmp_path / "low.voice"))
    with pytest.raises(ValueError) as err:
        engine.plan(Request("Hi there.", path, pitch=-12.0))
    assert str(err.value) == ("pitch out of range: voice 'low' has its own pitch -2, plus the requested -12 gives -14, "
                              "outside -12 to 12 (with this voice, pitch must be from -10 to 12)")
    with pytest.raises(ValueError) as err:
        engine.plan(Request("Hi there.", path, speed=4.0))
    assert str(err.value) == ("speed out of range: voice 'low' has its own speed 1.25, times the requested 4 gives 5, "
                              "outside 0.25 to 4 (with this voice, speed must be from 0.25 to 3.2)")
    plan = engine.plan(Request("Hi there.", path, pitch=-10.0, speed=3.2, seed=0))
    assert plan.items[0].pitch == -12.0 and plan.items[0].speed == pytest.approx(4.0)
    with pytest.raises(ValueError, match="pitch must be a number of semitones from -12 to 12"):
        engine.plan(Request("Hi there.", path, pitch=13.0))  # the request alone out of range: the plain message


def _fail_if_fitted(monkeypatch):
    import voicegen.fit

    def fit_voice(*args, **kwargs):
        raise AssertionError("the fit started before the output was checked")

    monkeypatch.setattr(voicegen.fit, "fit_voice", fit_voice)


def test_voice_fit_checks_its_output_and_recording_before_fitting(tmp_path, data_dir, monkeypatch, capsys):
    """QA: an existing -o without --force, a -o not ending in .voice, a bad --name and an unwritable -o were
    refused only after minutes of fitting, and a missing recording gave libsndfile's 'System error.'. Catches:
    any of these reaching the fit (replaced here by one that fails), an error of more than one line, a file left."""
    import soundfile as sf

    from voicegen import cli

    _fail_if_fitted(monkeypatch)
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path / "rec.wav", np.zeros(24000, np.float32), 24000)
    a_voice("taken").save(tmp_path / "taken.voice")
    install_voice(a_voice("mine"))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        (["-o", "taken.voice"], "taken.voice exists; pass --force to replace it"),
        (["-o", "host.wav"], "voice files end in .voice; got 'host.wav'"),
        (["--name", "a b"], "bad voice name 'a b'"),
        (["--name", "a b", "-o", "h.voice"], "bad voice name 'a b'"),
        (["--name", ""], "--name is empty"),
        (["--name", "jf_alpha"], "'jf_alpha' is a built-in voice"),
        (["--name", "mine"], "a user voice named 'mine' exists already"),
        (["-o", str(blocker / "h.voice")], "is not a directory"),
    ]
    for extra, message in cases:
        assert cli.main(["voice", "fit", "rec.wav", "--text", "Hello.", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("voicegen: error: ") and message in err and err.count("\n") == 1, (extra, err)
    assert cli.main(["voice", "fit", "missing.wav", "--text", "Hello.", "-o", "m.voice"]) == 2
    assert capsys.readouterr().err == "voicegen: error: recording 'missing.wav' not found\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(p.name for p in (data_dir / "voices").iterdir()) == ["mine.voice"]


def test_voice_blend_names_the_empty_name_and_force(data_dir, capsys):
    """QA: --name "" fell back to the blend's name ('jf_alpha' is a built-in voice), and a taken --name did not
    say that --force replaces it. Catches: either message coming back, or --force not replacing."""
    from voicegen import cli

    assert cli.main(["voice", "blend", "jf_alpha", "--name", ""]) == 2
    assert capsys.readouterr().err.startswith("voicegen: error: --name is empty; give the voice a name")
    assert cli.main(["voice", "blend", "jf_alpha", "--name", "dd"]) == 0
    capsys.readouterr()
    assert cli.main(["voice", "blend", "jf_nezumi", "--name", "dd"]) == 2
    err = capsys.readouterr().err
    assert "a user voice named 'dd' exists already" in err and "pass --force to replace it" in err, err
    assert read_voice(data_dir / "voices" / "dd.voice").provenance["spec"] == "jf_alpha"
    assert cli.main(["voice", "blend", "jf_nezumi", "--name", "dd", "--force"]) == 0
    assert read_voice(data_dir / "voices" / "dd.voice").provenance["spec"] == "jf_nezumi"


@pytest.mark.parametrize("value", [1e6, -1e30, 51.0])
def test_a_voice_table_with_extreme_values_is_refused(value):
    """Tables of 1e6 gave silence and larger ones NaN (failing every request in the same batch); the built-in
    voices' values lie within +-3."""
    from voicegen.weights.voices import MAX_TABLE_VALUE, as_voice_table

    table = np.zeros((510, 256), np.float32)
    table[3, 4] = value
    with pytest.raises(VoiceError, match="as large as"):
        as_voice_table(table)
    table[3, 4] = MAX_TABLE_VALUE
    assert float(as_voice_table(table).abs().max()) == MAX_TABLE_VALUE
