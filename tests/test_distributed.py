"""torchrun: two gloo processes train the tiny model; rank 0 alone writes the run folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO
from training.distributed import Dist, shard

TIMEOUT = 240  # seconds; three Python processes importing torch on a busy machine


def test_shard_gives_every_rank_the_same_number_of_samples():
    order = [4, 2, 0, 3, 1]
    parts = [shard(order, Dist(rank=r, world=2)) for r in range(2)]
    assert parts == [[4, 0, 1], [2, 3, 4]]
    assert shard(order, Dist()) == order


# with the word loss too, and silence samples (no word frame), which must still give the word layer a
# gradient on that rank
@pytest.mark.parametrize(
    "extra", [[], ["--word-weight=0.5", "--samples-whole=0.5", "--samples-splice=0", "--samples-silence=0.5"]]
)
def test_two_process_gloo_run(mini_grid, tmp_path, extra):
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training.cli",
        "fit",
        f"--data={mini_grid['data']}",
        f"--cache={mini_grid['cache']}",
        f"--out={out}",
        "--threads=1",
        "--workers=1",
        "--model-channels=8,8,8",
        "--model-hidden=16",
        "--model-visual-dim=16",
        "--batch-size=1",
        "--val-fraction=0.25",
        "--epochs=2",
        "--max-steps=50",
        "--device=cpu",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 0 of 2 on cpu (gloo)" in result.stderr
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    state = last["state"]
    assert ("words" in last) == bool(extra)  # the word layer, trained and kept by rank 0
    # 3 training clips padded to 4 and split over 2 ranks: 2 steps per epoch at batch 1 (3 alone)
    assert (state["world_size"], state["epoch"], state["step"]) == (2, 2, 4)
    assert state["machine"].endswith("x 2 processes")
    assert sorted(p.name for p in out.iterdir()) == [
        "best.pt",
        "last.pt",
        "split.json",
        "tensorboard",
        "train.log",
        "val.csv",
    ]
    assert result.stderr.count("epoch 2 loss") == 1  # only rank 0 logs
