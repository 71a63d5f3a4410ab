"""A tiny corpus and a tiny training config shared by the training tests."""

from __future__ import annotations

from ardm_core.train import TrainConfig


def write_corpus(tmp_path, sample_text):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "train.txt").write_text(sample_text * 6, encoding="utf-8")
    (d / "valid.txt").write_text(sample_text * 2, encoding="utf-8")
    return d


def tiny_cfg(corpus, out, **kw) -> TrainConfig:
    base = dict(data=[str(corpus)], out=str(out), preset="tiny", block_size=32, batch_size=4, steps=12,
                warmup=2, eval_every=6, eval_batches=2, save_every=6, threads=1, seed=3)
    base.update(kw)
    return TrainConfig(**base)
