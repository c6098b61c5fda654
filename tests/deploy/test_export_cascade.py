"""Cascade Mask R-CNN exports whole too: the shipped L config with a tiny backbone, random
weights, run by ONNX Runtime against the same export module run eagerly (the module itself
equals mmdet's ``predict``: tests/deploy/test_export_detector.py for Mask R-CNN)."""

import numpy as np
import pytest
import torch

from internimage.deploy import export_onnx, read_metadata, wrap_for_export
from internimage.deploy.runtime import ort_session, run_ort

pytestmark = [pytest.mark.needs_extension, pytest.mark.slow]

CASCADE = 'configs/detection/cascade-mask-rcnn_internimage-l_fpn_1x_coco.py'
TINY = {
    'model.backbone.arch': dict(
        _delete_=True, channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16]
    ),
    'model.neck.in_channels': [32, 64, 128, 256],
    # Random class scores are about 1/81 each, under the recipe's 0.05: keep them all.
    'model.test_cfg.rcnn.score_thr': 0.0,
}


def test_cascade_mask_rcnn_exports_whole(tmp_path):
    torch.manual_seed(0)
    path, model, task, shape = export_onnx(
        CASCADE, 'none', str(tmp_path / 'cascade.onnx'), shape=(64, 64), cfg_options=TINY
    )
    assert task == 'detection' and read_metadata(path)['outputs'] == ['dets', 'labels', 'masks']
    image = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = [t.numpy() for t in wrap_for_export(model, task)(image)]
    got = run_ort(ort_session(path), image.numpy())
    kept = int((expected[0][..., 4] > 0).sum())
    assert kept > 0, 'no detection kept: the comparison would check only padding'
    max_per_img = model.test_cfg.rcnn.max_per_img
    assert got[0].shape == (1, max_per_img, 5) and got[2].shape == (1, max_per_img, *shape)
    np.testing.assert_allclose(got[0], expected[0], atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(got[1], expected[1])
