"""InternImage for OpenMMLab 2.0.

Importing the package registers, in mmengine's root registries (so mmpretrain, mmdet and
mmseg configs all find them by bare type name): the ``InternImage`` backbone, the
classification heads ``InternImageClsHead`` / ``InternImageAttnPoolClsHead`` and the
optimizer-wrapper constructor ``InternImageLayerDecayOptimizerConstructor``.
"""

from .checkpoint import convert_classification_checkpoint, load_backbone_checkpoint
from .models import InternImage, InternImageAttnPoolClsHead, InternImageClsHead
from .optim import InternImageLayerDecayOptimizerConstructor

__version__ = '0.1.0'

__all__ = [
    'InternImage',
    'InternImageClsHead',
    'InternImageAttnPoolClsHead',
    'InternImageLayerDecayOptimizerConstructor',
    'load_backbone_checkpoint',
    'convert_classification_checkpoint',
]
