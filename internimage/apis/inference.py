"""Single-image inference through each library's own inferencer.

A thin layer over the upstream APIs (``docs/inference.md``): mmdet's ``DetInferencer``,
mmseg's ``MMSegInferencer`` and mmpretrain's ``ImageClassificationInferencer`` predict and
draw (boxes and masks, the label-map overlay, the top class and score). Importing
``internimage`` allow-listed mmengine's checkpoint metadata types, so these read the
checkpoints our tools write with ``torch.load(weights_only=True)``.
"""

import os
import os.path as osp
import shutil
import tempfile
from pathlib import Path
from typing import Any, Tuple

import mmcv
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ..checkpoint import check_checkpoint_file
from ..engine import autocast_feature_extractor
from .runner import task_scope

__all__ = ['build_inferencer', 'render_prediction']


def build_inferencer(config: str, checkpoint: str, device: str = 'cpu') -> Tuple[str, Any]:
    """The upstream inferencer for ``config``'s task, loaded with ``checkpoint``.

    Returns:
        tuple: (task scope: 'mmdet', 'mmseg' or 'mmpretrain', the inferencer).
    """
    scope = task_scope(Config.fromfile(config))
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer

        return scope, DetInferencer(
            model=config, weights=checkpoint, device=device, show_progress=False
        )
    if scope == 'mmseg':
        from mmseg.apis import MMSegInferencer

        return scope, MMSegInferencer(model=config, weights=checkpoint, device=device)
    from mmpretrain.apis import ImageClassificationInferencer

    # mmpretrain's inferencer builds its pipeline in the current default scope (mmdet's and
    # mmseg's inferencers set theirs): make it mmpretrain's.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return scope, ImageClassificationInferencer(
            model=config, pretrained=checkpoint, device=device
        )


def _predict(scope: str, inferencer: Any, image: str, vis_dir: str, score_thr: float) -> Any:
    """Run the inferencer on one image, saving its drawing under ``vis_dir``; return the
    data sample."""
    if scope == 'mmdet':
        results = inferencer(
            image, out_dir=vis_dir, pred_score_thr=score_thr, return_datasamples=True
        )
        return results['predictions'][0]
    if scope == 'mmseg':
        return inferencer(image, out_dir=vis_dir, return_datasamples=True)
    [result] = inferencer(image, return_datasamples=True, show_dir=osp.join(vis_dir, 'vis'))
    return result


def render_prediction(
    config: str,
    checkpoint: str,
    image: str,
    out_file: str,
    device: str = 'cpu',
    score_thr: float = 0.3,
    amp: bool = False,
) -> Any:
    """Predict on one image with the task's upstream inferencer and save its drawing.

    Detection draws boxes and masks (``DetInferencer``), segmentation overlays the label
    map (``MMSegInferencer``), classification writes the top class and score
    (``ImageClassificationInferencer``). A checkpoint that does not fit the model, or
    cannot be read, is refused (``CheckpointMismatchError`` / ``CheckpointReadError``)
    unless inside ``internimage.partial_checkpoint_loading()``.

    Args:
        config (str): Config file (task read from its ``default_scope``).
        checkpoint (str): Checkpoint file (ours, or converted from a released one).
        image (str): Image file.
        out_file (str): Where to write the drawing (format from its extension).
        device (str): Torch device. Defaults to 'cpu'.
        score_thr (float): Detection score threshold for drawing. Defaults to 0.3.
        amp (bool): Run the backbone and neck in bfloat16 on the CPU (float16 on CUDA); the
            heads and post-processing stay float32 (``autocast_feature_extractor``). Defaults
            to False.

    Returns:
        The task's data sample (DetDataSample / SegDataSample / DataSample).
    """
    for name, path in (('config', config), ('image', image)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{name} file not found: {path}')
    if '://' not in checkpoint:
        check_checkpoint_file(checkpoint)
    scope, inferencer = build_inferencer(config, checkpoint, device)
    if amp:
        device_type = device.split(':')[0]
        half = torch.float16 if device_type == 'cuda' else torch.bfloat16
        autocast_feature_extractor(inferencer.model, device_type, half)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with tempfile.TemporaryDirectory() as vis_dir:
        result = _predict(scope, inferencer, image, vis_dir, score_thr)
        [drawn] = [p for p in Path(vis_dir, 'vis').iterdir() if p.is_file()]
        if drawn.suffix.lower() == Path(out_file).suffix.lower():
            shutil.copyfile(drawn, out_file)
        else:
            mmcv.imwrite(mmcv.imread(str(drawn)), out_file)
    return result
