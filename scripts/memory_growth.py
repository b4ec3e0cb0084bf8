"""Does a run's memory stay flat as its input grows? Peak RSS of `ovlabel run` on N and on FACTOR x N images.

Each run is its own process tree (a fresh wrapper process runs `ovlabel run` and reports the peak resident
memory of its largest descendant: the run itself or one of Beam's worker processes), on the first N and the
first FACTOR x N scenes of the demo world (generated into the cache when missing), with the config given.

    python scripts/memory_growth.py                       # configs/demo.yaml, 20 and 200 scenes
    python scripts/memory_growth.py --small 10 --factor 10 --config configs/demo.yaml beam.local_workers=2

Prints one line per run and the growth; target: <= 10% more peak memory for 10x the images.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ovlabel.engine.config import DemoConfig
from ovlabel.engine.demo.world import ensure_demo_manifest

WRAPPER = ("import json, resource, subprocess, sys\n"
           "code = subprocess.run(sys.argv[1:]).returncode\n"
           "print(json.dumps({'code': code, 'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n")


def subset(manifest: Path, rows: int, out: Path) -> Path:
    """The first ``rows`` rows of ``manifest`` as a manifest of absolute image paths."""
    lines = []
    for line in manifest.read_text().splitlines()[:rows]:
        row = json.loads(line)
        row["image"] = str((manifest.parent / row["image"]).resolve())
        lines.append(json.dumps(row))
    out.write_text("\n".join(lines) + "\n")
    return out


def peak_of_run(config: str, manifest: Path, output: Path, overrides: list[str]) -> dict[str, int]:
    cmd = [sys.executable, "-c", WRAPPER, sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config", config,
           "--input", str(manifest), "--output", str(output), *overrides]
    log = output.with_suffix(".log")
    with open(log, "w") as err:  # the run's own chatter goes to a file, never a pipe nobody reads
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"ovlabel run failed (exit {report['code']}); see {log}")
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--small", type=int, default=20, help="images in the small run (default 20)")
    p.add_argument("--factor", type=int, default=10, help="the large run has this many times more (default 10)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides for both runs")
    args = p.parse_args()
    large = args.small * args.factor
    manifest = ensure_demo_manifest(DemoConfig(num_images=max(large, 200)))
    with tempfile.TemporaryDirectory(prefix="ovlabel-memory-") as tmp:
        peaks = {}
        for n in (args.small, large):
            rows = subset(manifest, n, Path(tmp) / f"manifest-{n}.jsonl")
            peaks[n] = peak_of_run(args.config, rows, Path(tmp) / f"out-{n}", args.overrides)["peak_kib"] / 1024
            print(f"{n:>6} images: peak RSS {peaks[n]:.0f} MiB", flush=True)
    growth = peaks[large] / peaks[args.small] - 1
    print(f"growth for {args.factor}x the images: {100 * growth:+.1f}% (target <= +10%)")


if __name__ == "__main__":
    main()
