"""How a run is deployed on Beam: the config sections the pipeline owns, on top of the engine's.

``beam.masks`` / ``beam.matching``: images per RunInference call of the two model stages, the
accelerator resource hint of their workers (Dataflow: ``type:nvidia-l4;count:1;install-nvidia-driver``) and
their models' torch threads; ``beam.local_workers`` / ``beam.local_mode``: the DirectRunner's parallel workers
(processes or threads);
``output``: how the shards are written. :func:`load_run_config` reads a whole config file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Optional, Sequence

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
    torch_threads: Optional[int] = Field(None, ge=1, description="intra-op threads of this stage's model on a worker; "
                                         "None: torch's default (every core), or cores / beam.local_workers locally")
    keep_freed_memory_mib: int = Field(1024, ge=0, description="glibc workers: allocations up to this many MiB come "
                                       "from the heap and up to twice as much freed memory is kept for reuse, so large "
                                       "tensor temporaries are not fresh pages on every call (0: glibc's defaults)")


class BeamOptions(Section):
    masks: StageOptions = StageOptions()
    matching: StageOptions = StageOptions()
    local_workers: int = Field(1, ge=1, description="DirectRunner: parallel SDK workers (1: one, in the calling "
                               "process); each gets cores / N torch threads")
    local_mode: Literal["threads", "processes"] = Field(
        "threads", description="DirectRunner with local_workers > 1: threads of the calling process (live progress "
        "shown) or worker processes")

    def locally(self, cores: int) -> "BeamOptions":
        """These options for a local run on ``cores`` cores: stages with no torch_threads get cores / local_workers."""
        threads = max(1, cores // self.local_workers)
        return self.model_copy(update={name: stage if stage.torch_threads else stage.model_copy(update={"torch_threads": threads})
                                       for name, stage in (("masks", self.masks), ("matching", self.matching))})


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


DIRECT_RUNNERS = ("DirectRunner", "direct", "BundleBasedDirectRunner", "SwitchingDirectRunner")


def runner_of(beam_args: Sequence[str]) -> str:
    """The runner ``beam_args`` name (Beam's default, the DirectRunner, when they name none)."""
    runner = "DirectRunner"
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
    return runner


LOG_LEVEL_ARG = "--default_sdk_harness_log_level"  # Beam's worker processes log at INFO unless told otherwise


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def deployment(cfg: RunConfig, beam_args: Sequence[str], cores: Optional[int] = None) -> tuple[RunConfig, list[str]]:
    """(config, Beam arguments) of a run: on the DirectRunner (the default), ``beam.local_workers`` worker
    processes or threads (``beam.local_mode``; unless the arguments choose ``--direct_num_workers`` themselves; the
    processes log warnings only, unless the arguments set ``--default_sdk_harness_log_level``) and cores / N torch
    threads for each stage's model that names none, so the workers don't oversubscribe the cores."""
    args = list(beam_args) or ["--runner=DirectRunner"]
    if runner_of(args) not in DIRECT_RUNNERS:
        return cfg, args
    workers = cfg.beam.local_workers
    if not any(a.startswith("--direct_num_workers") for a in args):
        if workers > 1:
            mode = "multi_processing" if cfg.beam.local_mode == "processes" else "multi_threading"
            args += [f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"]
            if mode == "multi_processing" and not any(a.startswith(LOG_LEVEL_ARG) for a in args):
                args.append(f"{LOG_LEVEL_ARG}=WARNING")  # the worker processes' Beam INFO lines drown the run's
    else:
        workers = 1  # the arguments decide; leave torch's threads alone
    cores = cores or _cores()
    beam_cfg = cfg.beam.model_copy(update={"local_workers": workers}).locally(cores)
    return cfg.model_copy(update={"beam": beam_cfg}), args
