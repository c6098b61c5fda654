"""Training-side components the Runner builds from a config (OpenMMLab's ``engine/``)."""

from .ema import OptimizerStepEMAHook
from .hooks import RandomStateHook
from .optimizers import (
    InternImageClsLayerDecayOptimizerConstructor,
    InternImageLayerDecayOptimizerConstructor,
    is_no_decay_param,
)

__all__ = [
    'InternImageClsLayerDecayOptimizerConstructor',
    'InternImageLayerDecayOptimizerConstructor',
    'OptimizerStepEMAHook',
    'RandomStateHook',
    'is_no_decay_param',
]
