"""Summing metric states across DDP ranks, whatever device the state lives on."""

from __future__ import annotations

import torch
import torch.distributed as dist


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum `t` over ranks (returns it unchanged outside torch.distributed).

    NCCL reduces CUDA tensors only, so CPU states go through the current CUDA device and come back.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return t
    if dist.get_backend() == "nccl" and not t.is_cuda:
        tmp = t.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(tmp)
        return tmp.to(t.device)
    dist.all_reduce(t)
    return t
