"""FLOPs of InternImage models as published: multiply-accumulates of the dense layers plus
the DCNv3 core (bilinear sampling and point weighting).

mmengine's :class:`~mmengine.analysis.FlopAnalyzer` traces the model and counts convs,
linears, norms and matmuls (one multiply-add = one FLOP), but knows nothing of the DCNv3
core (the compiled op, or ``grid_sample`` in the reference). That part is counted from
each DCNv3 module's output as in the paper: ``5 * H_out * W_out * K * C`` per layer
(4 bilinear corner weights + 1 point weight per sampled value).
"""

from typing import Dict, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn

from ops_dcnv3 import DCNv3

__all__ = ['dcnv3_core_flops', 'count_flops', 'DCNV3_MACS_PER_SAMPLE']

DCNV3_MACS_PER_SAMPLE = 5
# Ops of the DCNv3 core (compiled, or the reference's sampling); counted by hooks instead.
_CORE_OPS = ('ops_dcnv3::dcnv3_forward', 'aten::grid_sample', 'aten::grid_sampler')


def dcnv3_core_flops(model: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> int:
    """MACs of every DCNv3 core op in one forward of ``model(*inputs)``."""
    total = 0

    def hook(module: DCNv3, args, output: torch.Tensor) -> None:
        nonlocal total
        batch, height, width, channels = output.shape
        total += DCNV3_MACS_PER_SAMPLE * batch * height * width * module.num_points * channels

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, DCNv3)]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_flops(model: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> Dict[str, int]:
    """Counts FLOPs (MACs) and parameters of ``model(*inputs)``.

    Returns:
        dict: ``dense`` (traced layers), ``dcnv3_core``, ``total`` and ``params``.
    """
    was_training = model.training
    model.eval()
    try:
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.set_op_handle(**{op: None for op in _CORE_OPS})
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        dense = analyzer.total()
        core = dcnv3_core_flops(model, inputs)
    finally:
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return dict(dense=dense, dcnv3_core=core, total=dense + core, params=params)
