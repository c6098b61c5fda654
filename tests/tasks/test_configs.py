"""Every shipped config parses, follows its recipe and builds a working model.

Recipes are checked against the official numbers (the official InternImage configs;
variant table in docs/architecture.md), written out here independently of the configs.
Models are built for every config with one block per stage (same widths, so necks/heads
are wired exactly as at full size) and run on a small image; the InternImage-T detection
and segmentation models are also built at full size and their parameter counts compared
with the published ones.
"""

import copy
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
    'cascade-mask-rcnn_internimage-xl_fpn_3x_coco': ('xl', 0.4, 2e-4, 0.90, 36),
}
# config stem -> (arch, drop path, lr, layer decay, crop) for segmentation.
SEGMENTATION_RECIPES = {
    'internimage-t_upernet_8xb2-160k_ade20k-512x512': ('t', 0.2, 6e-5, 1.0, 512),
    'internimage-s_upernet_8xb2-160k_ade20k-512x512': ('s', 0.3, 6e-5, 1.0, 512),
    'internimage-b_upernet_8xb2-160k_ade20k-512x512': ('b', 0.4, 6e-5, 1.0, 512),
    'internimage-l_upernet_8xb2-160k_ade20k-640x640': ('l', 0.4, 2e-5, 0.94, 640),
    'internimage-xl_upernet_8xb2-160k_ade20k-640x640': ('xl', 0.4, 2e-5, 0.94, 640),
}


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
    table = {'InternImage': InternImage, 'FlashInternImage': FlashInternImage}[backbone_type]
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


def _assert_layer_decay(cfg: Config, depths: list, decay: float) -> None:
    """Only the rate is configured; the backbone supplies the layers (sum of depths)."""
    assert cfg.optim_wrapper.paramwise_cfg == dict(layer_decay_rate=decay)
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
    missing = (set(DETECTION_RECIPES) | set(SEGMENTATION_RECIPES)) - stems
    assert not missing
    assert {
        'mask-rcnn_internimage-tiny_quickstart',
        'upernet_internimage-tiny_quickstart',
        'internimage-tiny_quickstart_cls',
    } <= stems


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses_with_common_contract(path, read_config):
    cfg = read_config(path)
    assert cfg.custom_imports == dict(imports=['internimage'], allow_failed_imports=False)
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')
    assert cfg.model.backbone.type in ('InternImage', 'FlashInternImage')
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
    _assert_layer_decay(cfg, depths, decay)
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.train_dataloader.batch_size == 2
    is_cascade = stem.startswith('cascade')
    assert cfg.model.type == ('CascadeRCNN' if is_cascade else 'MaskRCNN')
    if epochs == 36:  # 3x recipes train multi-scale
        pipeline_types = str(cfg.train_dataloader.dataset.pipeline)
        assert 'RandomResize' in pipeline_types or ('RandomChoiceResize' in pipeline_types)


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
    assert cfg.train_dataloader.batch_size == batch


@pytest.mark.parametrize('arch', ['t', 's', 'b', 'l'])
def test_flash_classification_configs(arch, read_config):
    stem = f'flash-internimage-{arch}_8xb128_in1k' + ('-384px' if arch == 'l' else '')
    flash = read_config(f'configs/classification/{stem}.py')
    base = read_config(f'configs/classification/{stem.replace("flash-", "")}.py')
    assert flash.model.backbone.pop('type') == 'FlashInternImage'
    assert base.model.backbone.pop('type') == 'InternImage'
    assert flash.model == base.model  # the InternImage recipe, only the backbone type differs


@pytest.mark.parametrize('stem', sorted(SEGMENTATION_RECIPES))
def test_segmentation_recipe(stem, read_config):
    arch, drop_path, lr, decay, crop = SEGMENTATION_RECIPES[stem]
    cfg = read_config(f'configs/segmentation/{stem}.py')
    channels, depths = ARCH_TABLE[arch]
    assert cfg.model.backbone.arch == arch
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.model.decode_head.in_channels == [channels * 2**i for i in range(4)]
    assert cfg.model.auxiliary_head.in_channels == channels * 4
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.model.data_preprocessor.size == (crop, crop)
    crops = [
        t['crop_size'] for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'RandomCrop'
    ]
    assert crops == [(crop, crop)]
    wrapper = cfg.optim_wrapper
    assert wrapper.optimizer.lr == lr
    _assert_layer_decay(cfg, depths, decay)
    built = _backbone_on_meta(cfg).arch
    assert built['layer_scale'] == 1.0
    assert built['offset_scale'] == (2.0 if arch in ('l', 'xl') else 1.0)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 2


@pytest.mark.parametrize('path', CONFIGS)
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
            logits = model.decode_head(feats)
            aux = model.auxiliary_head(feats)
            num_classes = cfg.model.decode_head.num_classes
            assert logits.shape[:2] == (1, num_classes)
            assert aux.shape[:2] == (1, num_classes)
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
