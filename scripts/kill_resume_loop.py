"""Kill a run at random moments, resume it, and check the result equals an uninterrupted run, row for row.

    python scripts/kill_resume_loop.py WORKDIR [--inputs 2000] [--loops 10] [--seed 0] [--config configs/tiny.yaml]

Builds a manifest of ``--inputs`` rows (small generated images; every 40th row a bad one: a missing file, a row
with no image, a duplicated image_id, an empty caption), runs it once uninterrupted, then ``--loops`` times: starts
the run, SIGKILLs it at a random moment, resumes, SIGKILLs the resume at a random moment, resumes to the end, and
compares the output with the uninterrupted one (scripts/compare_outputs.py). Prints one line per loop and
``k/N identical``; exits 1 unless every loop is identical with run.json's accounting_ok.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_outputs import compare  # noqa: E402

CAPTIONS = ["A red car parked next to a tree.", "A dog with a long tail sits on the grass.",
            "Two people stand near a house with a window.", "A cup on a wooden table.", "A boat on the water."]
FAST = ("masks.generator=superpixel", "masks.superpixel.max_proposals=6", "output.rows_per_shard=50",
        "output.seconds_per_shard=2")


def build_manifest(folder: Path, n: int, seed: int) -> Path:
    """``n`` rows over 40 generated images; every 40th row fails somewhere (in validation, dedup, loading...)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for k in range(40):
        blocks = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))).save(folder / "images" / f"{k}.png")
    bad = [{"image": "images/missing.png", "caption": "A cat."}, {"caption": "A dog.", "image_id": "no-image"},
           {"image": "images/1.png", "caption": "A cup.", "image_id": "row-0"}, {"image": "images/2.png", "caption": ""}]
    lines = []
    for i in range(n):
        row = ({**bad[(i // 40) % len(bad)]} if i % 40 == 39 else
               {"image": f"images/{i % 40}.png", "caption": CAPTIONS[i % len(CAPTIONS)], "image_id": f"row-{i}"})
        lines.append(json.dumps(row))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def command(args: argparse.Namespace, manifest: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config", args.config, "--input", str(manifest),
            "--output", str(out), *extra, *FAST, *args.overrides]


def run_until(cmd: list[str], kill_after: Optional[float], log_file: Path) -> tuple[str, float]:
    """Run ``cmd`` (its stderr into ``log_file``); SIGKILL its process group after ``kill_after`` seconds.
    ('killed' | 'finished', seconds)."""
    started = time.time()
    with open(log_file, "ab") as err:  # a file, never a pipe: a full pipe would stall the run
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return "killed", time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {log_file.read_text()[-2000:]}")
    return "finished", time.time() - started


def published(out: Path) -> int:
    return len(list(out.glob("labels/*.parquet"))) + len(list(out.glob("errors/*.parquet")))


def one_loop(args: argparse.Namespace, manifest: Path, reference: Path, out: Path, full_s: float,
             rng: random.Random) -> tuple[bool, str]:
    log_file = out.parent / f"{out.name}.log"
    first = rng.uniform(0.15, 0.9) * full_s
    what, took = run_until(command(args, manifest, out), first, log_file)
    story = [f"run {what} at {took:.1f}s ({published(out)} shards)"]
    second = rng.uniform(0.1, 0.8) * full_s
    what, took = run_until(command(args, manifest, out, "--resume"), second, log_file)
    story.append(f"resume {what} at {took:.1f}s ({published(out)} shards)")
    run_until(command(args, manifest, out, "--resume"), None, log_file)
    lines = compare(str(reference), str(out))
    info = json.loads((out / "run.json").read_text())
    same = all(line.endswith("identical") for line in lines if not line.startswith(" ")) and info["accounting_ok"]
    story.append("resumed: " + ("identical" if same else "; ".join(lines[:6])))
    return same, ", ".join(story)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"))
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_args(argv)
    manifest = build_manifest(args.workdir, args.inputs, args.seed)
    reference = args.workdir / "reference"
    _, full_s = run_until(command(args, manifest, reference, "--overwrite"), None, args.workdir / "reference.log")
    print(f"uninterrupted run of {args.inputs} inputs: {full_s:.1f}s", flush=True)
    rng = random.Random(args.seed)
    good = 0
    for loop in range(args.loops):
        out = args.workdir / f"loop-{loop}"
        shutil.rmtree(out, ignore_errors=True)
        (args.workdir / f"{out.name}.log").unlink(missing_ok=True)
        same, story = one_loop(args, manifest, reference, out, full_s, rng)
        good += same
        print(f"loop {loop}: {story}", flush=True)
    print(f"{good}/{args.loops} identical to the uninterrupted run", flush=True)
    return 0 if good == args.loops else 1


if __name__ == "__main__":
    sys.exit(main())
