from .cls_layer_decay import InternImageClsLayerDecayOptimizerConstructor
from .layer_decay import InternImageLayerDecayOptimizerConstructor, is_no_decay_param

__all__ = [
    'InternImageClsLayerDecayOptimizerConstructor',
    'InternImageLayerDecayOptimizerConstructor',
    'is_no_decay_param',
]
