"""Deployment: InternImage models as plain ONNX files for ONNX Runtime and OpenVINO.

See docs/deploy.md. :mod:`.export` builds and exports the task models (DCNv3 translated by
:mod:`ops_dcnv3.onnx_export`); :mod:`.runtime` runs the files in ONNX Runtime and OpenVINO.
"""

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
    read_metadata,
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
