"""Mixed precision without mmengine's CUDA-only pieces: training on the CPU in bfloat16
autocast (mmengine's ``AmpOptimWrapper`` refuses CPU-only machines), and inference with the
feature extractor in bfloat16 (``tools/test.py --amp``, ``render_prediction(amp=True)``)."""

from contextlib import contextmanager
from typing import Any, Callable, List

import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, OPTIM_WRAPPERS

__all__ = [
    'CPUBFloat16AmpOptimWrapper',
    'FeatureExtractorAutocastHook',
    'autocast_feature_extractor',
]


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


def _to_float32(value: Any) -> Any:
    """``value`` with its half-precision tensors (also inside tuples, lists, dicts) in float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float32(v) for k, v in value.items()}
    return value


def autocast_feature_extractor(
    model: torch.nn.Module, device_type: str = 'cpu', dtype: torch.dtype = torch.bfloat16
) -> List[str]:
    """Run ``model.backbone`` and ``model.neck`` (where present) under ``torch.autocast`` and
    hand their features to the rest in float32.

    mmengine's own switch, ``test_cfg.fp16``, runs the whole ``test_step`` under autocast; on
    the CPU that stops mmdet models, since mmcv's ``RoIAlign`` has no bfloat16 kernel and its
    ``nms`` wants float32. The feature extractor is where the time goes, so it alone runs in
    bfloat16 here, and the heads and all post-processing (RoI pooling, box decoding, NMS,
    mask pasting, resizing of label maps) stay float32. Weights, parameter names and
    checkpoints are unchanged: only the modules' ``forward`` is wrapped (once).

    Args:
        model (nn.Module): An mmdet / mmseg / mmpretrain model (a wrapper's ``.module`` too).
        device_type (str): Device type of the autocast. Defaults to 'cpu'.
        dtype (torch.dtype): Autocast dtype. Defaults to torch.bfloat16.

    Returns:
        list[str]: The names of the modules wrapped.
    """
    model = getattr(model, 'module', model)
    wrapped = []
    for name in ('backbone', 'neck'):
        module = getattr(model, name, None)
        if module is None:
            continue
        if not getattr(module, '_autocast_wrapped', False):
            module.forward = _autocast_forward(module.forward, device_type, dtype)
            module._autocast_wrapped = True
        wrapped.append(name)
    if not wrapped:
        raise ValueError(
            f'{type(model).__name__} has neither a backbone nor a neck to run in {dtype}'
        )
    return wrapped


def _autocast_forward(forward: Callable, device_type: str, dtype: torch.dtype) -> Callable:
    def autocast_forward(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return _to_float32(forward(*args, **kwargs))

    return autocast_forward


@HOOKS.register_module()
class FeatureExtractorAutocastHook(Hook):
    """Before testing, :func:`autocast_feature_extractor` on the runner's model
    (``tools/test.py --amp``).

    Args:
        dtype (str): ``'bfloat16'`` (CPU) or ``'float16'`` (CUDA). Defaults to 'bfloat16'.
    """

    priority = 'VERY_LOW'

    def __init__(self, dtype: str = 'bfloat16') -> None:
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f'dtype must be "bfloat16" or "float16", got {dtype!r}')
        self.dtype = getattr(torch, dtype)

    def before_test(self, runner) -> None:
        device_type = 'cuda' if next(runner.model.parameters()).is_cuda else 'cpu'
        wrapped = autocast_feature_extractor(runner.model, device_type, self.dtype)
        runner.logger.info(f'testing with {"+".join(wrapped)} in {self.dtype} ({device_type})')
