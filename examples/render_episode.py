"""Render the three-speaker example episode from Python, with subtitles.

    python examples/render_episode.py            # writes episode.flac, episode.srt, episode.vtt, episode.json
"""

from pathlib import Path

from voicegen import Engine
from voicegen.podcast import Script
from voicegen.podcast.render import render_episode

HERE = Path(__file__).parent


def main() -> None:
    script = Script.parse((HERE / "episode.txt").read_text(encoding="utf-8"))
    print("speakers:", ", ".join(script.speakers))
    engine = Engine()  # CUDA if available, else CPU; reuse it for more episodes
    episode = render_episode(
        engine, script, "episode.flac", seed=0,
        srt="episode.srt", vtt="episode.vtt", transcript="episode.json", progress=True,
    )
    print(f"{episode.path}: {episode.duration:.1f} s")
    for turn in episode.segments:
        print(f"{turn.start:7.2f}-{turn.end:7.2f}  {turn.speaker:6} ({turn.voice}): {turn.text[:60]}")


if __name__ == "__main__":
    main()
