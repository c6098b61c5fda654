"""The DINO, UperNet-H/G and Cityscapes configs each train one iteration on CPU.

Each config's model and optimizer wrapper (layer-decay constructor, gradient clipping) are
built as the config says, except the backbone: a tiny InternImage with the config's arch
options (post-norm kinds, extra post-norms, kernel, centre feature scale, offset and layer
scale) but 32 channels, one to two blocks per stage and 32 channels per DCNv3 group, so
that the G-sized options run in seconds. The heads' input widths follow. No weights are
downloaded (``init_cfg=None``).
"""

import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.structures import InstanceData, PixelData

import internimage  # noqa: F401  (registers InternImage and the constructor)
from internimage.models import InternImage

# Each is a real training step (DINO at 256 px): seconds to a minute on a shared CPU.
pytestmark = pytest.mark.slow

TINY_CHANNELS = 32
IMAGE = 64
# DINO keeps its 900 top encoder tokens as queries: stride 8 of 256 px gives 1024 tokens.
DETECTION_IMAGE = 256

DETECTION = [
    'configs/detection/dino-4scale_internimage-t_8xb2-12e_coco.py',
    'configs/detection/dino-4scale_internimage-l_8xb2-12e_coco.py',
]
SEGMENTATION = [
    'configs/segmentation/internimage-h_upernet_16xb1-160k_ade20k-896x896.py',
    'configs/segmentation/internimage-g_upernet_16xb1-160k_ade20k-896x896.py',
] + [
    f'configs/segmentation/internimage-{arch}_upernet_8xb2-160k_cityscapes-512x1024.py'
    for arch in ('t', 's', 'b', 'l', 'xl')
]


def _tiny_backbone(backbone_cfg) -> list:
    """Shrink the config's arch in place; returns the stage widths."""
    arch = copy.deepcopy(InternImage.arch_settings[backbone_cfg.arch])
    arch.update(channels=TINY_CHANNELS, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])
    if arch.get('level2_post_norm_block_ids'):
        arch['level2_post_norm_block_ids'] = [1]
    backbone_cfg.arch = arch
    backbone_cfg.init_cfg = None
    backbone_cfg.with_cp = False
    return [TINY_CHANNELS * 2**i for i in range(4)]


def _train_one_step(cfg, data) -> dict:
    model = MODELS.build(cfg.model)
    model.init_weights()  # as the runner does (DINO's classifier bias prior, ...)
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    log_vars = model.train_step(data, wrapper)
    assert torch.isfinite(log_vars['loss'])
    changed = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
    assert any(name.startswith('backbone.') for name in changed)
    assert any(not name.startswith('backbone.') for name in changed)
    return log_vars


@pytest.mark.parametrize('path', DETECTION)
def test_detection_config_trains_one_step(path, read_config):
    from mmdet.structures import DetDataSample

    cfg = read_config(path)
    init_default_scope(cfg.default_scope)
    widths = _tiny_backbone(cfg.model.backbone)
    cfg.model.neck.in_channels = [widths[i] for i in cfg.model.backbone.out_indices]
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(DETECTION_IMAGE, DETECTION_IMAGE),
            ori_shape=(DETECTION_IMAGE, DETECTION_IMAGE),
            scale_factor=(1, 1),
        )
    )
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[30.0, 40.0, 160.0, 200.0]]), labels=torch.tensor([3])
    )
    image = torch.randint(0, 256, (3, DETECTION_IMAGE, DETECTION_IMAGE), dtype=torch.uint8)
    torch.manual_seed(0)
    log_vars = _train_one_step(cfg, dict(inputs=[image], data_samples=[sample]))
    assert 'loss_iou' in log_vars and 'dn_loss_bbox' in log_vars  # DINO's denoising branch


@pytest.mark.parametrize('path', SEGMENTATION)
def test_segmentation_config_trains_one_step(path, read_config):
    from mmseg.structures import SegDataSample

    cfg = read_config(path)
    init_default_scope(cfg.default_scope)
    widths = _tiny_backbone(cfg.model.backbone)
    cfg.model.decode_head.in_channels = widths
    cfg.model.auxiliary_head.in_channels = widths[2]
    cfg.model.data_preprocessor.size = (IMAGE, IMAGE)  # tiny input instead of the crop
    num_classes = cfg.model.decode_head.num_classes
    samples = []
    for _ in range(2):  # the pooling branch's norm needs two values per channel
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(IMAGE, IMAGE), ori_shape=(IMAGE, IMAGE), pad_shape=(IMAGE, IMAGE)
            )
        )
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, IMAGE, IMAGE)))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, IMAGE, IMAGE), dtype=torch.uint8) for _ in samples]
    torch.manual_seed(0)
    log_vars = _train_one_step(cfg, dict(inputs=images, data_samples=samples))
    assert 'decode.loss_ce' in log_vars and 'aux.loss_ce' in log_vars
