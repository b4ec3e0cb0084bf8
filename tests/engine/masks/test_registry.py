"""The mask-generator registry: a generator is one spec, and the config, builder and checks follow it."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.config import Config, load_config
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks import MASK_GENERATORS, GeneratorSpec, build_mask_generator, register_generator
from ovlabel.engine.masks.settings import SamConfig


def test_a_registered_generator_gets_its_config_section_and_builder(grid_generator: GeneratorSpec) -> None:
    cfg = load_config(None, ["masks.generator=grid", "masks.grid.cells=3"])
    assert cfg.masks.spec is grid_generator and cfg.masks.settings == grid_generator.settings(cells=3)
    assert isinstance(cfg.masks.sam, SamConfig)  # the others keep their (default) sections
    (batch,) = build_mask_generator(cfg.masks).generate([np.zeros((30, 40, 3), np.uint8)], ["a"])
    assert len(batch) == 9 and batch.areas.sum() == 30 * 40


def test_its_settings_are_validated_like_any_section(grid_generator: GeneratorSpec) -> None:
    with pytest.raises(ConfigError, match="'masks.grid.cells'"):
        load_config(None, ["masks.generator=grid", "masks.grid.cells=0"])
    with pytest.raises(ConfigError, match="unknown config key 'masks.grid.rows'"):
        load_config(None, ["masks.grid.rows=2"])


def test_unregistered_names_are_errors_that_list_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"no mask generator 'grid' is registered; choose one of \['precomputed'"):
        load_config(None, ["masks.generator=grid"])
    with pytest.raises(ConfigError, match="unknown config key 'masks.grid'"):
        load_config(None, ["masks.grid.cells=2"])


def test_the_builtins_are_registered_with_what_the_pipeline_asks_of_them() -> None:
    assert set(MASK_GENERATORS) >= {"sam", "superpixel", "precomputed"}
    assert MASK_GENERATORS["sam"].accelerated and not MASK_GENERATORS["superpixel"].accelerated
    cfg = Config()
    assert cfg.masks.spec.provenance(cfg.masks.settings) == "sam:vit_h:batched"
    assert MASK_GENERATORS["superpixel"].provenance(cfg.masks.superpixel) == "superpixel"
    assert set(cfg.masks.spec.models(cfg.masks.settings)) == {"sam"}


def test_register_generator_adds_a_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    from ovlabel.engine.masks import registry

    monkeypatch.setattr(registry, "MASK_GENERATORS", dict(MASK_GENERATORS))
    spec = GeneratorSpec("other", SamConfig, build=lambda settings, device: None)  # type: ignore[arg-type, return-value]
    assert register_generator(spec) is spec and registry.MASK_GENERATORS["other"] is spec
    assert "other" not in MASK_GENERATORS


def test_a_generator_cannot_take_a_name_the_masks_section_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    from ovlabel.engine.masks import MasksConfig, registry

    monkeypatch.setattr(registry, "MASK_GENERATORS", dict(MASK_GENERATORS))
    own = set(MasksConfig.model_fields) | {n for n in vars(MasksConfig) if isinstance(vars(MasksConfig)[n], property)}
    own |= {n for n in vars(MasksConfig) if callable(vars(MasksConfig)[n]) and not n.startswith("_")}
    assert own <= registry.RESERVED_NAMES
    for name in ("device", "settings", "not a name"):
        with pytest.raises(ConfigError, match="cannot register a mask generator"):
            register_generator(GeneratorSpec(name, SamConfig, build=lambda settings, device: None))  # type: ignore
