"""FLOPs of InternImage / FlashInternImage models as published: multiply-accumulates of the
dense layers plus the deformable core (DCNv3 / DCNv4 bilinear sampling and point weighting).

mmengine's :class:`~mmengine.analysis.FlopAnalyzer` traces the model and counts convs,
linears, norms and matmuls (one multiply-add = one FLOP), but knows nothing of the
deformable core (the compiled ops, or ``grid_sample`` in the references). That part is
counted from each DCNv3 / DCNv4 module's output as in the paper: ``5 * H_out * W_out * K * C``
per layer (4 bilinear corner weights + 1 point weight per sampled value). DCNv4 samples the
same way (it only reads offsets and weights from one packed tensor and skips the softmax,
which the published count leaves out for DCNv3 too), so one formula serves both.
"""

from typing import Dict, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from torch import nn

from ops_dcnv3 import DCNv3, DCNv4

__all__ = [
    'deformable_core_flops',
    'count_flops',
    'build_counted_model',
    'DEFORMABLE_MACS_PER_SAMPLE',
]

DEFORMABLE_MACS_PER_SAMPLE = 5
# Ops of the deformable core (compiled, or the references' sampling); counted by hooks instead.
_CORE_OPS = (
    'ops_dcnv3::dcnv3_forward',
    'ops_dcnv3::dcnv4_forward',
    'aten::grid_sample',
    'aten::grid_sampler',
)


def deformable_core_flops(model: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> int:
    """MACs of every DCNv3 / DCNv4 core op in one forward of ``model(*inputs)``.

    Args:
        model (nn.Module): The model (run once, without gradients).
        inputs (tuple[Tensor]): Its positional inputs.
    """
    total = 0

    def hook(module: nn.Module, args, output: torch.Tensor) -> None:
        nonlocal total
        batch, height, width, channels = output.shape
        total += DEFORMABLE_MACS_PER_SAMPLE * batch * height * width * module.num_points * channels

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (DCNv3, DCNv4))
    ]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_flops(model: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> Dict[str, int]:
    """Counts FLOPs (MACs) and parameters of ``model(*inputs)``.

    Args:
        model (nn.Module): The model (put in eval mode for the count, then restored).
        inputs (tuple[Tensor]): Its positional inputs.

    Returns:
        dict: ``dense`` (traced layers), ``deformable_core`` (DCNv3 / DCNv4 sampling),
        ``total`` and ``params``.
    """
    was_training = model.training
    model.eval()
    try:
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.set_op_handle(**{op: None for op in _CORE_OPS})
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        dense = analyzer.total()
        core = deformable_core_flops(model, inputs)
    finally:
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return dict(dense=dense, deformable_core=core, total=dense + core, params=params)


class _BackboneNeck(nn.Module):
    """Backbone followed by the optional neck (the part of a detector that runs alone)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.neck = getattr(model, 'neck', None)

    def forward(self, x: torch.Tensor):
        feats = self.backbone(x)
        return self.neck(feats) if self.neck is not None else feats


def build_counted_model(cfg: Config) -> nn.Module:
    """The config's model in eval mode as counted: the whole model for classification and
    segmentation, backbone + neck for detection (the heads need image metadata to run).

    Args:
        cfg (Config): A task config (task from its ``default_scope``; ``internimage`` must be
            imported so the backbones are registered).
    """
    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    model = MODELS.build(cfg.model)
    if scope == 'mmdet':
        model = _BackboneNeck(model)
    return model.eval()
