"""Where things live: the shipped model, the user's data folders (platformdirs)."""

from __future__ import annotations

from pathlib import Path


APP_NAME = "ardm-studio"
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"


def default_model_dir() -> Path:
    return ASSETS / "models" / "default"


def shipped_models() -> list[str]:
    """Names of the models shipped in assets/models (``default``, ``medium``, ``upscale``)."""
    root = ASSETS / "models"
    return sorted(d.name for d in root.iterdir() if (d / "config.json").is_file()) if root.is_dir() else []


def model_dir(arg: str | None) -> Path:
    """The folder a ``--model`` argument names: a model folder, or the bare name of a shipped
    model (``--model medium``) unless a model folder of that name is here; None: the default.

    A blank argument is refused (ValueError), not read as the current folder.
    """
    if arg is None:
        return default_model_dir()
    if not arg.strip():
        raise ValueError("--model is empty; give a model folder, or leave --model out for the shipped model")
    path = Path(arg)
    shipped = ASSETS / "models" / arg
    if path.name == arg and not (path / "config.json").is_file() and (shipped / "config.json").is_file():
        return shipped
    return path


def default_test_file(split: str = "test") -> Path:
    """A test split of the default corpus (``test`` or ``modern_test``): a built
    corpus if present, else the copy shipped in assets/."""
    for built in (Path(f"data/corpus/{split}.txt"), REPO_ROOT / "data" / "corpus" / f"{split}.txt"):
        if built.exists():
            return built
    return ASSETS / "corpus" / f"{split}.txt"


def upscale_model_dir() -> Path:
    return ASSETS / "models" / "upscale"


def data_dir() -> Path:
    from platformdirs import user_data_dir  # imported here: the training path runs where platformdirs is absent

    return Path(user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False))
