"""Deployment: InternImage models as plain ONNX files for ONNX Runtime and OpenVINO.

See docs/deploy.md. :mod:`.export` builds and exports the task models (DCNv3 translated by
:mod:`ops_dcnv3.onnx_export`); :mod:`.runtime` reads and runs the files in ONNX Runtime and
OpenVINO, without PyTorch: where torch is not installed only it is imported.
"""

from .runtime import read_metadata

try:
    import torch  # noqa: F401
except ImportError as error:  # a runtime-only install (requirements/deploy.txt): no export
    _TORCH_IMPORT_ERROR = error

    def __getattr__(name: str):
        if name not in __all__:
            raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
        raise ImportError(
            f'internimage.deploy.{name} exports models and needs PyTorch ({_TORCH_IMPORT_ERROR})'
        )
else:
    from .export import (
        SUPPORTED_MODELS,
        TASKS,
        ClassifierForExport,
        DeployError,
        MaskDetectorForExport,
        SegmentorForExport,
        check_export_options,
        default_input_shape,
        export_module,
        export_onnx,
        export_task_model,
        load_task_model,
        wrap_for_export,
    )

__all__ = [
    'DeployError',
    'TASKS',
    'SUPPORTED_MODELS',
    'ClassifierForExport',
    'SegmentorForExport',
    'MaskDetectorForExport',
    'load_task_model',
    'wrap_for_export',
    'export_module',
    'export_task_model',
    'export_onnx',
    'read_metadata',
    'default_input_shape',
    'check_export_options',
]
