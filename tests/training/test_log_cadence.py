"""How often a run logs and checkpoints does not change what it trains: the gradient-norm
measurement at each log runs the nets in training mode, and must leave their batch-norm
statistics as they were."""

from __future__ import annotations

import torch

from wgan.config import resolve
from wgan.training.trainer import Trainer


def _state(tmp_path, checkpoint_every: int) -> dict[str, torch.Tensor]:
    cfg = resolve(
        "digits-cgan",
        [
            "train.steps=4",
            "generator.width=8",
            "critic.width=8",
            "data.batch_size=16",
            "train.progress=false",
            "train.eval_every=0",
            "train.figure_every=0",
            "train.checkpoint_minutes=0",
            f"train.checkpoint_every={checkpoint_every}",
        ],
    )
    trainer = Trainer(cfg, tmp_path / f"every{checkpoint_every}")
    trainer.fit()
    out = {f"g.{k}": v for k, v in trainer.gen.state_dict().items()}
    out |= {f"d.{k}": v for k, v in trainer.critic.state_dict().items()}
    out |= {f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()}
    return out


def test_checkpointing_every_step_trains_the_same_nets_as_once(tmp_path):
    once, every = _state(tmp_path, 0), _state(tmp_path, 1)
    assert once.keys() == every.keys()
    assert any("running_mean" in k for k in once)  # batch norm in G and D (digits-cgan)
    differ = [k for k in once if not torch.equal(once[k], every[k])]
    assert differ == []
