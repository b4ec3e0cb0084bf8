"""The mask-generator registry: one :class:`GeneratorSpec` per generator, owning all there is to know about it.

A spec names the generator's settings model (the config section ``masks.<name>``), its builder,
whether it runs on an accelerator, its preflight check, and what provenance records of it. The
pipeline (handlers, preflight, provenance) asks the registry and never branches on a name, so a
new generator is one module plus one :func:`register_generator` call::

    register_generator(GeneratorSpec("mine", MySettings, build=lambda settings, device: MyGenerator(settings)))

Builders import their heavy dependencies lazily, so a CPU-only superpixel run never loads SAM.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks.base import MaskGenerator
from ovlabel.engine.masks.settings import PrecomputedConfig, SamConfig, SuperpixelConfig
from ovlabel.engine.sections import Section
from ovlabel.engine.weights import check_checkpoint, checkpoint_sha256, is_random_weights


def _no_check(settings: Any) -> None:
    """A generator with nothing to check before a run."""


def _no_models(settings: Any) -> dict[str, dict[str, Any]]:
    return {}


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything about one mask generator.

    ``build(settings, device)`` returns a loaded :class:`MaskGenerator` (called on a worker);
    ``accelerated``: it uses ``masks.device`` and GPU machines (others always run on CPU);
    ``check(settings)`` raises :class:`ConfigError` / ``ModelWeightsError`` for what would fail
    on a worker, without loading anything; ``source(settings)`` is the row provenance's
    ``mask_generator`` (default: the name); ``models(settings)`` is what run.json's ``models``
    records of its weights (name -> details).
    """

    name: str
    settings: type[Section]
    build: Callable[[Any, str], MaskGenerator]
    accelerated: bool = False
    check: Callable[[Any], None] = _no_check
    source: Optional[Callable[[Any], str]] = None
    models: Callable[[Any], dict[str, dict[str, Any]]] = _no_models

    def provenance(self, settings: Any) -> str:
        return self.source(settings) if self.source is not None else self.name


MASK_GENERATORS: dict[str, GeneratorSpec] = {}
# the masks section's own keys and attributes (MasksConfig): no generator (section) may take these names
RESERVED_NAMES = frozenset({"generator", "device", "spec", "settings", "section"})


def register_generator(spec: GeneratorSpec) -> GeneratorSpec:
    """Add (or replace) a generator; its settings become the config section ``masks.<name>``."""
    if spec.name in RESERVED_NAMES or not spec.name.isidentifier():
        raise ConfigError(f"cannot register a mask generator named {spec.name!r}: a generator's name is its config "
                          f"section masks.<name>, so it must be an identifier other than {sorted(RESERVED_NAMES)}")
    MASK_GENERATORS[spec.name] = spec
    return spec


def unknown_generator(name: str) -> str:
    """The one message for a generator name that is not registered."""
    return f"no mask generator {name!r} is registered; choose one of {sorted(MASK_GENERATORS)}"


def generator_spec(name: str) -> GeneratorSpec:
    try:
        return MASK_GENERATORS[name]
    except KeyError:
        raise ConfigError(unknown_generator(name)) from None


# --- the built-in generators ------------------------------------------------------------------


def _build_sam(settings: SamConfig, device: str) -> MaskGenerator:
    from ovlabel.engine.masks.sam import build_sam_generator

    return build_sam_generator(settings, device)


def _check_sam(settings: SamConfig) -> None:
    from ovlabel.engine.masks.sam.model import check_sam_weights, sam_architecture  # no torch: sam.yaml only

    sam_architecture(settings.model_type)
    check_sam_weights(settings)
    check_checkpoint(settings.checkpoint, "masks.sam.checkpoint", settings.checkpoint_sha256)


def _sam_source(settings: SamConfig) -> str:
    random = is_random_weights(settings.checkpoint)
    return f"sam:{settings.model_type}:{settings.implementation}" + (":random" if random else "")


def _sam_models(settings: SamConfig) -> dict[str, dict[str, Any]]:
    return {"sam": {"model_type": settings.model_type, "checkpoint": settings.checkpoint,
                    "sha256": checkpoint_sha256(settings.checkpoint, settings.checkpoint_sha256),
                    "random_weights": is_random_weights(settings.checkpoint)}}


def _build_superpixel(settings: SuperpixelConfig, device: str) -> MaskGenerator:
    from ovlabel.engine.masks.superpixel import SuperpixelGenerator

    return SuperpixelGenerator(settings)


def _build_precomputed(settings: PrecomputedConfig, device: str) -> MaskGenerator:
    from ovlabel.engine.masks.precomputed import PrecomputedMasks

    return PrecomputedMasks(settings)


def _check_precomputed(settings: PrecomputedConfig) -> None:
    from ovlabel.engine.masks.precomputed import check_precomputed

    check_precomputed(settings)


register_generator(GeneratorSpec("sam", SamConfig, _build_sam, accelerated=True, check=_check_sam,
                                 source=_sam_source, models=_sam_models))
register_generator(GeneratorSpec("superpixel", SuperpixelConfig, _build_superpixel))
register_generator(GeneratorSpec("precomputed", PrecomputedConfig, _build_precomputed, check=_check_precomputed))
