"""Single-image inference rendered with each library's own visualizer."""

import os
import os.path as osp
from typing import Any

import mmcv
from mmengine.config import Config

from ..checkpoint import register_checkpoint_safe_globals
from .runner import task_scope

__all__ = ['render_prediction']


def _draw(
    visualizers: Any, model: Any, image: str, result: Any, out_file: str, **draw_kwargs
) -> None:
    """Render ``result`` with the visualizer the model's config names."""
    visualizer = visualizers.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample(
        'result',
        mmcv.imread(image, channel_order='rgb'),
        data_sample=result,
        draw_gt=False,
        out_file=out_file,
        **draw_kwargs,
    )


def _detect(
    cfg: Config, checkpoint: str, image: str, out_file: str, device: str, score_thr: float
) -> Any:
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    model = init_detector(cfg, checkpoint, device=device)
    result = inference_detector(model, image)
    _draw(VISUALIZERS, model, image, result, out_file, pred_score_thr=score_thr)
    return result


def _segment(
    cfg: Config, checkpoint: str, image: str, out_file: str, device: str, score_thr: float
) -> Any:
    from mmseg.apis import inference_model, init_model
    from mmseg.registry import VISUALIZERS

    model = init_model(cfg, checkpoint, device=device)
    result = inference_model(model, image)
    _draw(VISUALIZERS, model, image, result, out_file)
    return result


def _classify(
    cfg: Config, checkpoint: str, image: str, out_file: str, device: str, score_thr: float
) -> Any:
    from mmpretrain.apis import ImageClassificationInferencer
    from mmpretrain.visualization import UniversalVisualizer

    inferencer = ImageClassificationInferencer(model=cfg, pretrained=checkpoint, device=device)
    [result] = inferencer(image, return_datasamples=True)
    UniversalVisualizer().visualize_cls(
        mmcv.imread(image, channel_order='rgb'),
        result,
        classes=inferencer.classes,
        draw_gt=False,
        out_file=out_file,
    )
    return result


_RENDERERS = {'mmdet': _detect, 'mmseg': _segment, 'mmpretrain': _classify}


def render_prediction(
    config: str,
    checkpoint: str,
    image: str,
    out_file: str,
    device: str = 'cpu',
    score_thr: float = 0.3,
) -> Any:
    """Predict on one image and save the rendering to ``out_file``.

    Detection draws boxes and masks (``DetLocalVisualizer``), segmentation
    overlays the label map (``SegLocalVisualizer``), classification writes the
    predicted class and score (``UniversalVisualizer``).

    Args:
        config (str): Config file (task read from its ``default_scope``).
        checkpoint (str): Checkpoint file.
        image (str): Image file.
        out_file (str): Where to write the rendered image.
        device (str): Torch device. Defaults to 'cpu'.
        score_thr (float): Detection score threshold for drawing.
            Defaults to 0.3.

    Returns:
        The task's data sample (DetDataSample / SegDataSample / DataSample).
    """
    for name, path in (('config', config), ('checkpoint', checkpoint), ('image', image)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{name} file not found: {path}')
    register_checkpoint_safe_globals()
    cfg = Config.fromfile(config)
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    return _RENDERERS[task_scope(cfg)](cfg, checkpoint, image, out_file, device, score_thr)
