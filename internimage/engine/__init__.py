"""Training-side components the Runner builds from a config (OpenMMLab's ``engine/``)."""

from .optimizers import InternImageLayerDecayOptimizerConstructor, is_no_decay_param

__all__ = ['InternImageLayerDecayOptimizerConstructor', 'is_no_decay_param']
