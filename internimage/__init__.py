"""InternImage for OpenMMLab 2.0.

Importing the package registers, in mmengine's root registries (so mmpretrain, mmdet and
mmseg configs all find them by bare type name): the ``InternImage`` and ``FlashInternImage``
backbones, the classification heads ``InternImageClsHead`` / ``InternImageAttnPoolClsHead``,
the optimizer-wrapper constructors ``InternImageLayerDecayOptimizerConstructor`` /
``InternImageClsLayerDecayOptimizerConstructor`` and the ``RandomStateHook`` (random
generators saved in checkpoints, restored on resume).

Layers, each importing only those listed before it:

- ``checkpoint``: reading checkpoints (torch, numpy, ``mmengine.logging`` only);
- ``models``: the backbone and the classification heads;
- ``engine``: what the Runner builds besides the model (``engine.optimizers``: layer decay);
- ``apis``: what the tools share (config loading, runner, single-image inference);
- ``deploy``: ONNX export of the task models (imports onnx only when used);

and, beside them, ``datasets`` (the synthetic quick-start data) and ``analysis`` (FLOPs),
which the tools import explicitly.
"""

from .checkpoint import convert_classification_checkpoint, load_backbone_checkpoint
from .engine import (
    InternImageClsLayerDecayOptimizerConstructor,
    InternImageLayerDecayOptimizerConstructor,
    RandomStateHook,
)
from .models import (
    FlashInternImage,
    InternImage,
    InternImageAttnPoolClsHead,
    InternImageClsHead,
)

__version__ = '0.1.0'

__all__ = [
    'InternImage',
    'FlashInternImage',
    'InternImageClsHead',
    'InternImageAttnPoolClsHead',
    'InternImageLayerDecayOptimizerConstructor',
    'InternImageClsLayerDecayOptimizerConstructor',
    'RandomStateHook',
    'load_backbone_checkpoint',
    'convert_classification_checkpoint',
]
