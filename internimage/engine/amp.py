"""Mixed-precision training on the CPU: mmengine's ``AmpOptimWrapper`` is CUDA/NPU/MLU only."""

from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

__all__ = ['CPUBFloat16AmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class CPUBFloat16AmpOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose forward runs under ``torch.autocast('cpu', bfloat16)``.

    What ``AmpOptimWrapper(dtype='bfloat16')`` does on a GPU, for CPU-only machines (where
    mmengine 0.10.7's refuses to start): linears and convolutions (and the DCNv3/DCNv4 ops,
    see ``ops_dcnv3.functional``) compute in bfloat16, the weights and the optimizer state stay
    float32. bfloat16 keeps float32's exponent range, so no loss scaling is needed, and
    ``backward`` / ``step`` are the plain wrapper's.

    Args:
        **kwargs: Those of ``mmengine.optim.OptimWrapper`` (optimizer, accumulative_counts,
            clip_grad).
    """

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """Gradient-accumulation context of the plain wrapper, plus CPU bfloat16 autocast."""
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield
