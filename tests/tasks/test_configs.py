"""Every shipped config parses, follows its recipe and builds a working model.

Recipes are checked against the official numbers (the official InternImage configs;
variant table in docs/architecture.md), written out here independently of the configs.
Models are built for every config with one block per stage (same widths, so necks/heads
are wired exactly as at full size) and run on a small image; the InternImage-T detection
and segmentation models are also built at full size and their parameter counts compared
with the published ones.
"""

import copy
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import internimage  # noqa: F401  (registers InternImage)
from internimage.models import FlashInternImage, InternImage

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIRS = ('classification', 'detection', 'segmentation', 'quickstart')
CONFIGS = sorted(
    str(path.relative_to(ROOT))
    for folder in CONFIG_DIRS
    for path in (ROOT / 'configs' / folder).glob('*.py')
)

# arch -> (stem channels, depths), the variant table of docs/architecture.md.
ARCH_TABLE = {
    't': (64, [4, 4, 18, 4]),
    's': (80, [4, 4, 21, 4]),
    'b': (112, [4, 4, 21, 4]),
    'l': (160, [5, 5, 22, 5]),
    'xl': (192, [5, 5, 24, 5]),
    'h': (320, [6, 6, 32, 6]),
    'g': (512, [2, 2, 48, 4]),
}
OFFICIAL_URL = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
# config stem -> (arch, drop path, lr, layer decay, epochs) for detection.
DETECTION_RECIPES = {
    'mask-rcnn_internimage-t_fpn_1x_coco': ('t', 0.2, 1e-4, 1.0, 12),
    'mask-rcnn_internimage-s_fpn_1x_coco': ('s', 0.3, 1e-4, 1.0, 12),
    'mask-rcnn_internimage-b_fpn_1x_coco': ('b', 0.4, 1e-4, 1.0, 12),
    'mask-rcnn_internimage-t_fpn_3x_coco': ('t', 0.2, 1e-4, 1.0, 36),
    'mask-rcnn_internimage-s_fpn_3x_coco': ('s', 0.3, 1e-4, 1.0, 36),
    'mask-rcnn_internimage-b_fpn_3x_coco': ('b', 0.4, 1e-4, 1.0, 36),
    'cascade-mask-rcnn_internimage-l_fpn_1x_coco': ('l', 0.4, 1e-4, 0.94, 12),
    'cascade-mask-rcnn_internimage-xl_fpn_1x_coco': ('xl', 0.4, 1e-4, 0.94, 12),
    'cascade-mask-rcnn_internimage-l_fpn_3x_coco': ('l', 0.4, 2e-4, 0.90, 36),
    'cascade-mask-rcnn_internimage-xl_fpn_3x_coco': ('xl', 0.6, 2e-4, 0.90, 36),
}
# Official paramwise_cfg keys beyond the rate (num_layers / depths come from the backbone).
EXTRA_PARAMWISE = {
    'cascade-mask-rcnn_internimage-l_fpn_3x_coco': dict(offset_lr_scale=0.01),
    'cascade-mask-rcnn_internimage-xl_fpn_3x_coco': dict(offset_lr_scale=0.01),
}
# config stem -> recipe for segmentation (official upernet_internimage_* configs of the
# ade20k/ and cityscapes/ folders). crop is (h, w); clip is the gradient max norm.
_ADE_T = dict(lr=6e-5, decay=1.0, crop=(512, 512), classes=150, batch=2, clip=None)
_ADE_L = dict(_ADE_T, lr=2e-5, decay=0.94, crop=(640, 640), clip=0.1)
_ADE_H = dict(_ADE_L, decay=0.95, crop=(896, 896), batch=1)
_CITY_T = dict(_ADE_T, crop=(512, 1024), classes=19)
_CITY_L = dict(_CITY_T, lr=2e-5, decay=0.94, clip=0.1)
SEGMENTATION_RECIPES = {
    'internimage-t_upernet_8xb2-160k_ade20k-512x512': dict(_ADE_T, arch='t', drop=0.2),
    'internimage-s_upernet_8xb2-160k_ade20k-512x512': dict(_ADE_T, arch='s', drop=0.3),
    'internimage-b_upernet_8xb2-160k_ade20k-512x512': dict(_ADE_T, arch='b', drop=0.4),
    'internimage-l_upernet_8xb2-160k_ade20k-640x640': dict(_ADE_L, arch='l', drop=0.4),
    'internimage-xl_upernet_8xb2-160k_ade20k-640x640': dict(_ADE_L, arch='xl', drop=0.4),
    'internimage-h_upernet_16xb1-160k_ade20k-896x896': dict(_ADE_H, arch='h', drop=0.5),
    'internimage-g_upernet_16xb1-160k_ade20k-896x896': dict(_ADE_H, arch='g', drop=0.5),
    'internimage-t_upernet_8xb2-160k_cityscapes-512x1024': dict(_CITY_T, arch='t', drop=0.2),
    'internimage-s_upernet_8xb2-160k_cityscapes-512x1024': dict(_CITY_T, arch='s', drop=0.3),
    'internimage-b_upernet_8xb2-160k_cityscapes-512x1024': dict(_CITY_T, arch='b', drop=0.4),
    'internimage-l_upernet_8xb2-160k_cityscapes-512x1024': dict(_CITY_L, arch='l', drop=0.4),
    'internimage-xl_upernet_8xb2-160k_cityscapes-512x1024': dict(_CITY_L, arch='xl', drop=0.4),
}
# Official backbone options per arch: (layer scale, offset scale) as the configs build them.
BUILT_SCALES = {
    't': (1.0, 1.0),
    's': (1.0, 1.0),
    'b': (1.0, 1.0),
    'l': (1.0, 2.0),
    'xl': (1.0, 2.0),
    'h': (None, 1.0),
    'g': (None, 1.0),
}
# The official DETR-style multi-scale training of the 3x and DINO recipes: short sides.
OFFICIAL_SHORT_SIDES = [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800]
OFFICIAL_CROP_SHORT_SIDES = [400, 500, 600]


FLASH_URL = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/'
# FlashInternImage configs -> (arch, drop path, offset scale, lr, layer decay, batch per GPU,
# pretrained file), from the official DCNv4 detection / segmentation configs.
FLASH_RECIPES = {
    'detection/mask-rcnn_flash-internimage-t_fpn_1x_coco':
        ('t', 0.2, 1.0, 1e-4, 1.0, 2, 't_1k_224'),
    'detection/mask-rcnn_flash-internimage-s_fpn_1x_coco':
        ('s', 0.3, 1.0, 1e-4, 1.0, 2, 's_1k_224'),
    'detection/mask-rcnn_flash-internimage-b_fpn_1x_coco':
        ('b', 0.3, 0.5, 1e-4, 1.0, 2, 'b_1k_224'),
    'detection/mask-rcnn_flash-internimage-t_fpn_3x_coco':
        ('t', 0.2, 1.0, 1e-4, 1.0, 2, 't_1k_224'),
    'detection/mask-rcnn_flash-internimage-s_fpn_3x_coco':
        ('s', 0.4, 1.0, 2e-4, 1.0, 8, 's_1k_224'),
    'detection/mask-rcnn_flash-internimage-b_fpn_3x_coco':
        ('b', 0.4, 0.5, 2e-4, 0.9, 4, 'b_1k_224'),
    'segmentation/flash-internimage-t_upernet_8xb2-160k_ade20k-512x512': (
        't', 0.2, 1.0, 6e-5, 1.0, 2, 't_1k_224'),
    'segmentation/flash-internimage-s_upernet_8xb2-160k_ade20k-512x512': (
        's', 0.3, 1.0, 6e-5, 1.0, 2, 's_1k_224'),
    'segmentation/flash-internimage-b_upernet_8xb2-160k_ade20k-512x512': (
        'b', 0.3, 0.5, 6e-5, 1.0, 2, 'b_1k_224'),
    'segmentation/flash-internimage-l_upernet_8xb2-160k_ade20k-640x640': (
        'l', 0.4, 2.0, 2e-5, 0.94, 2, 'l_22k_384'),
}  # fmt: skip


def _shallow_arch(arch, backbone_type: str = 'InternImage') -> dict:
    """The config's arch with one block per stage (widths unchanged)."""
    table = {
        'InternImage': InternImage,
        'FlashInternImage': FlashInternImage,
        'CBInternImage': InternImage,  # both branches are InternImages
    }[backbone_type]
    settings = copy.deepcopy(table.arch_settings[arch] if isinstance(arch, str) else arch)
    settings['depths'] = [1, 1, 1, 1]
    if settings.get('level2_post_norm_block_ids'):
        settings['level2_post_norm_block_ids'] = [0]
    return settings


def _backbone_on_meta(cfg: Config) -> InternImage:
    """The config's backbone as built (arch table + overrides), without weights or init."""
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    backbone_cfg.init_cfg = None
    with torch.device('meta'):
        return MODELS.build(backbone_cfg)


def _assert_layer_decay(cfg: Config, depths: list, decay: float, **extra) -> None:
    """Only the rate (and the official extras) is configured; the backbone supplies the
    layers (sum of depths)."""
    assert cfg.optim_wrapper.paramwise_cfg == dict(layer_decay_rate=decay, **extra)
    backbone = _backbone_on_meta(cfg)
    assert backbone.depths == depths
    assert backbone.get_layer_depth('backbone.neck.weight', 'backbone.') == (
        sum(depths) + 1,
        sum(depths) + 2,
    )


def _build(model_cfg: Config, scope: str):
    init_default_scope(scope)
    model = MODELS.build(model_cfg)
    model.eval()
    return model


def test_all_expected_configs_are_shipped():
    stems = {Path(path).stem for path in CONFIGS}
    missing = (set(DETECTION_RECIPES) | set(SEGMENTATION_RECIPES) | set(DINO_RECIPES)) - stems
    assert not missing
    assert {
        'mask-rcnn_internimage-tiny_quickstart',
        'upernet_internimage-tiny_quickstart',
        'internimage-tiny_quickstart_cls',
    } <= stems


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses_with_common_contract(path, read_config):
    cfg = read_config(path)
    # internimage first; Mask2Former configs add mmdet's models, Mapillary ones our transforms
    imports = cfg.custom_imports.imports
    assert cfg.custom_imports == dict(imports=imports, allow_failed_imports=False)
    assert imports[0] == 'internimage'
    assert set(imports[1:]) <= {'mmdet.models', 'internimage.datasets.transforms'}
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')
    assert cfg.model.backbone.type in ('InternImage', 'FlashInternImage', 'CBInternImage')
    # Dumps to a config that parses again (no unserialisable values).
    assert Config.fromstring(cfg.pretty_text, '.py').model == cfg.model


@pytest.mark.parametrize('stem', sorted(DETECTION_RECIPES))
def test_detection_recipe(stem, read_config):
    arch, drop_path, lr, decay, epochs = DETECTION_RECIPES[stem]
    cfg = read_config(f'configs/detection/{stem}.py')
    channels, depths = ARCH_TABLE[arch]
    backbone = cfg.model.backbone
    assert backbone.arch == arch
    assert backbone.drop_path_rate == drop_path
    assert backbone.init_cfg.checkpoint.startswith(f'{OFFICIAL_URL}internimage_{arch}_')
    built = _backbone_on_meta(cfg).arch
    assert built['layer_scale'] == 1.0
    assert built['offset_scale'] == (2.0 if arch in ('l', 'xl') else 1.0)
    assert cfg.model.neck.in_channels == [channels * 2**i for i in range(4)]
    wrapper = cfg.optim_wrapper
    assert wrapper.constructor == 'InternImageLayerDecayOptimizerConstructor'
    assert wrapper.optimizer.type == 'AdamW'
    assert wrapper.optimizer.lr == lr
    assert wrapper.optimizer.weight_decay == 0.05
    _assert_layer_decay(cfg, depths, decay, **EXTRA_PARAMWISE.get(stem, {}))
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.train_dataloader.batch_size == 2
    is_cascade = stem.startswith('cascade')
    assert cfg.model.type == ('CascadeRCNN' if is_cascade else 'MaskRCNN')
    if epochs == 36:  # 3x recipes train multi-scale, DETR-style
        _assert_detr_style_pipeline(cfg.train_dataloader.dataset.pipeline, negative_crop=True)
    # No gradient clipping in the official Mask R-CNN / Cascade recipes.
    assert 'clip_grad' not in wrapper


def _short_sides(resize: dict) -> list:
    assert resize['type'] == 'RandomChoiceResize' and resize['keep_ratio'] is True
    return [min(scale) for scale in resize['scales']]


def _assert_detr_style_pipeline(pipeline: list, negative_crop: bool) -> None:
    """Flip, then one of: resize to one of 11 short sides; or resize to 400/500/600, crop
    384-600 (absolute range), resize to one of the 11 short sides."""
    types = [t['type'] for t in pipeline]
    assert types == [
        'LoadImageFromFile',
        'LoadAnnotations',
        'RandomFlip',
        'RandomChoice',
        'PackDetInputs',
    ]
    assert pipeline[2]['prob'] == 0.5
    plain, crop = pipeline[3]['transforms']
    assert len(plain) == 1 and _short_sides(plain[0]) == OFFICIAL_SHORT_SIDES
    assert [t['type'] for t in crop] == ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']
    assert _short_sides(crop[0]) == OFFICIAL_CROP_SHORT_SIDES
    assert crop[1]['crop_type'] == 'absolute_range' and tuple(crop[1]['crop_size']) == (384, 600)
    assert crop[1]['allow_negative_crop'] is negative_crop
    assert _short_sides(crop[2]) == OFFICIAL_SHORT_SIDES


@pytest.mark.parametrize(
    'stem',
    ['cascade-mask-rcnn_internimage-l_fpn_3x_coco', 'cascade-mask-rcnn_internimage-xl_fpn_3x_coco'],
)
def test_cascade_3x_lr_follows_the_official_total_batch(stem, read_config):
    """Official: 4 nodes x 8 GPUs x 2 images at lr 2e-4. The config scales the lr linearly
    with the total batch from that point (mmengine's auto_scale_lr rule)."""
    cfg = read_config(f'configs/detection/{stem}.py')
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=64)
    lr, per_gpu = cfg.optim_wrapper.optimizer.lr, cfg.train_dataloader.batch_size
    for gpus, expected in ((32, 2e-4), (8, 5e-5)):
        scaled = lr * gpus * per_gpu / cfg.auto_scale_lr.base_batch_size
        assert scaled == pytest.approx(expected)


# config stem -> (arch, drop path, gradient checkpointing, detections per image).
DINO_RECIPES = {
    'dino-4scale_internimage-t_8xb2-12e_coco': ('t', 0.2, True, 100),
    'dino-4scale_internimage-l_8xb2-12e_coco': ('l', 0.4, False, 300),
}


@pytest.mark.parametrize('stem', sorted(DINO_RECIPES))
def test_dino_recipe(stem, read_config):
    """Official dino_4scale_internimage_{t,l}_1x_coco_layer_wise_lr."""
    arch, drop_path, with_cp, max_per_img = DINO_RECIPES[stem]
    cfg = read_config(f'configs/detection/{stem}.py')
    channels, depths = ARCH_TABLE[arch]
    model = cfg.model
    assert model.type == 'DINO' and model.num_queries == 900
    assert model.with_box_refine and model.as_two_stage
    assert model.dn_cfg.group_cfg.num_dn_queries == 100
    assert (model.dn_cfg.label_noise_scale, model.dn_cfg.box_noise_scale) == (0.5, 1.0)
    assert model.encoder.num_layers == 6 and model.decoder.num_layers == 6
    assert model.data_preprocessor.pad_size_divisor == 32
    assert model.test_cfg.max_per_img == max_per_img
    backbone = model.backbone
    assert (backbone.arch, backbone.drop_path_rate, backbone.with_cp) == (arch, drop_path, with_cp)
    assert tuple(backbone.out_indices) == (1, 2, 3)
    assert backbone.init_cfg.checkpoint.startswith(f'{OFFICIAL_URL}internimage_{arch}_')
    assert _backbone_on_meta(cfg).arch['layer_scale'] == 1.0
    assert _backbone_on_meta(cfg).arch['offset_scale'] == BUILT_SCALES[arch][1]
    assert model.neck.in_channels == [channels * 2**i for i in (1, 2, 3)]
    assert model.neck.num_outs == 4
    wrapper = cfg.optim_wrapper
    assert wrapper.constructor == 'InternImageLayerDecayOptimizerConstructor'
    assert (wrapper.optimizer.type, wrapper.optimizer.lr) == ('AdamW', 1e-4)
    assert wrapper.optimizer.weight_decay == 1e-4
    assert wrapper.clip_grad == dict(max_norm=0.1, norm_type=2)
    _assert_layer_decay(cfg, depths, 0.9)
    assert cfg.train_cfg.max_epochs == 12
    warmup, step = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 0.001, 500)
    assert (step.type, step.milestones) == ('MultiStepLR', [11])
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt is True
    _assert_detr_style_pipeline(cfg.train_dataloader.dataset.pipeline, negative_crop=False)


@pytest.mark.parametrize('stem', sorted(FLASH_RECIPES))
def test_flash_recipe(stem, read_config):
    arch, drop_path, offset_scale, lr, decay, batch, weights = FLASH_RECIPES[stem]
    cfg = read_config(f'configs/{stem}.py')
    backbone = cfg.model.backbone
    assert backbone.type == 'FlashInternImage' and backbone.arch == arch
    assert backbone.drop_path_rate == drop_path
    # A config leaves offset_scale out where the arch table gives the official value.
    table = FlashInternImage.arch_settings[arch]
    assert backbone.get('offset_scale', table.get('offset_scale', 1.0)) == offset_scale
    assert backbone.layer_scale == 1.0
    assert backbone.init_cfg.checkpoint == f'{FLASH_URL}flash_intern_image_{weights}.pth'
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == decay
    # official DCNv4 paramwise_cfg offset_lr_scale (0.01 in the B 3x config, else 1.0)
    offset_lr_scale = 0.01 if stem.endswith('flash-internimage-b_fpn_3x_coco') else 1.0
    assert cfg.optim_wrapper.paramwise_cfg.get('offset_lr_scale', 1.0) == offset_lr_scale
    assert cfg.train_dataloader.batch_size == batch


@pytest.mark.parametrize('arch', ['t', 's', 'b', 'l'])
def test_flash_classification_configs(arch, read_config):
    stem = (
        'flash-internimage-l_8xb64_in1k-384px'
        if arch == 'l'
        else f'flash-internimage-{arch}_8xb128_in1k'
    )
    flash = read_config(f'configs/classification/{stem}.py')
    base = read_config(f'configs/classification/{stem.replace("flash-", "")}.py')
    assert flash.model.backbone.pop('type') == 'FlashInternImage'
    assert base.model.backbone.pop('type') == 'InternImage'
    assert flash.model == base.model  # the InternImage recipe, only the backbone type differs
    if arch == 'l':  # official DCNv4 yaml: LR_LAYER_DECAY 0.9, DCN_LR_MUL 0.1
        assert flash.optim_wrapper.constructor == 'InternImageClsLayerDecayOptimizerConstructor'
        assert flash.optim_wrapper.paramwise_cfg == dict(layer_decay_rate=0.9, dcn_lr_mult=0.1)


@pytest.mark.parametrize('stem', sorted(SEGMENTATION_RECIPES))
def test_segmentation_recipe(stem, read_config):
    recipe = SEGMENTATION_RECIPES[stem]
    arch, crop = recipe['arch'], recipe['crop']
    cfg = read_config(f'configs/segmentation/{stem}.py')
    channels, depths = ARCH_TABLE[arch]
    assert cfg.model.backbone.arch == arch
    assert cfg.model.backbone.drop_path_rate == recipe['drop']
    assert cfg.model.backbone.init_cfg.checkpoint.startswith(f'{OFFICIAL_URL}internimage_{arch}_')
    assert cfg.model.decode_head.in_channels == [channels * 2**i for i in range(4)]
    assert cfg.model.auxiliary_head.in_channels == channels * 4
    assert cfg.model.decode_head.num_classes == recipe['classes']
    assert cfg.model.auxiliary_head.num_classes == recipe['classes']
    assert tuple(cfg.model.data_preprocessor.size) == crop
    crops = [
        t['crop_size'] for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'RandomCrop'
    ]
    assert [tuple(c) for c in crops] == [crop]
    resize = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'RandomResize']
    # official: resize the short side to the crop's longer side, times a ratio in 0.5-2.0
    assert len(resize) == 1 and resize[0]['ratio_range'] == (0.5, 2.0)
    assert min(resize[0]['scale']) == max(crop)
    wrapper = cfg.optim_wrapper
    assert wrapper.optimizer.lr == recipe['lr']
    assert wrapper.optimizer.betas == (0.9, 0.999) and wrapper.optimizer.weight_decay == 0.05
    _assert_layer_decay(cfg, depths, recipe['decay'])
    if recipe['clip'] is None:
        assert 'clip_grad' not in wrapper
    else:
        assert wrapper.clip_grad == dict(max_norm=recipe['clip'], norm_type=2)
    built = _backbone_on_meta(cfg).arch
    assert (built['layer_scale'], built['offset_scale']) == BUILT_SCALES[arch]
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == recipe['batch']
    assert cfg.model.test_cfg.mode == 'whole'


# The Mask2Former-H configs share one backbone and head code; one of them runs here (the
# others' widths and sizes: tests/tasks/test_segmentation_headline.py, on the meta device).
SHALLOW_CONFIGS = [
    path
    for path in CONFIGS
    if 'mask2former' not in path
    or path.endswith(('mapillary2cityscapes-1024x1024.py', 'quickstart.py'))
]


@pytest.mark.parametrize('path', SHALLOW_CONFIGS)
def test_config_builds_and_runs_shallow(path, read_config):
    """Build with one block per stage and run the feature path end to end."""
    cfg = read_config(path)
    backbone = cfg.model.backbone
    backbone.arch = _shallow_arch(backbone.arch, backbone.type)
    backbone.init_cfg = None
    if cfg.default_scope == 'mmseg':
        cfg.model.pretrained = None
    model = _build(cfg.model, cfg.default_scope)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        if cfg.default_scope == 'mmdet':
            feats = model.extract_feat(image)
            assert len(feats) == cfg.model.neck.num_outs
            assert all(f.shape[1] == cfg.model.neck.out_channels for f in feats)
        elif cfg.default_scope == 'mmseg':
            feats = model.extract_feat(image)
            num_classes = cfg.model.decode_head.num_classes
            if cfg.model.decode_head.type == 'Mask2FormerHead':
                meta = dict(img_shape=(64, 64), pad_shape=(64, 64), ori_shape=(64, 64))
                logits = model.decode_head.predict(feats, [meta], cfg.model.test_cfg)
            else:
                logits = model.decode_head(feats)
            assert logits.shape[:2] == (1, num_classes)
            if cfg.model.get('auxiliary_head') is not None:
                assert model.auxiliary_head(feats).shape[:2] == (1, num_classes)
        else:
            logits = model(image, mode='tensor')
            assert logits.shape == (1, cfg.model.head.num_classes)


@pytest.mark.parametrize(
    'path, scope, expected_millions',
    [
        ('configs/detection/mask-rcnn_internimage-t_fpn_1x_coco.py', 'mmdet', 49.0),
        ('configs/segmentation/internimage-t_upernet_8xb2-160k_ade20k-512x512.py', 'mmseg', 59.0),
    ],
)
def test_full_size_t_matches_published_params(path, scope, expected_millions, read_config):
    """InternImage-T models at real size: the official model zoo's #params."""
    cfg = read_config(path)
    cfg.model.backbone.init_cfg = None
    if scope == 'mmseg':
        cfg.model.pretrained = None
    model = _build(cfg.model, scope)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    # The zoo rounds to whole millions.
    assert abs(millions - expected_millions) < 0.5
    assert model.backbone.depths == ARCH_TABLE['t'][1]


# stem -> (official total batch, official lr, per-GPU batch, accumulated steps, epochs,
# warm-up epochs, image size). Official: classification/configs/without_lr_decay/*.yaml
# (the published results), lr given per 512 images and scaled linearly (5e-4 -> 4e-3 at
# 4096; 2e-5 at 512).
CLASSIFICATION_RECIPES = {
    'internimage-t_8xb128_in1k': (4096, 4e-3, 128, 1, 300, 20, 224),
    'internimage-s_8xb128_in1k': (4096, 4e-3, 128, 1, 300, 20, 224),
    'internimage-b_8xb128_in1k': (4096, 4e-3, 128, 1, 300, 20, 224),
    'internimage-l_8xb64_in1k-384px': (512, 2e-5, 64, 1, 20, 2, 384),
    'internimage-xl_8xb64_in1k-384px': (512, 2e-5, 64, 1, 20, 2, 384),
    'internimage-h_8xb16-accum4_in1k-640px': (512, 2e-5, 16, 4, 20, 2, 640),
    'internimage-g_8xb16-accum4_in1k-512px': (512, 2e-5, 16, 4, 20, 2, 512),
}


def _pipeline_sizes(pipeline) -> dict:
    """transform type -> its size argument, for the transforms that resize or crop."""
    keys = ('scale', 'crop_size')
    return {t.type: next(t[k] for k in keys if k in t) for t in pipeline if set(keys) & set(t)}


@pytest.mark.parametrize('stem', sorted(CLASSIFICATION_RECIPES))
def test_classification_recipe(stem, read_config):
    total, lr, per_gpu, accumulated, epochs, warmup_epochs, size = CLASSIFICATION_RECIPES[stem]
    cfg = read_config(f'configs/classification/{stem}.py')
    wrapper = cfg.optim_wrapper
    assert wrapper.optimizer.type == 'AdamW' and wrapper.optimizer.weight_decay == 0.05
    assert wrapper.optimizer.lr == pytest.approx(lr)
    assert wrapper.clip_grad == dict(max_norm=5.0)
    assert cfg.train_dataloader.batch_size == per_gpu
    assert wrapper.get('accumulative_counts', 1) == accumulated
    assert cfg.train_cfg.max_epochs == epochs
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 1e-3, warmup_epochs)
    assert cosine.type == 'CosineAnnealingLR' and cosine.begin == warmup_epochs
    if epochs == 300:  # official: warm-up from 5e-7, down to 5e-6 (per 512; lr 5e-4)
        assert cosine.eta_min_ratio == pytest.approx(5e-6 / 5e-4) and 'eta_min' not in cosine
    else:  # fine-tunes, official WARMUP_LR / MIN_LR 0
        assert cosine.eta_min == 0.0
    if cfg.auto_scale_lr.get('enable', False):
        # mmengine: lr * (GPUs x per-GPU batch) / base; the official total gives the lr
        assert cfg.auto_scale_lr.base_batch_size == total
    else:
        # accumulation is invisible to auto_scale_lr: the name's 8 GPUs give the total
        assert 8 * per_gpu * accumulated == total
    # without_lr_decay: one lr for all parameters (no LR_LAYER_DECAY, so DCN_LR_MUL unused)
    assert 'constructor' not in wrapper
    assert wrapper.paramwise_cfg == dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0
    )
    # official EMA: decay 0.9999 after each optimizer step
    assert cfg.custom_hooks == [
        dict(type='OptimizerStepEMAHook', momentum=1e-4, priority='ABOVE_NORMAL')
    ]
    train = _pipeline_sizes(cfg.train_dataloader.dataset.pipeline)
    test = _pipeline_sizes(cfg.test_dataloader.dataset.pipeline)
    assert train == {'RandomResizedCrop': size}
    assert test == {'ResizeEdge': size, 'CenterCrop': size}  # crop ratio 1.0, as official
    assert _pipeline_sizes(cfg.val_dataloader.dataset.pipeline) == test


def _official_flat_rule(name: str, param: torch.nn.Parameter) -> tuple:
    """The official trainer without LR_LAYER_DECAY (classification/optimizer.py): every
    parameter at the base lr; no weight decay for 1-D parameters and names ending in
    ``.bias`` (the model has no ``no_weight_decay`` lists)."""
    no_decay = len(param.shape) == 1 or name.endswith('.bias')
    return 1.0, 0.0 if no_decay else 1.0


@pytest.mark.parametrize(
    'stem',
    [
        'internimage-l_8xb64_in1k-384px',
        'internimage-h_8xb16-accum4_in1k-640px',
        'internimage-h_fsdp-cp_in1k-640px',
    ],
)
def test_fine_tune_parameter_groups_equal_the_official_flat_rule(stem, read_config):
    """The full-size fine-tune model on the meta device: per-parameter lr and weight decay
    from the config's optim_wrapper equal the official rule re-derived above. The FSDP
    variant's rule goes by module type and name only, so the unsharded model shows what
    the shards get (G's FSDP variant has the same rule)."""
    if 'fsdp' in stem:
        g_fsdp = read_config('configs/classification/internimage-g_fsdp-cp_in1k-512px.py')
        fsdp = read_config(f'configs/classification/{stem}.py')
        assert g_fsdp.optim_wrapper == fsdp.optim_wrapper and g_fsdp.strategy == fsdp.strategy
    from mmengine.optim import build_optim_wrapper

    cfg = read_config(f'configs/classification/{stem}.py')
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmpretrain')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr, base_wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    seen = {}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            seen[id(param)] = (group['lr'] / base_lr, group['weight_decay'] / base_wd)
    named = dict(model.named_parameters())
    assert len(seen) == len(named)
    for name, param in named.items():
        assert seen[id(param)] == pytest.approx(_official_flat_rule(name, param)), name


def test_layer_decay_variant_is_the_official_top_level_rule(read_config):
    """The official top-level internimage_l_22kto1k_384.yaml: LR_LAYER_DECAY 0.9, DCN_LR_MUL
    0.1 (its groups: tests/models/test_cls_layer_decay.py); all else as the shipped L."""
    variant = read_config('configs/classification/internimage-l_layer-decay_8xb64_in1k-384px.py')
    shipped = read_config('configs/classification/internimage-l_8xb64_in1k-384px.py')
    assert (
        variant.optim_wrapper.pop('constructor') == 'InternImageClsLayerDecayOptimizerConstructor'
    )
    assert variant.optim_wrapper.pop('paramwise_cfg') == dict(layer_decay_rate=0.9, dcn_lr_mult=0.1)
    shipped.optim_wrapper.pop('paramwise_cfg')
    assert variant.optim_wrapper == shipped.optim_wrapper
    assert variant.model == shipped.model and variant.param_scheduler == shipped.param_scheduler


def test_readme_lists_every_config_with_its_official_counterpart():
    """configs/README.md: one row per config; task configs name the official config."""
    text = (ROOT / 'configs' / 'README.md').read_text()
    rows = re.findall(r'^\| \[([^\]]+\.py)\]\(([^)]+)\) \|(.*)$', text, flags=re.M)
    listed = {link for _, link, _ in rows}
    assert listed == {path[len('configs/') :] for path in CONFIGS}
    official = {
        False: 'https://github.com/OpenGVLab/InternImage/blob/master/',
        True: 'https://github.com/OpenGVLab/DCNv4/blob/main/',  # FlashInternImage
    }
    for name, link, rest in rows:
        if not link.startswith('quickstart/'):
            assert official['flash-' in name] in rest, f'{name}: no official config named'
