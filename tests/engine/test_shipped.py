"""Shipped files: one rule to find configs, vocabularies and models in the ovlabel.configs package."""
from __future__ import annotations

from pathlib import Path

import pytest

import ovlabel.configs
from ovlabel.engine.shipped import CONFIG_DIR, config_path, shipped, shipped_path


def test_the_config_dir_is_the_configs_package() -> None:
    assert CONFIG_DIR == Path(ovlabel.configs.__file__).parent
    assert (CONFIG_DIR / "default.yaml").is_file()


def test_shipped_and_config_path_name_files_in_it() -> None:
    assert shipped("models", "sam.yaml") == CONFIG_DIR / "models" / "sam.yaml"
    assert shipped("models", "sam.yaml").is_file()
    assert config_path("demo.yaml") == CONFIG_DIR / "demo.yaml" and config_path("demo.yaml").is_file()


def test_a_relative_location_not_found_here_is_the_shipped_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shipped_path("vocab/demo_parts.yaml") == CONFIG_DIR / "vocab" / "demo_parts.yaml"
    assert shipped_path(Path("models/sam.yaml")) == CONFIG_DIR / "models" / "sam.yaml"


def test_a_file_found_from_the_working_directory_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "demo_parts.yaml").write_text("wholes: {}\n")
    assert shipped_path("vocab/demo_parts.yaml") == Path("vocab/demo_parts.yaml")


def test_other_locations_are_kept_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert shipped_path("no/such.yaml") == Path("no/such.yaml")  # missing everywhere: as given, for its error
    absolute = tmp_path / "models" / "sam.yaml"
    assert shipped_path(absolute) == absolute  # an absolute path is never looked up
    assert shipped_path("~/x.pt") == tmp_path / "home" / "x.pt"


def test_a_config_is_found_by_its_shipped_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ovlabel.engine.shipped import find_config, shipped_configs

    monkeypatch.chdir(tmp_path)
    assert {"demo", "tiny", "default", "bench"} <= set(shipped_configs())
    for name in ("demo", "demo.yaml", "configs/demo.yaml"):
        assert find_config(name) == CONFIG_DIR / "demo.yaml"
    assert find_config(Path("tiny")) == CONFIG_DIR / "tiny.yaml"


def test_a_config_file_that_exists_wins_over_a_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ovlabel.engine.shipped import find_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text("masks: {device: cpu}\n")  # a file named like a shipped config
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text("{}\n")
    assert find_config("demo") == Path("demo")
    assert find_config("configs/tiny.yaml") == Path("configs/tiny.yaml")
    assert find_config(tmp_path / "demo") == tmp_path / "demo"


def test_an_unknown_config_names_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ovlabel.engine.errors import ConfigError
    from ovlabel.engine.shipped import find_config

    monkeypatch.chdir(tmp_path)
    for name in ("dmeo", "vocab/parts", "models/sam.yaml"):  # only configs/*.yaml are configs
        with pytest.raises(ConfigError, match=r"config file .* not found.*shipped: (.*, )?bench, default, demo, (.*, )?tiny"):
            find_config(name)
