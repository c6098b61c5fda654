"""The synthetic quick-start data: deterministic, idempotent, valid formats.

Annotations are checked against independent decodings: pycocotools for the
COCO json, the written label maps for the segmentation view, and boxes/areas
recomputed from the decoded masks.
"""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from internimage.datasets import QUICKSTART_CLASSES, QuickstartSpec, make_quickstart_data

SPEC = QuickstartSpec(
    num_train=6, num_val=3, image_size=64, cls_num_train=3, cls_num_val=2, cls_image_size=32, seed=3
)


def _digest(root: Path) -> dict:
    """Content hash of every file under ``root``, keyed by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob('*'))
        if path.is_file()
    }


@pytest.fixture(scope='module')
def data_root(quickstart_data) -> Path:
    return quickstart_data(SPEC)


def test_layout(data_root):
    for split, count in (('train', SPEC.num_train), ('val', SPEC.num_val)):
        assert len(list((data_root / 'coco' / split).glob('*.png'))) == count
        assert (data_root / 'coco' / 'annotations' / f'instances_{split}.json').is_file()
        images = sorted((data_root / 'seg' / 'img_dir' / split).glob('*.png'))
        labels = sorted((data_root / 'seg' / 'ann_dir' / split).glob('*.png'))
        assert [p.name for p in images] == [p.name for p in labels]
        assert len(images) == count
    for split, count in (('train', SPEC.cls_num_train), ('val', SPEC.cls_num_val)):
        class_dirs = sorted(p.name for p in (data_root / 'cls' / split).iterdir())
        assert class_dirs == sorted(QUICKSTART_CLASSES)
        for name in class_dirs:
            files = list((data_root / 'cls' / split / name).glob('*.png'))
            assert len(files) == count
            image = cv2.imread(str(files[0]))
            assert image.shape == (SPEC.cls_image_size, SPEC.cls_image_size, 3)


def test_deterministic_and_idempotent(data_root, tmp_path):
    again = make_quickstart_data(tmp_path / 'again', SPEC)
    assert _digest(again) == _digest(data_root)
    # A second call with the same spec must not touch the files.
    marker = again / 'coco' / 'train' / 'train_00000.png'
    mtime = marker.stat().st_mtime_ns
    make_quickstart_data(again, SPEC)
    assert marker.stat().st_mtime_ns == mtime
    # Another seed gives other images.
    other = make_quickstart_data(tmp_path / 'other', QuickstartSpec(**{**SPEC.__dict__, 'seed': 4}))
    assert (other / 'coco/train/train_00000.png').read_bytes() != (
        data_root / 'coco/train/train_00000.png'
    ).read_bytes()


def test_stale_stamp_regenerates(tmp_path):
    root = make_quickstart_data(tmp_path / 'd', SPEC)
    bigger = QuickstartSpec(**{**SPEC.__dict__, 'num_val': SPEC.num_val + 1})
    make_quickstart_data(root, bigger)
    assert len(list((root / 'coco' / 'val').glob('*.png'))) == bigger.num_val
    stamp = json.loads((root / 'quickstart_version.json').read_text())
    assert stamp['spec']['num_val'] == bigger.num_val


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_annotations_match_masks_and_label_maps(data_root, split):
    coco = COCO(str(data_root / 'coco' / 'annotations' / f'instances_{split}.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(QUICKSTART_CLASSES)
    low, high = SPEC.objects_per_image
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        image = cv2.imread(str(data_root / 'coco' / split / info['file_name']))
        assert image.shape == (info['height'], info['width'], 3)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert 1 <= len(anns) <= high
        # Rebuild the semantic label map from the decoded instance masks.
        rebuilt = np.zeros(image.shape[:2], dtype=np.uint8)
        for ann in anns:
            assert ann['iscrowd'] == 0
            mask = coco.annToMask(ann).astype(bool)
            assert not (rebuilt[mask] != 0).any(), 'instances overlap'
            rebuilt[mask] = ann['category_id']
            ys, xs = np.nonzero(mask)
            expected_box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert ann['bbox'] == [int(v) for v in expected_box]
            assert ann['area'] == int(mask.sum())
            # pycocotools' own box of the RLE agrees too.
            np.testing.assert_allclose(mask_utils.toBbox(ann['segmentation']), ann['bbox'])
        label_map = cv2.imread(
            str(data_root / 'seg' / 'ann_dir' / split / info['file_name']), cv2.IMREAD_UNCHANGED
        )
        np.testing.assert_array_equal(label_map, rebuilt)
        seg_image = cv2.imread(str(data_root / 'seg' / 'img_dir' / split / info['file_name']))
        np.testing.assert_array_equal(seg_image, image)


def test_shapes_stand_out_from_background(data_root):
    """Painted shapes differ from their surroundings (a learnable signal)."""
    coco = COCO(str(data_root / 'coco/annotations/instances_train.json'))
    for ann in coco.loadAnns(coco.getAnnIds()):
        info = coco.loadImgs(ann['image_id'])[0]
        image = cv2.imread(str(data_root / 'coco/train' / info['file_name'])).astype(np.float32)
        mask = coco.annToMask(ann).astype(bool)
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        ring &= ~mask
        inside = image[mask].mean(0)
        # The ring may touch other shapes; compare against its median.
        outside = np.median(image[ring], axis=0)
        assert np.abs(inside - outside).max() > 20


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(num_train=0), 'num_train'),
        (dict(image_size=16), 'image_size'),
        (dict(objects_per_image=(3, 2)), 'objects_per_image'),
    ],
)
def test_spec_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuickstartSpec(**kwargs)
