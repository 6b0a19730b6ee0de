"""MkDocs hooks of the docs site (mkdocs.yml ``hooks:``): its repository and site links come from
pyproject.toml's ``[project.urls]``, so the project's URLs live in one place."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def on_config(config: Any) -> Any:
    urls = tomllib.loads(PYPROJECT.read_text())["project"]["urls"]
    config.site_url = urls["Documentation"]
    config.repo_url = urls["Source"]
    config.repo_name = urls["Source"].removeprefix("https://github.com/")
    return config
