"""Where things live: the shipped model, the user's data folders (platformdirs)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_cache_dir, user_config_dir, user_data_dir

APP_NAME = "ardm-studio"
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"


def default_model_dir() -> Path:
    return ASSETS / "models" / "default"


def default_test_file() -> Path:
    """The default corpus's test split: a built corpus if present, else the copy shipped in assets/."""
    for built in (Path("data/corpus/test.txt"), REPO_ROOT / "data" / "corpus" / "test.txt"):
        if built.exists():
            return built
    return ASSETS / "corpus" / "test.txt"


def upscale_model_dir() -> Path:
    return ASSETS / "models" / "upscale"


def data_dir() -> Path:
    return Path(user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return Path(user_config_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    return Path(user_cache_dir(APP_NAME, appauthor=False))
