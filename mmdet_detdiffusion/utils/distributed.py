"""Starting the process group for our tools, with or without GPUs."""
import torch
import torch.distributed as torch_dist
from mmengine import dist


def init_distributed(launcher: str) -> None:
    """Join the process group of ``launcher`` (``'none'``: single process, nothing to do).

    mmengine 0.10's ``init_dist`` always selects a CUDA device; without GPUs (CPU runs, CI) this starts
    a gloo group from torchrun's environment variables instead.
    """
    if launcher == 'none' or torch_dist.is_initialized():
        return
    if torch.cuda.is_available():
        dist.init_dist(launcher)
    elif launcher == 'pytorch':
        torch_dist.init_process_group('gloo')
    else:
        raise RuntimeError(f'launcher {launcher!r} without CUDA is not supported: use torchrun (--launcher pytorch)')
