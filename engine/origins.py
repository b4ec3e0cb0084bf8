"""Where each value of a resolved config came from: ``default``, ``file`` or ``cli`` (``ovlabel config show``).

The precedence is :func:`~ovlabel.engine.config.load_config`'s (overrides > the YAML file > the defaults);
this only says, key by key, which of the three gave the value that won.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

from ovlabel.engine.config import C, Config, Overrides, has_key, load_config, override_items, read_yaml
from ovlabel.engine.shipped import find_config

DEFAULT, FILE, CLI = "default", "file", "cli"


@dataclass(frozen=True)
class ResolvedConfig:
    """A validated config (``config``), the file it was read from (None: defaults only) and, per dotted key in
    the schema's order, its value and origin."""

    config: Config
    path: Optional[Path]
    values: tuple[tuple[str, Any, str], ...]

    def origin(self, key: str) -> str:
        return next(origin for name, _, origin in self.values if name == key)


def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of ``tree``, in its order; a non-empty mapping is a section."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _origin(key: str, file_tree: dict[str, Any], cli_keys: list[str]) -> str:
    if any(key == k or key.startswith(f"{k}.") for k in cli_keys):
        return CLI
    return FILE if has_key(file_tree, key) else DEFAULT


def resolve_config(path: Optional[str | Path] = None, overrides: Overrides = (),
                   schema: type[C] = Config) -> ResolvedConfig:  # type: ignore[assignment]
    """The config :func:`load_config` gives for these arguments, with each value's origin."""
    config = load_config(path, overrides, schema)
    found = find_config(path) if path is not None else None
    file_tree = read_yaml(found) if found is not None else {}
    cli_keys = [key for key, _, _ in override_items(overrides)]
    values = tuple((key, value, _origin(key, file_tree, cli_keys))
                   for key, value in leaves(config.model_dump(mode="json")))
    return ResolvedConfig(config, found, values)


def _flow(value: Any) -> str:
    """``value`` as one line of YAML (a flow sequence inside a flow sequence, unwrapped)."""
    return yaml.safe_dump([value], default_flow_style=True, width=1 << 30, allow_unicode=True).strip()[1:-1]


def format_resolved(resolved: ResolvedConfig, comment_column: int = 56) -> str:
    """YAML (it reads back as a config) with each value's origin as a trailing comment."""
    source = str(resolved.path) if resolved.path is not None else "none (defaults only)"
    lines = [f"# config file: {source}", "# each value: default | file | cli (a key=value override)"]
    opened: tuple[str, ...] = ()
    for key, value, origin in resolved.values:
        *sections, name = key.split(".")
        common = next((i for i, (a, b) in enumerate(zip(opened, sections)) if a != b), min(len(opened), len(sections)))
        for depth in range(common, len(sections)):
            lines.append(f"{'  ' * depth}{sections[depth]}:")
        opened = tuple(sections)
        text = f"{'  ' * len(sections)}{name}: {_flow(value)}"
        lines.append(f"{text.ljust(comment_column)}  # {origin}")
    return "\n".join(lines)
