"""The training reader: items a training loop can use, from local and fsspec shards, split across workers; the
shards load with Hugging Face datasets and duckdb too."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.dataset import LabelsDataset, LabelsStream, collate, split_rows
from ovlabel.engine.errors import LabelsError
from ovlabel.engine.labelset import LEVEL_CODES, open_run
from tests.engine.label_runs import IMAGES, draw_image, labels_rows, write_labels_run


@pytest.fixture
def run_v3(tmp_path: Path) -> Path:
    return write_labels_run(tmp_path, "3", classes={"car": 5, "dog": 7, "door": 1, "house": 2, "tail": 3, "wheel": 4})


def test_an_item_holds_image_masks_classes_levels_parents_and_scores(run_v3: Path, tmp_path: Path) -> None:
    data = LabelsDataset(str(run_v3))
    assert len(data) == 5
    item = data[1]  # img1: car (wheel), dog
    assert item["image"].dtype == torch.uint8 and tuple(item["image"].shape) == (3, 48, 64)
    assert (item["image"].permute(1, 2, 0).numpy() == draw_image(1)).all()
    assert item["class_names"] == ["car", "dog", "wheel"] and item["class_ids"].tolist() == [5, 7, 4]
    assert item["levels"].tolist() == [LEVEL_CODES["object"]] * 2 + [LEVEL_CODES["part"]]
    assert item["parents"].tolist() == [-1, -1, 0]  # the wheel is a part of item 0, the car
    assert item["masks"].dtype == torch.bool and tuple(item["masks"].shape) == (3, 48, 64)
    segments = [s for s in labels_rows(tmp_path, "3")[1]["segments"] if s["level"] != "scene"]
    for mask, s in zip(item["masks"], segments):
        assert (mask.numpy() == rle_utils.decode(s["mask"])).all()
    assert item["scores"].dtype == torch.float32 and item["scores"][2] == pytest.approx(0.7)
    assert item["image_id"] == "img1" and data[-1]["image_id"] == "img4"
    with pytest.raises(IndexError):
        data[5]


def test_levels_can_include_the_scene_and_version_2_gives_caption_words(tmp_path: Path) -> None:
    data = LabelsDataset(str(write_labels_run(tmp_path, "2")), levels=("scene", "object", "part"))
    item = data[0]
    assert item["class_names"] == ["grass", "puppy", "tail"] and item["parents"].tolist() == [-1, 0, 1]
    assert bool(item["masks"][0].all())  # the scene root covers the image


def _resize(item: dict[str, Any]) -> dict[str, Any]:
    item["image"] = F.interpolate(item["image"][None].float(), size=(32, 32), mode="bilinear")[0] / 255
    item["masks"] = F.interpolate(item["masks"][None].float(), size=(32, 32), mode="nearest")[0].bool()
    return item


def test_the_transform_hook_runs_last(run_v3: Path) -> None:
    item = LabelsDataset(str(run_v3), transform=_resize)[0]
    assert tuple(item["image"].shape) == (3, 32, 32) and item["image"].dtype == torch.float32
    assert tuple(item["masks"].shape) == (2, 32, 32)


def _semantic(batch: dict[str, Any]) -> torch.Tensor:
    """Per-pixel targets: 0 background, else 1 + the index of the object's class (parts painted after)."""
    targets = torch.zeros((len(batch["masks"]), 32, 32), dtype=torch.int64)
    for b, (masks, ids, levels) in enumerate(zip(batch["masks"], batch["class_ids"], batch["levels"])):
        for mask, cid, level in sorted(zip(masks, ids.tolist(), levels.tolist()), key=lambda t: t[2]):
            targets[b][mask] = cid
    return targets


@pytest.mark.parametrize("workers", [0, 2])
def test_a_toy_segmenter_trains_on_the_items(run_v3: Path, workers: int) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 8, 1))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    loader = DataLoader(LabelsDataset(str(run_v3), transform=_resize), batch_size=5, collate_fn=collate,
                        num_workers=workers, persistent_workers=workers > 0)
    losses = []
    for _ in range(25):
        for batch in loader:
            assert tuple(batch["image"].shape) == (5, 3, 32, 32)
            loss = F.cross_entropy(model(batch["image"]), _semantic(batch))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("workers", [0, 2])
def test_the_stream_gives_every_row_once_across_workers(run_v3: Path, workers: int) -> None:
    loader = DataLoader(LabelsStream(str(run_v3)), batch_size=None, num_workers=workers)
    ids = [item["image_id"] for item in loader]
    assert sorted(ids) == [f"img{k}" for k in range(5)]
    if workers:  # each worker read its own slice: the first item of the second worker is img2
        assert ids[:2] == ["img0", "img2"]


def test_the_stream_splits_across_processes(run_v3: Path) -> None:
    ranks = [[i["image_id"] for i in LabelsStream(str(run_v3), rank=r, world_size=2)] for r in (0, 1)]
    assert ranks == [["img0", "img1"], ["img2", "img3", "img4"]]
    assert [split_rows(5, k, 3) for k in range(3)] == [(0, 1), (1, 3), (3, 5)]
    with pytest.raises(ValueError, match="rank 2"):
        LabelsStream(str(run_v3), rank=2, world_size=2)


def test_shards_behind_an_fsspec_uri(run_v3: Path) -> None:
    fs = fsspec.filesystem("memory")
    fs.put(str(run_v3), "/run", recursive=True)
    remote = LabelsDataset("memory://run")
    assert remote.classes.ids["car"] == 5  # classes.json is found there too
    assert [remote[k]["image_id"] for k in range(5)] == [f"img{k}" for k in range(5)]
    assert len(list(LabelsStream("memory://run/labels"))) == 5


def test_collate_keeps_images_of_different_sizes_as_a_list(run_v3: Path) -> None:
    data = LabelsDataset(str(run_v3))
    batch = collate([_resize(data[0]), data[1]])
    assert isinstance(batch["image"], list) and [len(m) for m in batch["masks"]] == [2, 3]


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="levels \\['objects'\\]: use some of scene, object, part"):
        LabelsDataset(str(tmp_path), levels=("objects",))
    (tmp_path / "empty" / "labels").mkdir(parents=True)
    with pytest.raises(LabelsError, match="no labels shards"):
        LabelsDataset(str(tmp_path / "empty"))
    out = write_labels_run(tmp_path, "2")
    (tmp_path / "images" / "img2.png").unlink()
    data = LabelsDataset(str(out))
    with pytest.raises(LabelsError, match=f"image file not found: '{tmp_path / 'images' / 'img2.png'}'"):
        data[2]
    with pytest.raises(LabelsError, match="img2.png"):
        list(LabelsStream(str(out)))


def test_the_shards_load_with_hugging_face_datasets_and_duckdb(run_v3: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import duckdb

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    shards = [str(p) for p in sorted((run_v3 / "labels").glob("*.parquet"))]
    hf = datasets.load_dataset("parquet", data_files=shards, split="train", cache_dir=str(tmp_path / "hf"))
    assert hf.num_rows == 5 and hf[1]["segments"][3]["class_name"] == "wheel"
    assert (rle_utils.decode(hf[0]["segments"][1]["mask"]) == LabelsDataset(str(run_v3))[0]["masks"][0].numpy()).all()
    per_class = duckdb.sql(f"select s.class_name, count(*) from (select unnest(segments) as s from "
                           f"read_parquet({shards!r})) where s.level = 'object' group by 1 order by 1").fetchall()
    assert per_class == [("car", 2), ("dog", 3), ("house", 1)]
    assert open_run(str(run_v3)).num_rows == duckdb.sql(f"select count(*) from read_parquet({shards!r})").fetchall()[0][0]
    assert len(IMAGES) == 5
