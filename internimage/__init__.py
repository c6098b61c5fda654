"""InternImage for OpenMMLab 2.0.

Importing the package registers, in mmengine's root registries (so mmpretrain, mmdet and
mmseg configs all find them by bare type name): the ``InternImage`` and ``FlashInternImage``
backbones, the
classification heads ``InternImageClsHead`` / ``InternImageAttnPoolClsHead`` and the
optimizer-wrapper constructor ``InternImageLayerDecayOptimizerConstructor``.
"""

from .checkpoint import convert_classification_checkpoint, load_backbone_checkpoint
from .models import (
    FlashInternImage,
    InternImage,
    InternImageAttnPoolClsHead,
    InternImageClsHead,
)
from .optim import InternImageLayerDecayOptimizerConstructor

__version__ = '0.1.0'

__all__ = [
    'InternImage',
    'FlashInternImage',
    'InternImageClsHead',
    'InternImageAttnPoolClsHead',
    'InternImageLayerDecayOptimizerConstructor',
    'load_backbone_checkpoint',
    'convert_classification_checkpoint',
]
