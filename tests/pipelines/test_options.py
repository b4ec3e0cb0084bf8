"""The pipeline's own config sections (beam, output) on top of the engine's, and renamed keys."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ovlabel.engine.config import Config, load_config
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import RunConfig, load_run_config


def test_precedence_cli_over_file_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("beam:\n  masks:\n    images_per_batch: 3\n    accelerator: 'type:nvidia-l4;count:1'\n")
    cfg = load_run_config(path, ["beam.masks.images_per_batch=7"])
    assert cfg.beam.masks.images_per_batch == 7  # CLI beats file
    assert cfg.beam.masks.accelerator == "type:nvidia-l4;count:1"  # file beats default
    assert cfg.beam.matching.images_per_batch == 4 and cfg.output.rows_per_shard == 1000  # defaults


@pytest.mark.parametrize("old", sorted(RunConfig.renamed_keys))
def test_a_renamed_key_names_its_new_name_in_files_and_overrides(tmp_path: Path, old: str) -> None:
    new = RunConfig.renamed_keys[old]
    path = tmp_path / "c.yaml"
    *sections, leaf = old.split(".")
    text = "".join(f"{'  ' * i}{s}:\n" for i, s in enumerate(sections)) + f"{'  ' * len(sections)}{leaf}: 1\n"
    path.write_text(text)
    instead = re.escape(repr(new) if " " not in new else new)
    with pytest.raises(ConfigError, match=f"'{old}' in .*c.yaml is gone: use {instead} instead"):
        load_run_config(path)
    with pytest.raises(ConfigError, match=f"'{old}' in override .* is gone: use {instead} instead"):
        load_run_config(None, [f"{old}=1"])


def test_the_engine_config_knows_nothing_of_deployment() -> None:
    assert not set(Config.model_fields) & {"beam", "output"}
    with pytest.raises(ConfigError, match="unknown config key 'beam'.*read by ovlabel.pipelines.options.load_run_config"):
        load_config(None, ["beam.masks.images_per_batch=2"])
    with pytest.raises(ConfigError, match=r"unknown config key 'bean' in defaults \+ overrides; check the spelling") as err:
        load_run_config(None, ["bean.masks.images_per_batch=2"])
    assert "load_run_config" not in str(err.value)
    assert set(Config.renamed_keys) < set(RunConfig.renamed_keys)


@pytest.mark.parametrize("name", ["default.yaml", "demo.yaml", "tiny.yaml"])
def test_shipped_configs_use_no_renamed_key(name: str) -> None:
    assert isinstance(load_run_config(config_path(name)), RunConfig)


@pytest.mark.parametrize("codec", ["none", "snappy", "gzip", "brotli", "lz4", "zstd", "ZSTD"])
def test_output_compression_is_a_codec_the_parquet_writer_takes(codec: str) -> None:
    assert load_run_config(None, [f"output.compression={codec}"]).output.compression == codec.lower()


@pytest.mark.parametrize("override,key", [("output.compression=lz5", "output.compression"),
                                          ("output.compression=uncompressed", "output.compression"),
                                          ("beam.masks.accelerator=''", "beam.masks.accelerator")])
def test_deployment_values_out_of_range_are_refused_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"^bad config value for '{re.escape(key)}' in defaults"):
        load_run_config(None, [override])


def test_deployment_runs_local_workers_as_processes_with_their_share_of_the_cores() -> None:
    from ovlabel.pipelines.options import deployment

    cfg = load_run_config(config_path("tiny.yaml"), ["beam.local_workers=2", "beam.masks.torch_threads=3",
                                                     "beam.local_mode=processes"])
    got, args = deployment(cfg, [], cores=8)
    assert args == ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing",
                    "--default_sdk_harness_log_level=WARNING"]  # the workers' Beam INFO lines would drown the run's
    assert (got.beam.masks.torch_threads, got.beam.matching.torch_threads) == (3, 4)  # a configured count wins
    _, chatty = deployment(cfg, ["--runner=DirectRunner", "--default_sdk_harness_log_level=DEBUG"], cores=8)
    assert chatty[-1] == "--direct_running_mode=multi_processing" and "--default_sdk_harness_log_level=DEBUG" in chatty
    one, args = deployment(load_run_config(config_path("tiny.yaml")), ["--runner=DirectRunner"], cores=8)
    assert args == ["--runner=DirectRunner"] and one.beam.matching.torch_threads == 8


def test_deployment_runs_local_workers_as_threads_by_default() -> None:
    from ovlabel.pipelines.options import deployment

    cfg = load_run_config(config_path("tiny.yaml"), ["beam.local_workers=2"])  # threads: the default mode
    got, args = deployment(cfg, [], cores=2)
    assert args == ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_threading"]
    assert (got.beam.masks.torch_threads, got.beam.matching.torch_threads) == (1, 1)
    with pytest.raises(ConfigError, match="beam.local_mode"):
        load_run_config(None, ["beam.local_mode=fibres"])


def test_deployment_leaves_other_runners_and_explicit_worker_counts_alone() -> None:
    from ovlabel.pipelines.options import deployment

    cfg = load_run_config(config_path("tiny.yaml"), ["beam.local_workers=4"])
    portable = ["--runner", "PortableRunner", "--job_endpoint=localhost:1"]
    got, args = deployment(cfg, portable, cores=8)
    assert args == portable and got.beam.matching.torch_threads is None
    got, args = deployment(cfg, ["--direct_num_workers=3"], cores=8)
    assert args == ["--direct_num_workers=3"] and got.beam.masks.torch_threads == 8
