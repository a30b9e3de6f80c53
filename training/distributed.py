"""One process or many: device choice and the torch.distributed plumbing for `torchrun` runs.

The same training script runs alone (`lipreader-train ...`) or under torchrun
(`torchrun --nproc_per_node 2 -m training.cli ...`): torchrun sets RANK, WORLD_SIZE and LOCAL_RANK,
and `setup` then joins the process group (NCCL on CUDA, gloo on CPU). Rank 0 is the master
process: it alone prepares data, logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import datetime
import gc
import logging
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

log = logging.getLogger("lipreader")

# rank 0 may prepare data or evaluate while the others wait in a collective
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class Dist:
    """This process's place in the run."""

    rank: int = 0  # global rank
    world: int = 1  # number of processes
    local_rank: int = 0  # rank on this machine (picks the GPU)
    device: torch.device = torch.device("cpu")  # where the model and batches live

    @property
    def master(self) -> bool:
        """True for the one process that logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """ "auto": CUDA (the local rank's GPU) when available, else CPU; otherwise the named device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def setup(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun; a single-process Dist otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = env_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if world > 1 and not torch_dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        torch_dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        log.info("rank %d of %d on %s (%s)", rank, world, chosen, backend)
    return Dist(rank, world, local_rank, chosen)


def cleanup(dist: Dist) -> None:
    if dist.distributed and torch_dist.is_initialized():
        # the DDP model (in reference cycles) still holds the group: freed later, at interpreter exit,
        # gloo's threads were torn down half-way ("terminate called without an active exception")
        gc.collect()
        torch_dist.destroy_process_group()


def barrier(dist: Dist) -> None:
    if dist.distributed:
        torch_dist.barrier()


def broadcast(value: object, dist: Dist) -> object:
    """Rank 0's `value` on every rank (any picklable object)."""
    if not dist.distributed:
        return value
    box = [value if dist.master else None]
    torch_dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(value: float, dist: Dist) -> float:
    """The mean of a number over all ranks."""
    if not dist.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=dist.device)
    torch_dist.all_reduce(tensor)
    return float(tensor.item()) / dist.world


def shard(order: list[int], dist: Dist) -> list[int]:
    """This rank's share of an epoch's sample order: order[rank::world], padded from the start so
    every rank takes the same number of steps (collectives would hang otherwise)."""
    if not dist.distributed:
        return order
    padded = order + order[: (-len(order)) % dist.world]
    return padded[dist.rank :: dist.world]


def wrap_model(model: torch.nn.Module, dist: Dist) -> torch.nn.Module:
    """The model for the forward pass: DDP under torchrun (SyncBatchNorm only on CUDA)."""
    if not dist.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    # the stem's weight gradient (C, 1, 5, 5, 5) comes with an arbitrary stride on its size-1 input
    # channel axis; DDP warns about the layout although nothing is wrong
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

    if dist.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[dist.device.index])
    return DistributedDataParallel(model)
