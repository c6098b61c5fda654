"""Training-side components the Runner builds from a config (OpenMMLab's ``engine/``)."""

from .hooks import RandomStateHook
from .optimizers import (
    InternImageClsLayerDecayOptimizerConstructor,
    InternImageLayerDecayOptimizerConstructor,
    is_no_decay_param,
)

__all__ = [
    'InternImageClsLayerDecayOptimizerConstructor',
    'InternImageLayerDecayOptimizerConstructor',
    'RandomStateHook',
    'is_no_decay_param',
]
