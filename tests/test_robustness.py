"""Issue 15: bad input on purpose. Every CLI case runs the real `voicegen` command in a subprocess and checks the
exit status, that stderr is the one promised line, and that no output file is left; each test names the breakage
(on the code before the issue's fixes) that it catches."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).parents[1]
LONG_TEXT = "This sentence is repeated to build a long text for the engine to speak. " * 40
LONG_SCRIPT = "".join(f"{'Host' if i % 2 == 0 else 'Guest'}: This is turn number {i} of a rather long script, "
                      "and it goes on for a while.\n\n" for i in range(40))


def run(*args, stdin: bytes | None = None, env: dict | None = None, cwd=None, umask: int | None = None):
    """The real command line, as a user runs it (stdin and stderr are not terminals)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "voicegen", *map(str, args)], input=stdin if stdin is not None else b"",
        capture_output=True, env=full_env, cwd=cwd or ROOT, timeout=600,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def one_line(result) -> str:
    """stderr, which must be exactly one line and no traceback."""
    err = result.stderr.decode("utf-8", "replace")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and "terminate called" not in err, err
    return err.strip()


def outputs(folder: Path, keep=()) -> list[str]:
    """Names in `folder` other than the inputs a test put there (temporary files included: none may stay)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ---------------------------------------------------------------------------------------------- class 4: one line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only machine (or torch build)")
def test_device_cuda_without_cuda_is_one_clear_line_and_a_value_error(tmp_path):
    """`--device cuda` on a CPU-only torch was an AssertionError traceback (API: the same AssertionError).
    Catches: any device error that is not a ValueError naming the device and the fix."""
    from voicegen import Engine, synthesize

    result = run("say", "Hi.", "-o", tmp_path / "x.wav", "--device", "cuda")
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("voicegen: error: device 'cuda' is not available") and "--device cpu" in line
    assert outputs(tmp_path) == []
    for make in (lambda: Engine(device="cuda"), lambda: synthesize("Hi.", device="cuda:0")):
        with pytest.raises(ValueError, match="is not available"):
            make()


@pytest.mark.parametrize("content, message", [
    ("", "the script has no turns: write at least one 'Speaker: text' line"),
    ("# only a comment\n\n# and another\n", "the script has no turns: write at least one 'Speaker: text' line"),
    ("\n   \n\n", "the script has no turns: write at least one 'Speaker: text' line"),
    ("---\nHost: jf_alpha\n---\n", "line 2: cast names speaker 'Host' who has no turn"),
])
def test_a_script_without_turns_is_an_error_not_an_empty_file(tmp_path, content, message):
    """An empty or comment-only script wrote a 44-byte WAV with status 0. Catches: any script with nothing to
    say that produces a file or exits 0."""
    script = tmp_path / "show.txt"
    script.write_text(content, encoding="utf-8")
    result = run("podcast", script, "-o", tmp_path / "show.wav", "--device", "cpu")
    assert result.returncode == 2
    assert one_line(result) == f"voicegen: error: {message}"
    assert outputs(tmp_path, keep={"show.txt"}) == []


@pytest.mark.parametrize("command", ["say", "podcast", "lexicon"])
def test_a_file_that_is_not_utf8_is_named_in_one_line(tmp_path, command):
    """A non-UTF-8 script or text file gave a raw codec error with no file name. Catches: a decode error that
    does not name the file, the byte and the fix."""
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\u00e9 au lait: cr\u00e8me.\n".encode("latin-1"))
    out = tmp_path / "x.wav"
    args = {"say": ["say", "-f", bad, "-o", out], "podcast": ["podcast", bad, "-o", out],
            "lexicon": ["say", "Hi.", "-o", out, "--lexicon", bad]}[command]
    result = run(*args, "--device", "cpu")
    assert result.returncode == 2
    line = one_line(result)
    assert f"'{bad}' is not UTF-8 text (byte 0xe9 at offset 3); save it as UTF-8" in line, line
    assert outputs(tmp_path, keep={"latin1.txt"}) == []


def test_bytes_that_are_not_utf8_on_standard_input_are_one_line(tmp_path):
    """Random bytes through stdin ended in a traceback. Catches: a decode error that escapes or names no source."""
    result = run("say", "-o", tmp_path / "x.wav", "--device", "cpu", stdin=bytes(range(128, 256)) + b" hello")
    assert result.returncode == 2
    assert one_line(result).startswith("voicegen: error: standard input is not UTF-8 text (byte 0x80 at offset 0)")
    assert outputs(tmp_path) == []


def test_unexpected_errors_are_one_line_with_status_1(tmp_path, monkeypatch, capsys):
    """A bug (an exception that is not bad input) printed a traceback. Catches: a CLI that lets one through
    without VOICEGEN_DEBUG."""
    from voicegen import cli

    monkeypatch.delenv("VOICEGEN_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_read_text", lambda args: (_ for _ in ()).throw(KeyError("boom")))
    assert cli.main(["say", "Hi.", "-o", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("voicegen: internal error: KeyError: 'boom'")
    assert outputs(tmp_path) == []


def _interrupt(args, delay: float, cwd: Path, signum: int = signal.SIGINT):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Ctrl-C's default handling in the child, even when this test runs where SIGINT is ignored (a background job
    # of a shell without job control, e.g. `nohup ... &`): the child would inherit the ignoring and never stop
    proc = subprocess.Popen([sys.executable, "-m", "voicegen", *map(str, args)], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signum)])
    time.sleep(delay)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.parametrize("command, delay", [("say", 0.3), ("say", 6.0), ("podcast", 8.0)])
def test_ctrl_c_exits_130_with_one_line_and_leaves_no_file(tmp_path, command, delay):
    """Ctrl-C during `say` or a long podcast printed "terminate called without an active exception" and exited
    134; Ctrl-C while the package was still importing printed a KeyboardInterrupt traceback. Catches: any exit
    other than 130 with the single line "voicegen: interrupted", and any file (or temporary) left behind."""
    source = tmp_path / "input.txt"
    source.write_text(LONG_TEXT if command == "say" else LONG_SCRIPT, encoding="utf-8")
    out = tmp_path / ("out.wav" if command == "say" else "show.flac")
    args = ["say", "-f", source, "-o", out] if command == "say" else ["podcast", source, "-o", out]
    rc, err = _interrupt([*args, "--device", "cpu", "--seed", "1"], delay, ROOT)
    assert (rc, err) == (130, "voicegen: interrupted\n"), (rc, err)
    assert outputs(tmp_path, keep={"input.txt"}) == []


@pytest.mark.slow
@pytest.mark.parametrize("command, delay, signum", [("say", 0.3, signal.SIGTERM), ("say", 6.0, signal.SIGTERM),
                                                    ("podcast", 8.0, signal.SIGHUP)])
def test_kill_exits_128_plus_the_signal_with_one_line_and_leaves_no_file(tmp_path, command, delay, signum):
    """`kill` (SIGTERM: also `timeout`, job schedulers, `docker stop`) or a closed terminal (SIGHUP) killed the
    process on the spot (exit -15), leaving the temporary output `.out.wav.xxxx.part` beside the output. Catches: a
    file or temporary left, any exit but 128 + the signal with the single line "voicegen: terminated"."""
    source = tmp_path / "input.txt"
    source.write_text(LONG_TEXT if command == "say" else LONG_SCRIPT, encoding="utf-8")
    out = tmp_path / ("out.wav" if command == "say" else "show.flac")
    args = ["say", "-f", source, "-o", out] if command == "say" else ["podcast", source, "-o", out]
    rc, err = _interrupt([*args, "--device", "cpu", "--seed", "1"], delay, ROOT, signum)
    assert (rc, err) == (128 + signum, "voicegen: terminated\n"), (rc, err)
    assert outputs(tmp_path, keep={"input.txt"}) == []


def _ctrl_c_swallowed() -> None:
    """What compiled code did to a Ctrl-C in a stress run of the test above (60 interrupts, 0.05-1.3 s in): Python
    raised KeyboardInterrupt inside Python code it called, and it dropped the exception (or replaced it: torch
    reading the weight cache, a ValueError; numpy's import, an ImportError)."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):  # the handler runs at the next bytecode of this (the main) thread
            time.sleep(0.01)
    except KeyboardInterrupt:
        return
    raise AssertionError("SIGINT raised nothing: the test needs Python's handling of Ctrl-C in the main thread")


def test_ctrl_c_turned_into_an_error_by_the_weight_loader_is_an_interrupt_not_a_damaged_cache(tmp_path, monkeypatch,
                                                                                               capsys):
    """Ctrl-C while safetensors and torch read the weight cache came out as a ValueError: voicegen called the cache
    damaged, rebuilt it (~10 s) and rendered the whole text (exit 0). Catches: any exit but 130 with the one line,
    the rebuild (a CacheWarning, a new cache file) and an output."""
    import safetensors.torch

    from voicegen import cli
    from voicegen.weights.store import cache_dir

    def interrupted_load(*args, **kwargs):
        _ctrl_c_swallowed()
        raise ValueError("could not determine the shape of object type 'torch.storage.UntypedStorage'")

    caches = {p: p.stat().st_mtime_ns for p in cache_dir().glob("*.safetensors")}
    monkeypatch.setattr(safetensors.torch, "load_file", interrupted_load)
    out = tmp_path / "out.wav"
    assert cli.main(["say", "Hello there.", "-o", str(out), "--device", "cpu"]) == 130
    assert capsys.readouterr().err == "voicegen: interrupted\n"
    assert outputs(tmp_path) == []
    assert {p: p.stat().st_mtime_ns for p in cache_dir().glob("*.safetensors")} == caches
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # main() put Python's handler back


def test_ctrl_c_swallowed_while_rendering_leaves_no_file(tmp_path, monkeypatch, capsys):
    """A Ctrl-C that compiled code drops entirely must still stop the command before its output is renamed into
    place. Catches: a written file, exit 0."""
    from voicegen import cli
    from voicegen.renderer import Renderer

    render = Renderer.render

    def interrupted_render(self, items, *args, **kwargs):
        _ctrl_c_swallowed()
        return render(self, items, *args, **kwargs)

    monkeypatch.setattr(Renderer, "render", interrupted_render)
    out = tmp_path / "out.wav"
    assert cli.main(["say", "Hello there.", "-o", str(out), "--device", "cpu"]) == 130
    assert capsys.readouterr().err == "voicegen: interrupted\n"
    assert outputs(tmp_path) == []


def test_a_ctrl_c_after_the_command_has_begun_to_exit_is_not_raised():
    """`interrupts`: within `deferred`, SIGINT is raised at the stretch's end; once the command is exiting, a late
    SIGINT is remembered, not raised (it would turn exit 130 into a traceback); `check` raises a pending one in the
    main thread only; `uninstall` puts back the handler that was there. Catches: each of these."""
    import threading

    from voicegen import interrupts

    assert interrupts.install()
    try:
        assert not interrupts.install()  # already installed: the outer caller keeps it
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():  # an import of torch: the interrupt waits for its end
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                reached_the_end = True
        assert reached_the_end
        interrupts.exiting()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # not raised
        assert interrupts.pending()
        errors = []
        thread = threading.Thread(target=lambda: errors.append(interrupts.check()))  # returns None there
        thread.start()
        thread.join()
        assert errors == [None]
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        interrupts.uninstall()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and not interrupts.pending()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    interrupts.check()  # not installed: nothing


# ------------------------------------------------------------------------------------- class 5: early, right name


@pytest.mark.parametrize("case", ["directory", "below a file", "read-only folder"])
def test_an_unwritable_output_fails_before_rendering_naming_the_users_path(tmp_path, case):
    """An unwritable output (read-only folder, an existing directory) failed only after the whole render, naming
    the hidden temporary file. Catches: a message without the user's path, one that names a '.part' file, and
    (with the in-process check below) a check that comes after the engine was built."""
    if case == "directory":
        out = tmp_path / "taken.wav"
        out.mkdir()
        expected = f"voicegen: error: cannot write '{out}': it is a directory; give a file name"
    elif case == "below a file":
        (tmp_path / "notes").write_text("a file")
        out = tmp_path / "notes" / "x.wav"
        expected = f"voicegen: error: cannot write '{out}': '{tmp_path / 'notes'}' is not a directory"
    else:
        if os.geteuid() == 0:
            pytest.skip("root may write into a read-only folder")
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        out = folder / "x.wav"
        expected = f"voicegen: error: cannot write '{out}': '{folder}' is not writable (Permission denied)"
    before = outputs(tmp_path)
    result = run("say", LONG_TEXT, "-o", out, "--device", "cpu")
    assert result.returncode == 2
    line = one_line(result)
    assert line == expected and ".part" not in line
    assert outputs(tmp_path) == before


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_that_takes_no_files_is_not_called_read_only():
    """/proc refuses new files with ENOENT, not a permission error: the message must not say 'not writable'."""
    from voicegen.files import check_output

    with pytest.raises(ValueError) as caught:
        check_output("/proc/x.wav")
    assert str(caught.value) == "cannot write '/proc/x.wav': no file can be created in '/proc' (No such file or directory)"


def test_unwritable_outputs_are_refused_before_the_engine_is_built(tmp_path, monkeypatch, capsys):
    """The same, in process: the engine (weights, rendering) must not even be built. Catches: a check that runs
    after the render (the old behaviour), also for the subtitle files of a podcast."""
    from voicegen import cli

    monkeypatch.setattr(cli, "_engine", lambda args: pytest.fail("the engine was built before the output check"))
    (tmp_path / "sub.srt").mkdir()
    (tmp_path / "taken.wav").mkdir()
    script = tmp_path / "show.txt"
    script.write_text("Host: Hello.\n", encoding="utf-8")
    assert cli.main(["say", "Hi.", "-o", str(tmp_path / "taken.wav")]) == 2
    assert cli.main(["podcast", str(script), "-o", str(tmp_path / "ok.wav"), "--srt", str(tmp_path / "sub.srt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("voicegen: error: cannot write") for line in err)
    assert "it is a directory" in err[1]


def test_write_errors_name_the_destination_not_the_temporary_file(tmp_path):
    """Errors raised while writing named the hidden '.name.xxxx.part' file. Catches: any OSError from
    atomic_write whose filename is the temporary one."""
    from voicegen.files import atomic_write

    def fail(tmp):
        raise OSError(28, "No space left on device", tmp)

    with pytest.raises(OSError) as err:
        atomic_write(tmp_path / "x.wav", fail)
    assert err.value.filename == str(tmp_path / "x.wav") and err.value.strerror == "No space left on device"
    assert outputs(tmp_path) == []


# ---------------------------------------------------------------------------------------- class 6: no surprises


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    """Outputs were created 0600 (mkstemp) whatever the umask. Catches: permissions that ignore the umask, and a
    replaced file that loses its own permissions."""
    from voicegen.files import atomic_write

    old = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
        assert stat.S_IMODE(path.stat().st_mode) == mode
        path.chmod(0o604)
        atomic_write(path, lambda tmp: Path(tmp).write_text("y"))  # replacing keeps the file's own mode
        assert stat.S_IMODE(path.stat().st_mode) == 0o604
    finally:
        os.umask(old)


def test_cli_output_follows_the_umask_and_a_missing_folder_is_created(tmp_path):
    """The CLI's own output: 0644 under umask 022 (was 0600), and a missing folder is created (documented in
    README, "Command line"). Also "1 sentence", not "1 sentences". Catches: mkstemp's 0600 reaching the user, a
    silent change of the missing-folder rule, and the plural."""
    out = tmp_path / "new" / "folder" / "hi.wav"
    result = run("say", "Hello there.", "-o", out, "--device", "cpu", "--seed", "1", umask=0o022)
    assert result.returncode == 0, result.stderr
    assert one_line(result) == f"wrote {out} ({sf.info(str(out)).duration:.2f} s, 1 sentence)"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert outputs(out.parent) == ["hi.wav"]


def test_speed_true_and_empty_voice_are_refused_like_their_neighbours(tmp_path, engine):
    """`speed=True` was accepted while `seed=True` was not; `voice=""` meant the default in Python but was an
    error in the CLI. Catches: either inconsistency coming back."""
    from voicegen import Request, synthesize

    for call in (lambda: synthesize("Hi.", speed=True), lambda: engine.synthesize("Hi.", speed=True),
                 lambda: engine.plan(Request("Hi.", speed=True))):
        with pytest.raises(ValueError, match="speed must be a number"):
            call()
    with pytest.raises(ValueError, match="empty voice name"):
        synthesize("Hi.", voice="")
    result = run("say", "Hi.", "-o", tmp_path / "x.wav", "--voice", "", "--device", "cpu")
    assert result.returncode == 2 and "empty voice name" in one_line(result)
    assert outputs(tmp_path) == []


def test_a_lexicon_file_with_unknown_symbols_is_refused_by_name(tmp_path):
    """Lexicon entries with symbols outside the vocabulary were silently dropped. Catches: a CLI lexicon that
    loads anyway, or a message that does not name the word and the symbol."""
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("voicegen vˈYsʤɛn\ngood gʊd\n", encoding="utf-8")
    result = run("say", "Good.", "-o", tmp_path / "x.wav", "--lexicon", lexicon, "--device", "cpu")
    assert result.returncode == 2
    assert one_line(result) == ("voicegen: error: lexicon entry 'good': symbols the model does not know: 'g' "
                                "(U+0067, did you mean 'ɡ'?); use only the symbols of voicegen.text.VOCAB")
    assert outputs(tmp_path, keep={"words.txt"}) == []


def test_keycaps_and_stray_marks_on_standard_input_are_spoken(tmp_path):
    """Class 2 through the CLI: keycap emoji and marks with no base ended in a TypeError traceback. Catches: a
    crash, or a keycap digit that is dropped instead of read."""
    out = tmp_path / "k.wav"
    result = run("say", "-o", out, "--device", "cpu", "--seed", "0", stdin="Press 5\ufe0f\u20e3 \u0301\u0302 now.".encode())
    assert result.returncode == 0, result.stderr
    assert "1 sentence" in one_line(result)
    data, rate = sf.read(out)
    assert np.isfinite(data).all() and 0.8 < len(data) / rate < 4


# ------------------------------------------------------------------------- classes 1, 5, 7: the weight cache


def _cache_copy(tmp_path: Path) -> Path:
    from voicegen.weights import cache_dir

    source = sorted(cache_dir().glob("*-converter*.safetensors"))
    if not source:
        pytest.skip("no converted cache to copy")
    cache = tmp_path / "cache"
    cache.mkdir()
    for path in source + [p.with_suffix(".json") for p in source]:
        shutil.copy(path, cache / path.name)
    return cache


@pytest.mark.slow
def test_a_cache_damaged_in_place_is_rebuilt_and_never_gives_nan_audio(tmp_path):
    """A cache file with an intact header and an overwritten middle loaded without complaint; every sample came
    out NaN and was written at full scale with status 0, on every later run. Catches: a cache that is not
    verified on load, and NaN written to disk."""
    from voicegen import get_engine

    get_engine("cpu")  # the session's cache exists and carries its checksum (written by this version)
    cache = _cache_copy(tmp_path)
    weights = next(cache.glob("*.safetensors"))
    with open(weights, "r+b") as f:
        f.seek(weights.stat().st_size // 2)
        f.write(b"\xff" * 65536)  # NaN patterns, header and size intact
    out = tmp_path / "x.wav"
    result = run("say", "Hello there.", "-o", out, "--device", "cpu", "--seed", "1",
                 env={"VOICEGEN_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert lines[0].startswith(f"voicegen: warning: the weight cache {weights} is damaged (its xxh3_128 checksum "
                               "does not match); rebuilding it"), lines
    assert lines[-1].startswith(f"wrote {out}") and len(lines) == 2
    data, _ = sf.read(out)
    assert np.isfinite(data).all() and 0.01 < np.sqrt(np.mean(data**2)) and np.abs(data).max() < 0.999
    again = run("say", "Hello there.", "-o", out, "--device", "cpu", "--seed", "1", env={"VOICEGEN_CACHE": str(cache)})
    assert again.returncode == 0 and one_line(again).startswith("wrote")  # rebuilt once, verified since


@pytest.mark.slow
def test_an_unwritable_cache_converts_in_memory_with_one_warning_and_progress(tmp_path):
    """A read-only or unwritable cache directory made the tool unusable, and the ~10 s conversion showed
    nothing. Catches: a failure instead of converting in memory, a warning that does not name VOICEGEN_CACHE or
    comes more than once, and a conversion without a progress message (with --progress; none without it)."""
    (tmp_path / "file").write_text("not a directory")
    cache = tmp_path / "file" / "cache"  # cannot be created, even by root
    out = tmp_path / "x.wav"
    result = run("say", "Hi there.", "-o", out, "--device", "cpu", "--progress", env={"VOICEGEN_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    everything = result.stderr.decode().splitlines()  # splitlines also splits the bar's \r redraws
    bars = [line for line in everything if line.startswith("[")]
    lines = [line for line in everything if line and not line.startswith("[")]  # "\n\r[" splits into an empty line
    assert lines[0] == f"voicegen: converting the weights to float32 (about 10 s, once); caching them in {cache}"
    warnings = [line for line in lines if line.startswith("voicegen: warning:")]
    assert len(warnings) == 1 and "VOICEGEN_CACHE" in warnings[0] and str(cache) in warnings[0]
    assert lines[-1].startswith(f"wrote {out}") and len(lines) == 3
    assert bars and bars[-1].startswith("[" + "#" * 30 + "] 1/1 sentence")  # --progress: say's bar, finished
    assert result.stdout == b""
    assert np.isfinite(sf.read(out)[0]).all()


def test_damaged_and_unwritable_caches_in_process(tmp_path, monkeypatch):
    """The cache logic itself, with the conversion replaced by a stand-in (the real one is tested above and in
    test_weights.py). Catches: a damaged file loaded without a rebuild, a rebuild on every load of a good cache,
    and a second warning for an unwritable cache."""
    from voicegen.weights import store

    state = {"w": torch.arange(4096, dtype=torch.float32), "b": torch.ones(7)}
    builds = []
    monkeypatch.setattr(store, "_warned_unwritable", False)
    monkeypatch.setenv("VOICEGEN_CACHE", str(tmp_path / "cache"))

    def build():
        builds.append(1)
        return {k: v.clone() for k, v in state.items()}

    first, _, _ = store._cached_state("test", build)
    second, _, _ = store._cached_state("test", build)  # verified and reused
    assert len(builds) == 1 and torch.equal(second["w"], state["w"])
    weights = next((tmp_path / "cache").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-100:-96] = b"\xff\xff\xff\xff"  # one float in the middle of the data becomes NaN
    weights.write_bytes(bytes(data))
    with pytest.warns(store.CacheWarning, match="damaged"):
        third, _, _ = store._cached_state("test", build)
    assert len(builds) == 2 and torch.equal(third["w"], state["w"])

    # deferred verification (load_network builds the network while the checksum runs): the damaged state comes
    # back at once, verify() names the damage, warns and deletes the file, and the next load rebuilds
    weights.write_bytes(bytes(data))
    damaged, _, verify = store._cached_state("test", build, deferred=True)
    assert len(builds) == 2 and torch.isnan(damaged["w"]).any()
    with pytest.warns(store.CacheWarning, match="damaged"):
        assert "checksum" in verify()
    assert not weights.exists() and not weights.with_suffix(".json").exists()
    fourth, _, verify = store._cached_state("test", build, deferred=True)
    assert len(builds) == 3 and torch.equal(fourth["w"], state["w"]) and verify() is None
    fifth, _, verify = store._cached_state("test", build, deferred=True)  # the rebuilt cache verifies
    assert len(builds) == 3 and verify() is None

    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("VOICEGEN_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.warns(store.CacheWarning, match="VOICEGEN_CACHE"):
        store._cached_state("test", build)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store._cached_state("test", build)  # converted in memory again, without a second warning
    assert len(builds) == 5


def test_load_network_discards_a_network_built_from_a_damaged_cache(monkeypatch):
    """load_network fills the network while the checksum runs; when verify() then reports damage, the network must
    be built again from the rebuilt state. Catches: returning the network filled from the damaged state."""
    from voicegen.model import KokoroNetwork, NetworkConfig
    from voicegen.weights import store

    good = KokoroNetwork(NetworkConfig()).state_dict()
    bad = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in good.items()}
    calls = []

    def fake_load_state(source, deferred=False):
        calls.append(deferred)
        if len(calls) == 1:
            return bad, NetworkConfig(), lambda: "its xxh3_128 checksum does not match"
        return good, NetworkConfig(), lambda: None

    monkeypatch.setattr(store, "_load_state", fake_load_state)
    model = store.load_network()
    assert calls == [True, False]
    assert all(torch.equal(v, good[k]) for k, v in model.state_dict().items())


def test_the_renderer_never_returns_non_finite_audio(network):
    """Class 1's last line of defence: damaged weights that slip through must not become NaN audio. Catches: a
    renderer that returns NaN samples (the old behaviour) instead of an error saying what to do."""
    from voicegen.renderer import Item, NonFiniteAudio, Renderer
    from voicegen.weights import builtin_voices, style_for

    renderer = Renderer(network, "cpu")
    weight = network.decoder.generator.conv_post.weight
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight[0, 0, 0] = float("nan")
        item = Item([50, 83, 54, 156, 57], style_for(builtin_voices()["jf_alpha"], 5), seed=1)
        with pytest.raises(NonFiniteAudio, match=r"NaN or infinite samples .* Delete the weight cache .*VOICEGEN_CACHE"):
            renderer.render([item])
    finally:
        with torch.no_grad():
            weight.copy_(saved)
        renderer.close()


def test_non_finite_samples_are_never_written(tmp_path):
    """Catches: NaN samples written to disk (they become full-scale noise in PCM)."""
    from voicegen import Audio

    samples = np.zeros(2400, np.float32)
    samples[100] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        Audio(samples).save(tmp_path / "x.wav")
    assert outputs(tmp_path) == []


def test_a_json_script_that_is_not_json_gets_the_json_error(tmp_path, monkeypatch, capsys):
    """Found by probing: `show.json` holding broken JSON (here a missing bracket) was parsed as the text format
    and refused for a 'Speaker: text' line it never meant to have. By name or by content, JSON gets JSON's error."""
    from voicegen import cli

    monkeypatch.setattr(cli, "_engine", lambda args: pytest.fail("the engine was built for a bad script"))
    script = tmp_path / "show.json"
    script.write_text('  "turns": [{"speaker": "Host", "text": "Hello."}]}', encoding="utf-8")
    assert cli.main(["podcast", str(script), "-o", str(tmp_path / "ep.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("voicegen: error:") and "invalid JSON" in err, err
    assert not (tmp_path / "ep.wav").exists()


def test_one_requests_non_finite_audio_fails_that_request_alone(network):
    """A request whose style made the network give NaN failed every request rendered in the same turn (another
    thread's valid request among them): the items are marked, the renderer names them, the worker fails their jobs."""
    import threading

    from voicegen.renderer import Item, NonFiniteAudio, Renderer
    from voicegen.weights import builtin_voices, style_for
    from voicegen.worker import BatchWorker

    renderer = Renderer(network, "cpu")
    try:
        style = style_for(builtin_voices()["jf_alpha"], 5)
        broken = style.clone()
        broken[0] = float("nan")  # what damaged weights or an unchecked table give
        good, bad = Item([50, 83, 54, 156, 57], style, seed=1), Item([50, 83, 54, 156, 57], broken, seed=1)
        with pytest.raises(NonFiniteAudio) as caught:
            renderer.render([good, bad])
        assert caught.value.items == [bad] and bad.audio is None and np.isfinite(good.audio).all()
    finally:
        renderer.close()

    gate = threading.Event()

    def render(items):
        gate.wait()
        raise NonFiniteAudio("broken", [it for it in items if it == "bad"])

    worker = BatchWorker(render)
    try:
        first = worker.submit(["first"])  # a turn that holds the worker while the next two queue up together
        jobs = worker.submit(["ok"]), worker.submit(["bad", "x"])
        gate.set()
        assert first.result(timeout=30) is None and jobs[0].result(timeout=30) is None
        assert isinstance(jobs[1].exception(timeout=30), NonFiniteAudio)
    finally:
        worker.close()
