from .layer_decay import InternImageLayerDecayOptimizerConstructor, is_no_decay_param

__all__ = ['InternImageLayerDecayOptimizerConstructor', 'is_no_decay_param']
