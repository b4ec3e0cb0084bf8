"""How a run is deployed on Beam: the config sections the pipeline owns, on top of the engine's.

``beam.masks`` / ``beam.matching``: images per RunInference call of the two model stages and the
accelerator resource hint of their workers (Dataflow: ``type:nvidia-l4;count:1;install-nvidia-driver``);
``output``: how the shards are written. :func:`load_run_config` reads a whole config file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal, Optional

from pydantic import BeforeValidator, Field

from ovlabel.engine.config import Config, Overrides, load_config
from ovlabel.engine.sections import NonEmptyStr, Section
from ovlabel.engine.shards import ShardPolicy

# the codecs pyarrow's ParquetWriter takes ('none': uncompressed); any case
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
    """How shards are cut and published: each writer publishes a shard every ``rows_per_shard`` rows or
    ``seconds_per_shard`` seconds, so a killed run loses at most what its writers held."""

    rows_per_shard: int = Field(1000, ge=1, description="rows per published shard (at most)")
    seconds_per_shard: float = Field(300.0, gt=0, description="a writer publishes what it holds at least this often")
    compression: Codec = "zstd"
    rows_per_row_group: int = Field(16, ge=1)
    lock_stale_after_s: float = Field(600.0, gt=0, description="a lock nobody has touched this long is taken over")

    @property
    def policy(self) -> ShardPolicy:
        return ShardPolicy(self.rows_per_shard, self.seconds_per_shard, self.compression, self.rows_per_row_group)


class RunConfig(Config):
    """A whole run: the engine's settings plus how Beam deploys them."""

    renamed_keys: ClassVar[dict[str, str]] = {**Config.renamed_keys, **{old: f"beam.{new}" for old, new in (
        ("masks.batch_size", "masks.images_per_batch"), ("masks.accelerator", "masks.accelerator"),
        ("clip.image_batch_size", "matching.images_per_batch"), ("clip.accelerator", "matching.accelerator"))},
        "output.num_shards": "output.rows_per_shard (shards are published as the run goes)"}

    unknown_section_hint: ClassVar[str] = ""
    beam: BeamOptions = BeamOptions()
    output: OutputOptions = OutputOptions()


def load_run_config(path: Optional[str | Path] = None, overrides: Overrides = ()) -> RunConfig:
    """Defaults < YAML file < ``key=value`` overrides, for a whole run (see :func:`ovlabel.engine.config.load_config`)."""
    return load_config(path, overrides, schema=RunConfig)
