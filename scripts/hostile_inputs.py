"""Does a run survive hostile images? A manifest of them, one `ovlabel run`, its peak memory and rows.

    python scripts/hostile_inputs.py OUTDIR [--config configs/demo.yaml] [--large 4032x3024 ...] [key=value ...]

Writes into OUTDIR a manifest of: a 60000 x 9 PNG (1.6 KB, an extreme aspect ratio), a 7999 x 7999
flat-colour PNG (a few hundred KB, 64 M pixels), ``/dev/zero`` (endless), a FIFO (a read blocks
forever), a text file named ``.jpg``, and three demo scenes (256 px) that must be labelled; with
``--large WxH`` also demo scenes upscaled to that size (e.g. a phone photo's 4032x3024), to see
what an image under the caps costs. Runs ``ovlabel run`` on it as a child process (``key=value``
arguments pass through as config overrides) and prints the child's peak RSS, the wall time and
every row: labelled, or error with its stage and message. Exits 1 when the run fails or an input
has no row.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from ovlabel.engine import layout
from ovlabel.engine.demo.scenes import generate_scene, write_dataset

CAPTION = "A red house with a blue door next to a tree."
NORMAL_SEEDS = (10_000, 10_001, 10_002)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _rows(width: int, colour: tuple[int, int, int], height: int) -> Iterator[bytes]:
    row = b"\x00" + bytes(colour) * width  # filter type 0, then RGB pixels
    for _ in range(height):
        yield row


def write_flat_png(path: Path, width: int, height: int, colour: tuple[int, int, int] = (90, 140, 200)) -> int:
    """A flat-colour RGB PNG, compressed row by row (a 7999 x 7999 one never exists in memory); its size."""
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for row in _rows(width, colour, height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    path.write_bytes(data)
    return len(data)


def _large_scene(path: Path, size: str, seed: int) -> None:
    width, height = (int(v) for v in size.lower().split("x"))
    scene = generate_scene(seed, 256)
    Image.fromarray(scene.image).resize((width, height), Image.BICUBIC).save(path, compress_level=1)


def build_manifest(folder: Path, large: Sequence[str] = ()) -> Path:
    """OUTDIR/inputs/: the hostile files, the demo scenes and manifest.jsonl naming them all."""
    inputs = folder / "inputs"
    write_dataset(inputs, NORMAL_SEEDS)
    hostile = inputs / "hostile"
    hostile.mkdir(exist_ok=True)
    write_flat_png(hostile / "long-60000x9.png", 60_000, 9)
    write_flat_png(hostile / "huge-7999x7999.png", 7999, 7999)
    (hostile / "text.jpg").write_text("not an image, just some words\n")
    fifo = hostile / "pipe.jpg"
    if not fifo.exists():
        os.mkfifo(fifo)
    rows = [{"image": f"hostile/{name}", "caption": CAPTION, "image_id": name}
            for name in ("long-60000x9.png", "huge-7999x7999.png", "text.jpg", "pipe.jpg")]
    rows.append({"image": "/dev/zero", "caption": CAPTION, "image_id": "dev-zero"})
    for index, size in enumerate(large):
        _large_scene(hostile / f"large-{size}.png", size, 10_100 + index)
        rows.append({"image": f"hostile/large-{size}.png", "caption": CAPTION, "image_id": f"large-{size}"})
    manifest = inputs / "manifest.jsonl"
    with manifest.open("a") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    return manifest


def run_child(config: str, manifest: Path, output: Path, overrides: Sequence[str]) -> tuple[int, float, float]:
    """(exit code, wall seconds, the child's peak RSS in MiB) of one `ovlabel run`."""
    cmd = [sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config", config, "--input", str(manifest),
           "--output", str(output), "--overwrite", *overrides]
    start = time.monotonic()
    code = subprocess.run(cmd, check=False).returncode
    wall = time.monotonic() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return code, wall, peak_kib / 1024


def output_rows(output: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    fs, path = layout.open_location(str(output))
    return ([*layout.read_rows(fs, layout.find_shards(fs, path, layout.LABELS))],
            [*layout.read_rows(fs, layout.find_shards(fs, path, layout.ERRORS))])


def report(manifest: Path, output: Path) -> bool:
    """Print every row; True when every input has one."""
    labels, errors = output_rows(output)
    for row in sorted(labels, key=lambda r: r["image_id"]):
        print(f"  labelled  {row['image_id']}  ({row['width']}x{row['height']})")
    for row in sorted(errors, key=lambda r: str(r["image_id"])):
        print(f"  error     {row['image_id']}  [{row['stage']}] {row['message']}")
    wanted = {json.loads(line)["image_id"] for line in manifest.read_text().splitlines() if line.strip()}
    missing = wanted - {r["image_id"] for r in labels} - {r["image_id"] for r in errors}
    if missing:
        print(f"  NO ROW for {sorted(missing)}")
    return not missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--large", action="append", default=[], metavar="WxH", help="add a demo scene of this size")
    args, overrides = parser.parse_known_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(args.outdir, args.large)
    code, wall, peak = run_child(args.config, manifest, args.outdir / "out", overrides)
    print(f"ovlabel run exit code {code}, wall {wall:.1f} s, peak RSS of the child {peak:.0f} MiB")
    complete = code == 0 and report(manifest, args.outdir / "out")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
