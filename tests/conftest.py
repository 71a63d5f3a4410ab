"""Shared fixtures: tiny models (random weights, instant) and a small text.

Tests never touch the user's real settings or data folders: an autouse fixture
points platformdirs' folders at a temp dir.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import torch
from hypothesis import settings as hypothesis_settings

# the same examples on every run, so CI is repeatable; HYPOTHESIS_PROFILE=explore searches afresh
hypothesis_settings.register_profile("repeatable", derandomize=True, deadline=None)
hypothesis_settings.register_profile("explore", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

from ardm_core.checkpoint import LoadedModel, load_model, save_model
from ardm_core.model import ARDMTransformer, preset_config
from ardm_core.vocab import train_vocab

SAMPLE_TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife.\nHowever little known the feelings or views of such a man may be "
    "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
    "surrounding families, that he is considered the rightful property of some one or other of "
    "their daughters.\n\tIn the beginning God created the heaven and the earth. 0123456789!?;:'\"-()[]"
)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    """Settings, autosave and caches go to a temp dir, never the user's home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    yield


@pytest.fixture(scope="session")
def sample_text() -> str:
    return SAMPLE_TEXT


def make_tiny_model(block_size: int = 64, seed: int = 0, **overrides) -> LoadedModel:
    vocab = train_vocab([SAMPLE_TEXT])
    torch.manual_seed(seed)
    cfg = preset_config("tiny", vocab_size=vocab.size, block_size=block_size, **overrides)
    net = ARDMTransformer(cfg).eval()
    # a plausible non-increasing L_t table: more context, fewer bits
    lbk = np.linspace(4.5, 2.0, block_size)
    return LoadedModel(net=net, vocab=vocab, config=cfg, path=None, loss_by_known=lbk, meta={"name": "tiny"},
                       fingerprint=f"tiny-{seed}")


@pytest.fixture(scope="session")
def tiny_model() -> LoadedModel:
    """Random-weight tiny model, window 64; shared, do not mutate its weights."""
    return make_tiny_model()


def make_tiny_upscale(block_size: int = 64, seed: int = 0) -> LoadedModel:
    """A random-weight two-stage upscaling model over the default stage map, with L_t tables per stage."""
    from ardm_core.stages import load_stage_map
    from ardm_core.upscale import upscale_network

    base = make_tiny_model(block_size, seed)
    sm = load_stage_map("default", base.vocab.chars)
    net = upscale_network(sm, base.net).eval()
    tables = [np.linspace(2.0, 0.5, block_size), np.linspace(3.0, 1.0, block_size)]
    return LoadedModel(net=net, vocab=base.vocab, config=net.cfg, path=None, loss_by_known=None,
                       meta={"name": "tiny-upscale"}, fingerprint=f"tiny-up-{seed}", stages=sm,
                       stage_loss_by_known=tables)


@pytest.fixture(scope="session")
def tiny_upscale() -> LoadedModel:
    return make_tiny_upscale()


@pytest.fixture(scope="session")
def tiny_upscale_dir(tmp_path_factory, tiny_upscale) -> str:
    d = tmp_path_factory.mktemp("models") / "tiny-upscale"
    m = tiny_upscale
    save_model(d, m.net, m.vocab, meta={"name": "tiny-upscale"}, stages=m.stages.to_json(),
               stage_loss_by_known=m.stage_loss_by_known)
    return str(d)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model) -> str:
    """The tiny model saved as a model folder (safetensors + JSON + vocab)."""
    d = tmp_path_factory.mktemp("models") / "tiny"
    save_model(d, tiny_model.net, tiny_model.vocab, loss_by_known=tiny_model.loss_by_known, meta={"name": "tiny"})
    return str(d)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir) -> LoadedModel:
    return load_model(tiny_model_dir)
