"""FSDP training whose gradient clipping sees the whole model's gradient."""

import functools
from typing import Optional, Union

import torch
from mmengine._strategy import FSDPStrategy
from mmengine.optim import BaseOptimWrapper, OptimWrapper, OptimWrapperDict
from mmengine.registry import STRATEGIES
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

__all__ = ['InternImageFSDPStrategy']

# What FSDP's clip_grad_norm_ takes besides the parameters.
_FSDP_CLIP_KEYS = ('max_norm', 'norm_type')


def _clip_by_global_norm(model: FSDP, params, max_norm: float, norm_type: float = 2.0):
    """``torch.nn.utils.clip_grad_norm_``'s signature, computed by FSDP over every rank's
    shards of ``model``'s gradients (``params`` are this rank's shards of the same)."""
    return model.clip_grad_norm_(max_norm, norm_type)


@STRATEGIES.register_module()
class InternImageFSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy`` with ``optim_wrapper.clip_grad`` (norm clipping) over
    the global gradient norm.

    mmengine's optim wrapper clips with ``torch.nn.utils.clip_grad_norm_`` on the
    parameters the optimizer holds, which under FSDP are this rank's shards: each rank
    would scale its own piece by its own norm. Here the wrapper's clip function is FSDP's
    ``clip_grad_norm_`` on the root module, which all-reduces the shard norms, so every
    rank scales by the norm of the whole gradient, as the unsharded model (or DDP) would.
    Arguments are ``FSDPStrategy``'s; ``clip_grad`` may give ``max_norm`` and
    ``norm_type`` only (FSDP takes no other option). Value clipping is element-wise and
    left as it is.
    """

    def build_optim_wrapper(
        self,
        optim_wrapper: Union[torch.optim.Optimizer, OptimWrapper, dict],
        model: Optional[nn.Module] = None,
    ) -> BaseOptimWrapper:
        """Build the wrapper as ``FSDPStrategy`` does, then point its norm clipping at
        the FSDP root ``model``.

        Args:
            optim_wrapper (Optimizer | OptimWrapper | dict): What ``FSDPStrategy`` takes.
            model (nn.Module, optional): The FSDP-wrapped model.

        Returns:
            BaseOptimWrapper: The built optim wrapper.
        """
        built = super().build_optim_wrapper(optim_wrapper, model)
        model = model if model is not None else self.model
        if not isinstance(model, FSDP):
            raise TypeError(
                f'{type(self).__name__} clips over an FSDP root module; '
                f'the model is {type(model).__name__}'
            )
        wrappers = built.values() if isinstance(built, OptimWrapperDict) else [built]
        for wrapper in wrappers:
            if getattr(wrapper, 'clip_func', None) is not torch.nn.utils.clip_grad_norm_:
                continue
            unsupported = sorted(set(wrapper.clip_grad_kwargs) - set(_FSDP_CLIP_KEYS))
            if unsupported:
                raise ValueError(
                    f'optim_wrapper.clip_grad: FSDP clipping takes {_FSDP_CLIP_KEYS}, '
                    f'got also {unsupported}'
                )
            wrapper.clip_func = functools.partial(_clip_by_global_norm, model)
        return built
