import json

import numpy as np
import pytest
import torch

from ardm_core.checkpoint import ModelFileError, load_model, save_model


def test_save_load_round_trip(tiny_model, tmp_path):
    d = tmp_path / "m"
    save_model(d, tiny_model.net, tiny_model.vocab, loss_by_known=tiny_model.loss_by_known, meta={"name": "x"})
    m = load_model(d)
    assert m.config == tiny_model.config
    assert m.vocab.chars == tiny_model.vocab.chars
    np.testing.assert_allclose(m.loss_by_known, tiny_model.loss_by_known, atol=1e-6)
    ids = torch.randint(1, tiny_model.vocab.size, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(m.net(ids), tiny_model.net(ids))
    assert len(m.fingerprint) == 64
    assert not list(tmp_path.glob(".m.*")), "no temp folders left behind"


def test_fp16_weights_load_as_float32(tiny_model, tmp_path):
    save_model(tmp_path / "h", tiny_model.net, tiny_model.vocab, dtype=torch.float16)
    m = load_model(tmp_path / "h")
    assert next(m.net.parameters()).dtype == torch.float32


def test_overwrite_replaces_folder(tiny_model, tmp_path):
    d = tmp_path / "m"
    save_model(d, tiny_model.net, tiny_model.vocab, meta={"name": "one"})
    save_model(d, tiny_model.net, tiny_model.vocab, meta={"name": "two"})
    assert load_model(d).meta["name"] == "two"


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    d = tmp_path / "m"
    save_model(d, tiny_model.net, tiny_model.vocab)
    return d


def test_missing_folder(tmp_path):
    with pytest.raises(ModelFileError, match="model folder not found"):
        load_model(tmp_path / "nothing")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "vocab.model"])
def test_missing_file_is_named(model_dir, name):
    (model_dir / name).unlink()
    with pytest.raises(ModelFileError, match=name.replace(".", r"\.")):
        load_model(model_dir)


def test_truncated_weights(model_dir):
    p = model_dir / "model.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="model.safetensors.*(corrupted|truncated)"):
        load_model(model_dir)


def test_truncated_weights_without_checksum(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    del cfg["weights_sha256"]
    (model_dir / "config.json").write_text(json.dumps(cfg))
    p = model_dir / "model.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="model.safetensors"):
        load_model(model_dir)


def test_bad_json(model_dir):
    (model_dir / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="config.json: not valid JSON"):
        load_model(model_dir)


def test_mismatched_vocab(model_dir, tmp_path):
    from ardm_core.vocab import train_vocab

    train_vocab(["completely different letters xyz"]).save(model_dir / "vocab.model")
    with pytest.raises(ModelFileError, match="vocab.model"):
        load_model(model_dir)


def test_pickle_is_never_loaded(model_dir):
    import pickle

    (model_dir / "model.safetensors").write_bytes(pickle.dumps({"a": 1}))
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg.pop("weights_sha256")
    (model_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="safetensors"):
        load_model(model_dir)
