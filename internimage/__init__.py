"""InternImage for OpenMMLab 2.0.

Importing the package registers, in mmengine's root registries (so mmpretrain, mmdet and
mmseg configs all find them by bare type name): the ``InternImage`` and ``FlashInternImage``
backbones, the classification heads ``InternImageClsHead`` / ``InternImageAttnPoolClsHead``,
the optimizer-wrapper constructors ``InternImageLayerDecayOptimizerConstructor`` /
``InternImageClsLayerDecayOptimizerConstructor``, the ``RandomStateHook`` (random
generators saved in checkpoints, restored on resume), the ``OptimizerStepEMAHook`` (EMA
once per optimizer step) and the ``InternImageFSDPStrategy`` (FSDP clipping by the global
gradient norm). It also
allow-lists, once, the metadata types mmengine's checkpoints pickle (numpy values,
``HistoryBuffer``) for ``torch.load(weights_only=True)``, so the upstream inference APIs
(``DetInferencer``, ``init_detector``, ``MMSegInferencer``, ``init_model``,
``ImageClassificationInferencer``, ``get_model``...) read checkpoints written by our tools;
a config's ``custom_imports=['internimage']`` does the same. It makes mmengine's whole-model
checkpoint loads strict (a file that misses weights of the model or holds keys it lacks,
or is truncated or corrupted, is refused naming the file; ``partial_checkpoint_loading()``
is the explicit opt-out; docs/checkpoints.md). And it registers the
classification configs in mmpretrain's ``ModelHub`` (``configs/model-index.yml``), so
``get_model('internimage-t_8xb128_in1k', pretrained=...)`` and ``inference_model`` work.

Layers, each importing only those listed before it:

- ``checkpoint``: reading checkpoints (torch, numpy, ``mmengine.logging`` only);
- ``models``: the backbone and the classification heads;
- ``engine``: what the Runner builds besides the model (``engine.optimizers``: layer decay);
- ``apis``: what the tools share (config loading, runner, single-image inference);
- ``deploy``: ONNX export of the task models (imports onnx only when used);
  ``deploy.runtime`` reads and runs the exported files and imports no torch: where torch is
  not installed, ``import internimage`` skips everything else (the names above then raise
  ImportError saying so);

and, beside them, ``datasets`` (the synthetic quick-start data) and ``analysis`` (FLOPs),
which the tools import explicitly.
"""

from typing import Optional

try:
    import torch  # noqa: F401
except ImportError as error:  # a runtime-only install (requirements/deploy.txt): no models
    _TORCH_IMPORT_ERROR: Optional[ImportError] = error
else:
    _TORCH_IMPORT_ERROR = None

if _TORCH_IMPORT_ERROR is None:
    from .checkpoint import (
        convert_classification_checkpoint,
        install_strict_checkpoint_loading,
        load_backbone_checkpoint,
        partial_checkpoint_loading,
        register_checkpoint_safe_globals,
    )
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
        register_model_index,
    )

    register_checkpoint_safe_globals()
    install_strict_checkpoint_loading()
    register_model_index()

else:

    def __getattr__(name: str):
        if name not in __all__:
            raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
        raise ImportError(
            f'internimage.{name} needs PyTorch, which cannot be imported here '
            f'({_TORCH_IMPORT_ERROR}); without it only internimage.deploy.runtime (running '
            'exported ONNX files) works'
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
    'partial_checkpoint_loading',
]
