"""The whole Mask R-CNN in one ONNX file: ONNX Runtime and OpenVINO against mmdet's predict.

The quick-start detector is trained briefly (fixed seed: 50 iterations on 4 generated 64 px
scenes, which it then detects at scores 0.8-0.99) so that it makes confident detections;
untrained (or after 30 iterations on 32 scenes) its class scores stay below 0.3 and the
parity check would check nothing (asserted below). Training dominates the test's time
(measured: 5-9 min with the machine's 2 cores shared by ~9 jobs; the parity part 28 s). The
file is exported once with dynamic batch and size and run on the training scenes at two
sizes (batch 2 at 64x64, batch 1 at 96x128). Every detection of mmdet's ``predict``
(``rescale=False``) scoring > 0.3 must be matched by one of the same label with box IoU
>= 0.99 and mask IoU >= 0.95.
"""

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from internimage.datasets import QuickstartSpec, make_quickstart_data
from internimage.deploy import DeployError, export_task_model, load_task_model, read_metadata
from internimage.deploy.compare import match_detections
from internimage.deploy.runtime import openvino_model, ort_session, run_openvino, run_ort

pytestmark = [pytest.mark.needs_extension, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DET_TINY = 'configs/quickstart/mask-rcnn_internimage-tiny_quickstart.py'
SPEC = QuickstartSpec(
    num_train=4, num_val=1, image_size=64, cls_num_train=1, cls_num_val=1, cls_image_size=32,
    seed=3,
)  # fmt: skip
TRAIN_ITERS = 50
SCORE_BAR = 0.3
MIN_CHECKED = 3  # PyTorch detections above the bar the check needs to mean something


def _train(data_root: Path, work_dir: Path):
    """The quick-start Mask R-CNN trained TRAIN_ITERS iterations at 64 px (mmengine Runner)."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(ROOT / DET_TINY))
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = f'{data_root}/coco/'
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'Resize':
            transform['scale'] = (SPEC.image_size, SPEC.image_size)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=TRAIN_ITERS, val_interval=10**6)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=5)]
    cfg.optim_wrapper.optimizer.lr = 2e-3
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**6)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg'):
        cfg[key] = None
    for key in ('test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner.model.eval()


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(model, info, images): the trained detector, its export metadata and its training
    scenes."""
    folder = tmp_path_factory.mktemp('det')
    data_root = make_quickstart_data(folder / 'data', SPEC)
    torch.manual_seed(0)
    model = _train(data_root, folder / 'work')
    # load_task_model gives the export metadata; its (random) model takes the weights.
    built, _, _, info = load_task_model(str(ROOT / DET_TINY), 'none')
    built.load_state_dict(model.state_dict())
    images = [cv2.imread(str(p)) for p in sorted((data_root / 'coco' / 'train').glob('*'))]
    return built.eval(), info, images


def _normalise(model, images, size):
    """BGR uint8 images -> the model's input at (H, W) ``size`` (its data_preprocessor)."""
    pre = model.data_preprocessor
    batch = []
    for image in images:
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        batch.append(torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float())
    return (torch.stack(batch) - pre.mean) / pre.std


def _mmdet_predict(model, image):
    from mmdet.structures import DetDataSample

    size = tuple(image.shape[2:])
    samples = []
    for _ in range(image.shape[0]):
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0)))
        samples.append(sample)
    with torch.no_grad():
        results = model.predict(image, samples, rescale=False)
    return [
        (
            torch.cat([r.pred_instances.bboxes, r.pred_instances.scores[:, None]], 1).numpy(),
            r.pred_instances.labels.numpy(),
            r.pred_instances.masks.numpy(),
        )
        for r in results
    ]


def test_whole_mask_rcnn_matches_mmdet(trained, tmp_path):
    model, info, images = trained
    path = export_task_model(
        model, 'detection', str(tmp_path / 'det.onnx'), shape=(64, 64), dynamic=True, info=info
    )
    graph = onnx.load(path)
    onnx.checker.check_model(graph, full_check=True)
    op_types = {node.op_type for node in graph.graph.node}
    assert {node.domain for node in graph.graph.node} <= {''} and not graph.functions
    assert {'NonMaxSuppression', 'RoiAlign', 'TopK'} <= op_types
    meta = read_metadata(path)
    assert meta['outputs'] == ['dets', 'labels', 'masks'] and meta['max_detections'] == 50
    assert meta['classes'] == ['circle', 'square', 'triangle']

    ort, compiled = ort_session(path), openvino_model(path)
    checked = 0
    # The dynamic file is traced at 128x128 (its coarsest level 2x2); 64 px makes it 1x1.
    for size, picked in (((64, 64), images[:2]), ((96, 128), images[2:3])):
        image = _normalise(model, picked, size)
        expected = _mmdet_predict(model, image)
        for runtime, outputs in (
            ('onnxruntime', run_ort(ort, image.numpy())),
            ('openvino', run_openvino(compiled, image.numpy())),
        ):
            dets, labels, masks = outputs
            assert dets.shape == (len(picked), 50, 5) and labels.shape == (len(picked), 50)
            assert masks.shape == (len(picked), 50, *size) and masks.dtype == np.bool_
            for index, reference in enumerate(expected):
                result = (dets[index], labels[index], masks[index])
                padding = dets[index, :, 4] == 0
                assert not masks[index][padding].any() and not dets[index][padding].any()
                for label, score, box_iou, mask_iou in match_detections(
                    reference, result, SCORE_BAR
                ):
                    where = (runtime, size, index, label, round(score, 3))
                    assert box_iou >= 0.99, (where, box_iou)
                    assert mask_iou >= 0.95, (where, mask_iou)
                    checked += runtime == 'onnxruntime'
    assert checked >= MIN_CHECKED, f'only {checked} PyTorch detections > {SCORE_BAR}: trained?'


DETECTOR_CONFIG_ERRORS = [
    ("model = dict(type='RetinaNet')", "unsupported detector 'RetinaNet'"),
    (
        'model = dict(roi_head=dict(mask_head=None, mask_roi_extractor=None))',
        'has no mask head',
    ),
    (
        "model = dict(test_cfg=dict(rcnn=dict(nms=dict(type='soft_nms'))))",
        "nms type 'soft_nms' cannot be exported",
    ),
]


@pytest.mark.parametrize('override, message', DETECTOR_CONFIG_ERRORS)
def test_unsupported_detector_refused_before_building(tmp_path, monkeypatch, override, message):
    import mmengine.registry

    def no_build(*args, **kwargs):
        raise AssertionError('the model was built before the config was checked')

    monkeypatch.setattr(mmengine.registry.MODELS, 'build', no_build)
    config = tmp_path / 'config.py'
    config.write_text(f"_base_ = '{ROOT / DET_TINY}'\n{override}\n")
    from internimage.deploy import export_onnx

    with pytest.raises(DeployError, match=message):
        export_onnx(str(config), 'none', str(tmp_path / 'det.onnx'))
    assert sorted(os.listdir(tmp_path)) == ['config.py']


def test_shape_not_multiple_of_32_refused(tmp_path):
    from internimage.deploy import export_onnx

    with pytest.raises(DeployError, match='not divisible by 32'):
        export_onnx(DET_TINY, 'none', str(tmp_path / 'det.onnx'), shape=(100, 128))
    assert os.listdir(tmp_path) == []
