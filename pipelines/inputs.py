"""Where a run's manifest comes from: ``--input``, else ``input.manifest``, else the demo world."""
from __future__ import annotations

from typing import Optional

from ovlabel.engine.config import Config
from ovlabel.engine.errors import ConfigError


def resolve_input(cfg: Config, cli_input: Optional[str]) -> str:
    if cli_input:
        return cli_input
    if cfg.input.manifest:
        return cfg.input.manifest
    if cfg.demo is not None:
        from ovlabel.engine.demo.world import ensure_demo_manifest

        return str(ensure_demo_manifest(cfg.demo))
    raise ConfigError("no input: pass --input MANIFEST (or set input.manifest in the config)")
