"""The export size a detector config gets when none is given: its test pipeline's Resize."""

from pathlib import Path

from mmengine.config import Config

from internimage.deploy.export import default_input_shape

ROOT = Path(__file__).resolve().parents[2]


def test_detector_exports_at_its_test_resize_rounded_to_32():
    quickstart = Config.fromfile(
        str(ROOT / 'configs/quickstart/mask-rcnn_internimage-tiny_quickstart.py')
    )
    assert default_input_shape(quickstart, 'detection') == (128, 128)  # the generator's size
    coco = Config.fromfile(str(ROOT / 'configs/detection/mask-rcnn_internimage-t_fpn_1x_coco.py'))
    assert default_input_shape(coco, 'detection') == (800, 1344)  # (1333, 800) as (h, w), /32
