"""Voice names a client may send: OpenAI's (mapped to built-in voices), ours, blends, and extra voice files.

OpenAI's voices are mapped by how OpenAI describes them (female, male, neutral) onto the built-in voices, which
are four female voices and one male one (`jm_kumo`), so all of OpenAI's male voices sound alike here; neutral
ones are blends. `--voice-map NAME=VOICE` (or `VoiceMap(overrides)`) changes an entry or adds a new alias.

| OpenAI voice | description | voicegen voice |
|---|---|---|
| alloy | neutral, balanced | jf_alpha+jf_nezumi |
| ash | male | jm_kumo |
| ballad | male | jm_kumo |
| cedar | male | jm_kumo |
| coral | female, warm | jf_gongitsune |
| echo | male | jm_kumo |
| fable | neutral, storyteller | jf_gongitsune+jm_kumo |
| marin | female | jf_gongitsune+jf_alpha |
| nova | female, bright | jf_alpha |
| onyx | male, deep | jm_kumo |
| sage | female, calm | jf_nezumi |
| shimmer | female, soft | jf_tebukuro |
| verse | male | jm_kumo |

A request's voice may itself be a blend that mixes both kinds ("nova:2+echo:1"): each part is looked up here first,
then in the engine's voice bank.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from ..weights.voices import VoiceBank, VoiceError, parse_blend

OPENAI_VOICES: dict[str, str] = {
    "alloy": "jf_alpha+jf_nezumi",
    "ash": "jm_kumo",
    "ballad": "jm_kumo",
    "cedar": "jm_kumo",
    "coral": "jf_gongitsune",
    "echo": "jm_kumo",
    "fable": "jf_gongitsune+jm_kumo",
    "marin": "jf_gongitsune+jf_alpha",
    "nova": "jf_alpha",
    "onyx": "jm_kumo",
    "sage": "jf_nezumi",
    "shimmer": "jf_tebukuro",
    "verse": "jm_kumo",
}
"""OpenAI's documented voice names -> the built-in voice (or blend) that answers to them (see the module table)."""


def parse_voice_map(entries: Iterable[str]) -> dict[str, str]:
    """`["alloy=jf_alpha", ...]` (the CLI's --voice-map) -> {alias: voice}; ValueError for a malformed entry."""
    out = {}
    for entry in entries:
        name, sep, voice = (s.strip() for s in entry.partition("="))
        if not sep or not name or not voice or "+" in name or ":" in name:
            raise ValueError(f"--voice-map takes NAME=VOICE (e.g. alloy=jf_alpha or alloy=jf_alpha+jm_kumo); got {entry!r}")
        out[name.lower()] = voice
    return out


class VoiceMap:
    """Aliases (OpenAI's voices, then `overrides`) over a voice bank. Read-only once made.

    `overrides` values may name bank voices or blends, not other aliases; `check()` fails on any that does not
    resolve, so a server refuses a bad map at start-up rather than on the first request.
    """

    def __init__(self, bank: VoiceBank, overrides: Mapping[str, str] | None = None):
        self.bank = bank
        self.aliases = {**OPENAI_VOICES, **{k.lower(): v for k, v in (overrides or {}).items()}}

    def check(self) -> None:
        """VoiceError naming the alias whose voice the bank does not know."""
        for alias, voice in self.aliases.items():
            try:
                self.bank.check(voice)
            except VoiceError as e:
                raise VoiceError(f"voice map {alias}={voice}: {e}") from None

    @property
    def names(self) -> list[str]:
        """Every name a client may send: the bank's voices, then the aliases."""
        return self.bank.names + sorted(a for a in self.aliases if a not in self.bank)

    def resolve(self, spec: str) -> str | torch.Tensor:
        """A client's voice (name, alias or blend of either) -> what `Engine.plan` takes: the bank name or blend
        string when no alias is involved, the alias's own voice string for a lone alias (a voice file's pitch and
        speed defaults then apply), else a (510, 256) table of the blend. VoiceError lists every accepted name."""
        parts = parse_blend(spec)
        if not any(self._alias(name) for name, _ in parts):
            self._check_names(parts)
            return spec
        if len(parts) == 1:  # one alias: its voice as the map names it, so a voice file keeps its pitch and speed
            return self._alias(parts[0][0])
        tables = []
        for name, weight in parts:
            voice = self._alias(name) or name
            if voice == name:
                self._check_names([(name, weight)])
            tables.append((self.bank.table(voice), weight))
        total = sum(w for _, w in tables)
        return sum(t * (w / total) for t, w in tables)

    def _alias(self, name: str) -> str | None:
        return None if name in self.bank else self.aliases.get(name.lower())

    def _check_names(self, parts) -> None:
        for name, _ in parts:
            if name not in self.bank:
                raise VoiceError(f"unknown voice {name!r}; known voices: {', '.join(self.names)} "
                                 "(or a blend such as 'jf_alpha+jm_kumo' or 'nova:2+echo:1')")
