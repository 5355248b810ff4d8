"""What verifying the weight cache costs on every load: xxh3-128 (chosen) and blake2b against the load itself.

    python benchmarks/cache_checksum.py [--repeats 5] [--out benchmarks/results/cache-checksum-DATE.json]

For each repeat, in one process and alternating, it times `load_network()` from the cache (which verifies the
checksum in a thread while it builds the network), the same load with the checksum answered at once (so the
difference is what verification adds to the load), the checksum alone with xxh3-128 (memory-mapped, as `voicegen.weights.store.file_checksum` does) and
blake2b (16 MiB blocks), and reports each as a share of the load. Prints a table and saves JSON.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch


def blake2b_file(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=f"benchmarks/results/cache-checksum-{datetime.date.today()}.json")
    args = parser.parse_args()

    from voicegen.weights import cache_dir, load_network
    from voicegen.weights.store import file_checksum

    from voicegen.weights import store

    load_network()  # build (or verify) the cache once
    weights = max(cache_dir().glob("kokoro-*-converter*.safetensors"), key=lambda p: p.stat().st_mtime)
    recorded = json.loads(weights.with_suffix(".json").read_text())["checksum"][store.CHECKSUM]

    def load_unverified():  # the same load with the checksum answered at once: what verification adds to it
        real = store.file_checksum
        store.file_checksum = lambda path: recorded
        try:
            load_network()
        finally:
            store.file_checksum = real

    rows = {"load_network (verifies)": [], "load_network (no checksum)": [], "xxh3_128 (mmap)": [],
            "blake2b (blocks)": []}
    for _ in range(args.repeats):
        for name, call in (("load_network (verifies)", load_network), ("load_network (no checksum)", load_unverified),
                           ("xxh3_128 (mmap)", lambda: file_checksum(weights)),
                           ("blake2b (blocks)", lambda: blake2b_file(weights))):
            start = time.perf_counter()
            call()
            rows[name].append(time.perf_counter() - start)
    load = statistics.median(rows["load_network (verifies)"])
    result = {
        "date": str(datetime.date.today()),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count()},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "command": f"python benchmarks/cache_checksum.py --repeats {args.repeats} --out {args.out}",
        "file": weights.name, "bytes": weights.stat().st_size, "seconds": rows,
        "median_s": {k: statistics.median(v) for k, v in rows.items()},
        "share_of_load": {k: statistics.median(v) / load for k, v in rows.items()},
        # what verifying adds to a load's wall time (the checksum runs in a thread while the network is built)
        "verification_cost": 1 - statistics.median(rows["load_network (no checksum)"]) / load,
        "paired_verification_cost": statistics.median(
            1 - b / a for a, b in zip(rows["load_network (verifies)"], rows["load_network (no checksum)"])),
    }
    print(f"{weights.name}: {weights.stat().st_size / 1e6:.0f} MB, {args.repeats} repeats (median)")
    print(f"{'step':<28}{'seconds':>10}{'share of load':>16}")
    for k in rows:
        print(f"{k:<28}{result['median_s'][k]:>10.3f}{result['share_of_load'][k]:>16.1%}")
    print(f"verification adds {result['verification_cost']:.1%} to a load (paired: "
          f"{result['paired_verification_cost']:.1%})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("saved", args.out)


if __name__ == "__main__":
    main()
