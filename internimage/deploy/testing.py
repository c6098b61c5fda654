"""Weights that make an export check meaningful (tests and the benchmark).

A freshly initialised InternImage hides DCNv3 mapping bugs: the offset and mask projections
start at zero (every point samples its grid position with equal weight), the
centre-feature-scale gate at zero and layer scales at 1e-5 (the DCNv3 branch barely
contributes). :func:`randomize_for_export_check` draws non-trivial values for all of them.
"""

import torch
from torch import nn

from ops_dcnv3 import DCNv3

__all__ = ['randomize_for_export_check']


def randomize_for_export_check(
    model: nn.Module, seed: int = 0, offset_pixels: float = 1.5
) -> nn.Module:
    """Draws random DCNv3 offsets/masks (about ``offset_pixels`` px), gates and layer scales.

    Returns the model (modified in place).
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    def normal(tensor: torch.Tensor, std: float) -> None:
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, DCNv3):
                fan_in = module.offset.weight.shape[1]
                normal(module.offset.weight, offset_pixels / fan_in**0.5)
                uniform(module.offset.bias, -offset_pixels, offset_pixels)
                normal(module.mask.weight, 1.0 / fan_in**0.5)
                uniform(module.mask.bias, -1.0, 1.0)
                if module.center_feature_scale:
                    normal(module.center_feature_scale_proj_weight, 1.0 / fan_in**0.5)
                    uniform(module.center_feature_scale_proj_bias, -1.0, 1.0)
            for name in ('gamma1', 'gamma2'):
                gamma = getattr(module, name, None)
                if isinstance(gamma, nn.Parameter):
                    uniform(gamma, 0.5, 1.5)
    return model
