"""Training-side components the Runner builds from a config (OpenMMLab's ``engine/``)."""

from .amp import (
    CPUBFloat16AmpOptimWrapper,
    FeatureExtractorAutocastHook,
    autocast_feature_extractor,
)
from .divergence import StopOnDivergenceHook, TrainingDivergedError
from .ema import OptimizerStepEMAHook
from .fsdp import InternImageFSDPStrategy
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
    'InternImageFSDPStrategy',
    'InternImageLayerDecayOptimizerConstructor',
    'OptimizerStepEMAHook',
    'RandomStateHook',
    'StopOnDivergenceHook',
    'TrainingDivergedError',
    'is_no_decay_param',
]
