"""How a run is deployed on Beam: the config sections the pipeline owns, on top of the engine's.

``beam.masks`` / ``beam.matching``: images per RunInference call of the two model stages and the
accelerator resource hint of their workers (Dataflow: ``type:nvidia-l4;count:1;install-nvidia-driver``);
``output``: how the shards are written. :func:`load_run_config` reads a whole config file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal, Optional, Sequence

from pydantic import BeforeValidator, Field

from ovlabel.engine.config import Config, load_config
from ovlabel.engine.sections import NonEmptyStr, Section

# the codecs Beam's WriteToParquet hands pyarrow's ParquetWriter ('none': uncompressed); any case
Codec = Annotated[Literal["none", "snappy", "gzip", "brotli", "lz4", "zstd"],
                  BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value)]


class StageOptions(Section):
    """One model stage's workers."""

    images_per_batch: int = Field(4, ge=1, description="images per RunInference batch")
    accelerator: Optional[NonEmptyStr] = Field(None, description="Beam resource hint for this stage's workers")


class BeamOptions(Section):
    masks: StageOptions = StageOptions()
    matching: StageOptions = StageOptions()


class OutputOptions(Section):
    num_shards: int = Field(4, ge=1)
    compression: Codec = "zstd"
    rows_per_row_group: int = Field(16, ge=1)


class RunConfig(Config):
    """A whole run: the engine's settings plus how Beam deploys them."""

    renamed_keys: ClassVar[dict[str, str]] = {**Config.renamed_keys, **{old: f"beam.{new}" for old, new in (
        ("masks.batch_size", "masks.images_per_batch"), ("masks.accelerator", "masks.accelerator"),
        ("clip.image_batch_size", "matching.images_per_batch"), ("clip.accelerator", "matching.accelerator"))}}

    unknown_section_hint: ClassVar[str] = ""
    beam: BeamOptions = BeamOptions()
    output: OutputOptions = OutputOptions()


def load_run_config(path: Optional[str | Path] = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Defaults < YAML file < ``key=value`` overrides, for a whole run (see :func:`ovlabel.engine.config.load_config`)."""
    return load_config(path, overrides, schema=RunConfig)
