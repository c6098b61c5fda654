"""Deterministic synthetic data for the quick-start jobs.

One generator writes three views of the same kind of scene, so every task can
run end to end on a fresh machine without downloading a dataset:

* ``coco/``: instance detection/segmentation in COCO format (RLE masks),
* ``seg/``: mmseg's ``img_dir``/``ann_dir`` layout with label maps
  (0 = background, ``1 + class index`` for each shape),
* ``cls/``: ImageNet-style class folders, one dominant shape per image.

Scenes are textured backgrounds (smooth noise, stripes or gradients) with a few
filled shapes of :data:`QUICKSTART_CLASSES`. Each class draws its colour from
its own (overlapping) hue band, so both colour and shape carry the class, which
lets a tiny model learn within minutes on a CPU. Each image is seeded by
``(seed, split, index)``, so the output is bit-identical across runs and
machines and independent of how many images are requested.
"""

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from pycocotools import mask as mask_utils

__all__ = [
    'QUICKSTART_CLASSES',
    'QuickstartSpec',
    'Scene',
    'render_scene',
    'render_classification_image',
    'make_quickstart_data',
]

#: Shape classes, in label order (COCO category id = index + 1, seg label =
#: index + 1, class-folder names sort in this order).
QUICKSTART_CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle')

# Bump when the rendering or layout changes: stale data is then regenerated.
GENERATOR_VERSION = 1
_STAMP_FILE = 'quickstart_version.json'

# Centre hue (OpenCV scale 0-180) per class; bands are wider than their
# spacing, so neighbouring classes share some colours.
_CLASS_HUE_CENTRES = (0, 60, 120)
_HUE_HALF_WIDTH = 40
# An object already placed must keep at least this share of its pixels.
_MIN_VISIBLE_FRACTION = 0.6


@dataclass(frozen=True)
class QuickstartSpec:
    """What to generate.

    Args:
        num_train (int): Scenes in the detection/segmentation train split.
            Defaults to 96.
        num_val (int): Scenes in the val split. Defaults to 24.
        image_size (int): Side of the square scene images. Defaults to 128.
        objects_per_image (tuple[int, int]): Inclusive range of shapes per
            scene. Defaults to (2, 5).
        cls_num_train (int): Classification train images per class.
            Defaults to 200.
        cls_num_val (int): Classification val images per class.
            Defaults to 50.
        cls_image_size (int): Side of the classification images.
            Defaults to 64.
        seed (int): Base seed. Defaults to 0.
    """

    num_train: int = 96
    num_val: int = 24
    image_size: int = 128
    objects_per_image: Tuple[int, int] = (2, 5)
    cls_num_train: int = 200
    cls_num_val: int = 50
    cls_image_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ('num_train', 'num_val', 'cls_num_train', 'cls_num_val'):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f'{name} must be a positive int, got {getattr(self, name)!r}')
        for name in ('image_size', 'cls_image_size'):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 32:
                raise ValueError(f'{name} must be an int >= 32, got {getattr(self, name)!r}')
        low, high = self.objects_per_image
        if not 1 <= low <= high:
            raise ValueError(
                'objects_per_image must be (low, high) with '
                f'1 <= low <= high, got {self.objects_per_image}'
            )


@dataclass
class Scene:
    """A rendered image and its instances (visible masks, disjoint)."""

    image: np.ndarray  # (H, W, 3) uint8, BGR as written by OpenCV
    labels: List[int] = field(default_factory=list)  # class indices
    masks: List[np.ndarray] = field(default_factory=list)  # (H, W) bool

    def label_map(self) -> np.ndarray:
        """Semantic label map: 0 background, ``1 + class index`` per shape."""
        label_map = np.zeros(self.image.shape[:2], dtype=np.uint8)
        for label, mask in zip(self.labels, self.masks):
            label_map[mask] = label + 1
        return label_map


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    split_id = {'train': 0, 'val': 1, 'cls_train': 2, 'cls_val': 3}[split]
    return np.random.default_rng([seed, split_id, index])


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-saturation textured background, float32 (H, W, 3) in 0..255."""
    kind = rng.integers(3)
    base = rng.uniform(60, 190, size=3)
    tint = rng.uniform(-20, 20, size=3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # smooth noise: upsampled coarse random field
        coarse = rng.normal(0, 1, size=(size // 16 + 1, size // 16 + 1))
        field_ = cv2.resize(coarse.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    elif kind == 1:  # stripes of random orientation and period
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(0.08, 0.25)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        field_ = np.sin(2 * np.pi * phase)
    else:  # linear gradient
        angle = rng.uniform(0, 2 * np.pi)
        field_ = 2 * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5))
    amplitude = rng.uniform(15, 40)
    image = base + field_[..., None] * amplitude + field_[..., None] * tint
    return image.astype(np.float32)


def _class_colour(rng: np.random.Generator, label: int) -> np.ndarray:
    hue = (_CLASS_HUE_CENTRES[label] + rng.uniform(-_HUE_HALF_WIDTH, _HUE_HALF_WIDTH)) % 180
    hsv = np.array([[[hue, rng.uniform(170, 255), rng.uniform(150, 255)]]]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _shape_mask(rng: np.random.Generator, label: int, size: int, radius: float) -> np.ndarray:
    """Rasterise one shape of class ``label`` at a random place/rotation."""
    centre = rng.uniform(radius, size - radius, size=2)
    mask = np.zeros((size, size), dtype=np.uint8)
    name = QUICKSTART_CLASSES[label]
    if name == 'circle':
        cv2.circle(mask, tuple(int(round(c)) for c in centre), int(round(radius)), 1, thickness=-1)
    else:
        corners = 4 if name == 'square' else 3
        # Circumradius chosen so squares and triangles cover a similar area
        # to circles of the same nominal radius.
        circumradius = radius * (1.25 if name == 'square' else 1.45)
        rotation = rng.uniform(0, 2 * np.pi)
        angles = rotation + 2 * np.pi * np.arange(corners) / corners
        points = centre + circumradius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def render_scene(
    rng: np.random.Generator,
    image_size: int = 128,
    num_objects: int = 3,
    labels: Sequence[int] = (),
    radius_range: Tuple[float, float] = (0.09, 0.2),
) -> Scene:
    """Render one scene.

    Shapes are painted in order; a later shape may occlude earlier ones, but a
    placement is retried if any shape would keep less than 60% of its pixels
    visible. The stored masks are the visible parts, so they are disjoint.

    Args:
        rng (np.random.Generator): Source of randomness.
        image_size (int): Image side in pixels. Defaults to 128.
        num_objects (int): Shapes to place (fewer if placement keeps
            failing). Defaults to 3.
        labels (Sequence[int]): Class index of each shape; random when empty.
            Defaults to ().
        radius_range (tuple[float, float]): Nominal shape radius as a fraction
            of the image side. Defaults to (0.09, 0.2).
    """
    if not labels:
        labels = rng.integers(len(QUICKSTART_CLASSES), size=num_objects)
    image = _background(rng, image_size)
    scene = Scene(image=image)
    full_areas: List[int] = []
    for label in labels:
        for _ in range(20):
            radius = rng.uniform(*radius_range) * image_size
            shape = _shape_mask(rng, int(label), image_size, radius)
            if shape.sum() < 30:
                continue
            keeps_visible = all(
                (mask & ~shape).sum() >= _MIN_VISIBLE_FRACTION * area
                for mask, area in zip(scene.masks, full_areas)
            )
            if keeps_visible:
                break
        else:
            continue  # crowded scene: drop this shape
        scene.masks = [mask & ~shape for mask in scene.masks] + [shape]
        scene.labels.append(int(label))
        full_areas.append(int(shape.sum()))
        image[shape] = _class_colour(rng, int(label))
    # Sensor-like noise over everything, so shapes are not flat colour.
    image += rng.normal(0, 6, size=image.shape).astype(np.float32)
    scene.image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return scene


def render_classification_image(
    rng: np.random.Generator, label: int, image_size: int = 64
) -> np.ndarray:
    """An image whose dominant (largest, first-painted) shape is ``label``.

    Up to one small distractor of another class is added, kept well below the
    dominant shape's size.
    """
    dominant = render_scene(rng, image_size, labels=[label], radius_range=(0.25, 0.38))
    if rng.random() < 0.5:
        distractor = int(
            (label + rng.integers(1, len(QUICKSTART_CLASSES))) % len(QUICKSTART_CLASSES)
        )
        radius = rng.uniform(0.08, 0.12) * image_size
        shape = _shape_mask(rng, distractor, image_size, radius)
        covered = (dominant.masks[0] & shape).sum()
        if covered < 0.2 * dominant.masks[0].sum():
            noise = rng.normal(0, 6, size=(int(shape.sum()), 3))
            dominant.image[shape] = np.clip(
                np.round(_class_colour(rng, distractor) + noise), 0, 255
            ).astype(np.uint8)
    return dominant.image


def _encode_instance(mask: np.ndarray) -> Dict:
    """COCO fields of one visible mask: RLE, area and tight [x, y, w, h]."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    bbox = [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]
    return dict(segmentation=rle, area=int(mask.sum()), bbox=bbox)


def _write_scenes(root: Path, spec: QuickstartSpec, split: str, count: int) -> None:
    coco_img_dir = root / 'coco' / split
    seg_img_dir = root / 'seg' / 'img_dir' / split
    seg_ann_dir = root / 'seg' / 'ann_dir' / split
    for directory in (coco_img_dir, seg_img_dir, seg_ann_dir):
        directory.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    low, high = spec.objects_per_image
    for index in range(count):
        rng = _image_rng(spec.seed, split, index)
        scene = render_scene(rng, spec.image_size, int(rng.integers(low, high + 1)))
        file_name = f'{split}_{index:05d}.png'
        cv2.imwrite(str(coco_img_dir / file_name), scene.image)
        cv2.imwrite(str(seg_img_dir / file_name), scene.image)
        cv2.imwrite(str(seg_ann_dir / file_name), scene.label_map())
        image_id = index + 1
        images.append(
            dict(id=image_id, file_name=file_name, width=spec.image_size, height=spec.image_size)
        )
        for label, mask in zip(scene.labels, scene.masks):
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=label + 1,
                    iscrowd=0,
                    **_encode_instance(mask),
                )
            )
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(QUICKSTART_CLASSES)
    ]
    ann_dir = root / 'coco' / 'annotations'
    ann_dir.mkdir(parents=True, exist_ok=True)
    with open(ann_dir / f'instances_{split}.json', 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def _write_classification(root: Path, spec: QuickstartSpec, split: str, per_class: int) -> None:
    for label, name in enumerate(QUICKSTART_CLASSES):
        class_dir = root / 'cls' / split / name
        class_dir.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            # One stream per (split, image): class-major numbering.
            rng = _image_rng(spec.seed, f'cls_{split}', label * per_class + index)
            image = render_classification_image(rng, label, spec.cls_image_size)
            cv2.imwrite(str(class_dir / f'{name}_{index:05d}.png'), image)


def make_quickstart_data(
    out_dir: Union[str, Path] = 'data/quickstart',
    spec: QuickstartSpec = QuickstartSpec(),
    force: bool = False,
) -> Path:
    """Write the quick-start dataset under ``out_dir`` (idempotent).

    If ``out_dir`` already holds data stamped with the same generator version
    and spec, nothing is done. Otherwise the three sub-folders are rewritten.

    Args:
        out_dir (str | Path): Destination. Defaults to 'data/quickstart'.
        spec (QuickstartSpec): What to generate. Defaults to
            ``QuickstartSpec()``.
        force (bool): Regenerate even if the stamp matches. Defaults to False.

    Returns:
        Path: ``out_dir``.
    """
    root = Path(out_dir)
    stamp = dict(version=GENERATOR_VERSION, spec=asdict(spec))
    stamp['spec']['objects_per_image'] = list(spec.objects_per_image)
    stamp_path = root / _STAMP_FILE
    if not force and stamp_path.is_file():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                return root
        except json.JSONDecodeError:
            pass  # a damaged stamp means regenerate
    for sub in ('coco', 'seg', 'cls'):
        shutil.rmtree(root / sub, ignore_errors=True)
    stamp_path.unlink(missing_ok=True)
    for split, count in (('train', spec.num_train), ('val', spec.num_val)):
        _write_scenes(root, spec, split, count)
    for split, count in (('train', spec.cls_num_train), ('val', spec.cls_num_val)):
        _write_classification(root, spec, split, count)
    # Written last: its presence means the data is complete.
    stamp_path.write_text(json.dumps(stamp, indent=2))
    return root
