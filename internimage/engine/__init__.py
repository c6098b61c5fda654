"""Training-side components the Runner builds from a config (OpenMMLab's ``engine/``)."""

from .amp import CPUBFloat16AmpOptimWrapper
from .hooks import RandomStateHook
from .optimizers import (
    InternImageClsLayerDecayOptimizerConstructor,
    InternImageLayerDecayOptimizerConstructor,
    is_no_decay_param,
)

__all__ = [
    'CPUBFloat16AmpOptimWrapper',
    'InternImageClsLayerDecayOptimizerConstructor',
    'InternImageLayerDecayOptimizerConstructor',
    'RandomStateHook',
    'is_no_decay_param',
]
