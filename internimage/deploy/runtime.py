"""Reading and running exported files in ONNX Runtime and OpenVINO (CPU), without PyTorch.

Needs numpy, onnx (for :func:`read_metadata`) and the runtime used (``onnxruntime`` or
``openvino``), the packages of ``requirements/deploy.txt``; it imports no torch, mmengine or
model code, so ``tools/deploy/onnx_infer.py`` runs where only these are installed (the
package's ``__init__`` files skip the model stack when torch is missing).
"""

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

__all__ = [
    'read_metadata',
    'ort_session',
    'run_ort',
    'openvino_model',
    'run_openvino',
    'max_relative_error',
    'compare_outputs',
]


def read_metadata(path_or_model: Union[str, os.PathLike, Any]) -> Dict[str, Any]:
    """The ``metadata_props`` of an exported file, JSON values decoded (others as str).

    Args:
        path_or_model (str | PathLike | onnx.ModelProto): The ``.onnx`` file (its external
            data is not read), or a model already loaded.
    """
    import onnx

    model = (
        onnx.load(path_or_model, load_external_data=False)
        if isinstance(path_or_model, (str, os.PathLike))
        else path_or_model
    )
    result = {}
    for prop in model.metadata_props:
        try:
            result[prop.key] = json.loads(prop.value)
        except ValueError:
            result[prop.key] = prop.value
    return result


def ort_session(path: str, threads: Optional[int] = None):
    """An ONNX Runtime CPU session; ``threads`` caps its intra-op thread pool."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def run_ort(session, image: np.ndarray) -> List[np.ndarray]:
    """All outputs of ``session`` for one input array."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(image)})


def openvino_model(path: str, threads: Optional[int] = None, precision: str = 'f32'):
    """An OpenVINO CPU compiled model read from the ONNX file.

    ``precision`` is the inference precision hint: OpenVINO otherwise runs bf16 on CPUs
    with AMX/AVX512-BF16 (like this one), which is faster but not float32-accurate.
    """
    import openvino as ov

    core = ov.Core()
    config: Dict[str, str] = {'INFERENCE_PRECISION_HINT': precision}
    if threads is not None:
        config['INFERENCE_NUM_THREADS'] = str(threads)
        config['NUM_STREAMS'] = '1'
    return core.compile_model(core.read_model(path), 'CPU', config)


def run_openvino(compiled, image: np.ndarray) -> List[np.ndarray]:
    """All outputs of an OpenVINO compiled model for one input array."""
    results = compiled(np.ascontiguousarray(image))
    return [np.asarray(results[output]) for output in compiled.outputs]


def max_relative_error(value, reference) -> float:
    """``max |value - reference| / max |reference|`` in float64 (1 as the scale when the
    reference is all zeros).

    Args:
        value (array-like | Tensor): The values to judge (torch tensors on any device are
            read without importing torch here).
        reference (array-like | Tensor): The values they should have (same shape).
    """
    value, reference = _as_float64(value), _as_float64(reference)
    if value.shape != reference.shape:
        raise ValueError(f'shapes differ: {value.shape} vs {reference.shape}')
    scale = np.abs(reference).max()
    return float(np.abs(value - reference).max() / (scale if scale > 0 else 1.0))


def _as_float64(values) -> np.ndarray:
    if hasattr(values, 'detach'):  # a torch tensor: leave autograd and the device
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def compare_outputs(outputs: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> List[float]:
    """:func:`max_relative_error` of each output against its reference."""
    if len(outputs) != len(references):
        raise ValueError(f'{len(outputs)} outputs vs {len(references)} references')
    return [max_relative_error(o, r) for o, r in zip(outputs, references)]
