"""benchmarks/switches.py: the table of module switches that token_phase.py, throughput.py --ab and gpu_session.sh
set by name. A switch renamed or removed in voicegen fails here, on the CPU, instead of in a device call."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_every_switch_names_a_per_device_table_sets_its_value_and_undoes_itself():
    import switches

    for name, (module, attribute, value) in switches.SWITCHES.items():
        table = getattr(importlib.import_module(module), attribute)
        assert isinstance(table, dict), name
        before = dict(table)
        undo = switches.set_switch(name, "cuda")
        assert table["cuda"] is value, name
        undo()
        assert table == before, name


def test_unknown_switches_fail_before_any_is_set():
    import switches
    from voicegen.model import layers

    before = dict(layers.ONE_WAY_BILSTM)
    with pytest.raises(ValueError, match="'no-such-switch'.*one-way-fp16"):
        switches.set_all(["one-way-fp16", "no-such-switch"], "cpu")
    assert layers.ONE_WAY_BILSTM == before
    undo = switches.set_all(["one-way-fp16", "exact-padding"], "cpu")
    undo()
    assert layers.ONE_WAY_BILSTM == before


def test_the_gpu_sessions_default_ab_variants_and_token_auto_switches_are_known():
    """gpu_session.sh's default `--ab` list (what the next device call renders) and the switch names its TOKEN_AUTO
    writes are all names that throughput.py and switches.py accept: a name they refuse would end the benchmark
    step of a device call at its argument check (`one-way-fp16` would have been, while throughput.py kept a list of
    its own)."""
    import re

    import switches
    import throughput

    script = (Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.sh").read_text()
    default_ab = ",".join(re.findall(r"^AB_DEFAULT=(?:\$AB_DEFAULT,)?(\S+)$", script, re.M))
    assert '--ab "${AB-$AB_DEFAULT}"' in script
    assert "packed+one-stream" in default_ab.split(",")  # the token phase before CUDA's one-way default, same run
    for name in default_ab.split(","):
        throughput.variant(None, name)  # raises ValueError for an unknown name
    auto = re.search(r"switches = (\{.*?\})\n", script, re.S).group(1)
    for names in eval(auto).values():  # noqa: S307 - our own script's literal
        switches.set_all(names, "cpu")()
