"""The model catalog: friendly names for the public config.json files shipped in model_configs/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError

CONFIG_DIR = Path(__file__).parent / "model_configs"


@cache
def _catalog() -> dict[str, Path]:
    return {path.stem.lower(): path for path in sorted(CONFIG_DIR.glob("*.json"))}


def model_names() -> list[str]:
    return list(_catalog())


@cache
def _load_catalog_model(name: str) -> ModelArchitecture:
    return ModelArchitecture.from_config(_read_json(_catalog()[name]), name=name)


def load_model(name_or_path: str) -> ModelArchitecture:
    """A catalog name (case-insensitive), a config.json, or a directory holding one."""
    key = name_or_path.strip().lower()
    if key in _catalog():
        return _load_catalog_model(key)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return ModelArchitecture.from_config(_read_json(path), name=str(name_or_path))
    raise SizingError(
        f"unknown model {name_or_path!r}: give a catalog name ({', '.join(model_names())}), "
        "a config.json, or a directory holding one"
    )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SizingError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise SizingError(f"{path} is not a config.json object")
    return data
