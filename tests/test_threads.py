"""``train.threads``: training runs on that many torch CPU threads, restored afterwards."""

import torch

from wgan.config import resolve
from wgan.threads import torch_threads
from wgan.train import Trainer

QUICK = ["train.steps=4", "train.log_every=1", "train.eval_every=0", "train.figure_every=0"]
QUICK += ["train.checkpoint_every=0", "train.progress=false", "train.eval_samples=64"]


def test_training_uses_train_threads_and_restores_the_setting(tmp_path):
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    seen = []
    cfg = resolve("toy-wgan-gp", [*QUICK, f"train.threads={wanted}"])
    Trainer(cfg, tmp_path / "run").fit(hook=lambda t, v: seen.append(torch.get_num_threads()))
    assert seen == [wanted] * 4
    assert torch.get_num_threads() == before


def test_zero_threads_leaves_torch_alone():
    before = torch.get_num_threads()
    with torch_threads(0):
        assert torch.get_num_threads() == before
    assert resolve("text-wgan-gp").train.threads == 1  # the small text model: one thread
