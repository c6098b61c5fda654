"""Training-side components the Runner builds from a config (OpenMMLab's ``engine/``)."""

from .amp import (
    CPUBFloat16AmpOptimWrapper,
    FeatureExtractorAutocastHook,
    autocast_feature_extractor,
)
from .hooks import RandomStateHook
from .optimizers import (
    InternImageClsLayerDecayOptimizerConstructor,
    InternImageLayerDecayOptimizerConstructor,
    is_no_decay_param,
)

__all__ = [
    'CPUBFloat16AmpOptimWrapper',
    'FeatureExtractorAutocastHook',
    'autocast_feature_extractor',
    'InternImageClsLayerDecayOptimizerConstructor',
    'InternImageLayerDecayOptimizerConstructor',
    'RandomStateHook',
    'is_no_decay_param',
]
