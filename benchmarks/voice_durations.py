"""Which durations should a voice fit render with? Measured where the answer is known.

The fit compares our rendering with the recording frame by frame, so the rendering needs the recording's
phoneme durations. Two sources: the start voice's own durations (a forward pass), or durations aligned to the
recording (DTW of the start voice's rendering against it, `voicegen.fit.align_recording`). Here the
"recording" is our own rendering of a target voice, whose true durations are known, and we report how far each
source is from them: mean |error| per phoneme and of phoneme start times (40 Hz frames), and the length ratio.

    python benchmarks/voice_durations.py          # writes benchmarks/results/voices-durations-cpu-<date>.json
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicegen import Engine
from voicegen.fit import align_recording, render_chunks

PAIRS = (("jf_tebukuro:3+jm_kumo:2", "jf_gongitsune"), ("jf_nezumi", "jf_alpha"))
"""(target, start): the start each target's fit picks (the first), and a distant start (the second)."""


def main() -> int:
    lines = (ROOT / "benchmarks" / "data" / "sentences_plain.txt").read_text(encoding="utf-8").splitlines()
    text = " ".join(lines[0:2])
    engine = Engine(device="cpu")
    chunks = engine.frontend(text)
    out = {}
    for target, start in PAIRS:
        true = render_chunks(engine, chunks, engine.voice_table(target))
        pieces = []
        for k, (chunk, item) in enumerate(zip(chunks, true)):
            pieces.append(item.audio)
            if k + 1 < len(chunks):
                pieces.append(np.zeros(int(round(chunk.pause_after * 40)) * 600, np.float32))
        recording = np.concatenate(pieces)
        ours = render_chunks(engine, chunks, engine.voice_table(start))
        aligned = align_recording(recording, chunks, ours)
        result = {}
        for label, durations in (("forward pass (start voice)", [it.durations for it in ours]),
                                 ("aligned (DTW)", aligned.durations)):
            per_token = np.concatenate([np.abs(d.numpy()[1:-1] - t.durations.numpy()[1:-1]) for d, t in zip(durations, true)])
            starts = np.concatenate([np.abs(np.cumsum(d.numpy())[:-1] - np.cumsum(t.durations.numpy())[:-1])
                                     for d, t in zip(durations, true)])
            length = sum(int(d[1:-1].sum()) for d in durations) / sum(int(t.durations[1:-1].sum()) for t in true)
            result[label] = {"token_abs_err_frames": float(per_token.mean()), "boundary_abs_err_frames": float(starts.mean()),
                             "boundary_err_p90": float(np.percentile(starts, 90)), "length_ratio": length}
        out[f"{target} from {start}"] = result
        print(target, "from", start, json.dumps(result, indent=1), flush=True)
    path = ROOT / "benchmarks" / "results" / f"voices-durations-cpu-{datetime.date.today().isoformat()}.json"
    path.write_text(json.dumps({
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/voice_durations.py",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu"},
        "text": text,
        "results": out,
    }, indent=1, ensure_ascii=False))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
