"""The DINO H/G/CB-H, DINO-L 0.1x-backbone-lr, LVIS and CrowdHuman configs: official
recipe values (dino_4scale_{cb,}internimage_{h,g}_objects365_*, crowd_human/cascade_*,
from the official files) and, built on the meta device at full size, the official model
zoo's parameter counts (within 3 %)."""

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

import internimage  # noqa: F401  (registers the models)

DET = 'configs/detection'
H_COCO = f'{DET}/dino-4scale_internimage-h_o365-pre_20k_coco.py'
G_COCO = f'{DET}/dino-4scale_internimage-g_o365-pre_20k_coco.py'
CB_COCO = f'{DET}/dino-4scale_cb-internimage-h_o365-pre_20k_coco.py'
CB_LVIS_VAL = f'{DET}/dino-4scale_cb-internimage-h_o365-pre_80k_lvis-val.py'
CB_LVIS_MINIVAL = f'{DET}/dino-4scale_cb-internimage-h_o365-pre_80k_lvis-minival.py'
L_FLAT = f'{DET}/dino-4scale_internimage-l_8xb2-12e_coco_0.1x-backbone-lr.py'
CROWDHUMAN = f'{DET}/cascade-rcnn_internimage-xl_fpn_3x_crowdhuman.py'

# Official model zoo (README "#param"): DINO CB-H 2.18B (COCO, LVIS), DINO L 241M.
PUBLISHED_PARAMS = {CB_COCO: 2.18e9, CB_LVIS_VAL: 2.18e9, L_FLAT: 241e6}


def _count_on_meta(cfg) -> int:
    init_default_scope('mmdet')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('path', sorted(PUBLISHED_PARAMS))
def test_published_parameter_count(path, read_config):
    count = _count_on_meta(read_config(path))
    assert abs(count / PUBLISHED_PARAMS[path] - 1) < 0.03, f'{count / 1e6:.1f}M'


@pytest.mark.parametrize(
    'path, arch, neck, layers',
    [
        (H_COCO, 'h', [640, 1280, 2560], 50),
        (G_COCO, 'g', [1024, 2048, 4096], 56),
        (CB_COCO, 'h', [640, 1280, 2560], 50),
    ],
)
def test_large_dino_recipe(path, arch, neck, layers, read_config):
    cfg = read_config(path)
    model = cfg.model
    assert model.num_queries == 900 and model.dn_cfg.group_cfg.num_dn_queries == 1000
    assert model.test_cfg.max_per_img == 300
    assert model.encoder.num_cp == 6  # activation checkpointing of the encoder layers
    backbone = model.backbone
    assert (backbone.arch, backbone.drop_path_rate, backbone.with_cp) == (arch, 0.5, True)
    assert backbone.layer_scale is None and backbone.init_cfg is None
    assert model.neck.in_channels == neck and model.neck.num_outs == 4
    wrapper = cfg.optim_wrapper
    assert wrapper.paramwise_cfg == dict(layer_decay_rate=0.94, offset_lr_scale=1e-3)
    assert (wrapper.optimizer.lr, wrapper.optimizer.weight_decay) == (1e-4, 1e-4)
    assert wrapper.clip_grad == dict(max_norm=0.1, norm_type=2)
    assert (cfg.train_cfg.type, cfg.train_cfg.max_iters) == ('IterBasedTrainLoop', 20000)
    (warmup,) = cfg.param_scheduler  # constant lr after the warm-up (official step=[])
    assert (warmup.start_factor, warmup.end, warmup.by_epoch) == (0.001, 500, False)
    assert cfg.train_dataloader.batch_size == 1
    resize = [t for t in cfg.train_dataloader.dataset.pipeline if 'Resize' in t.type]
    assert [(t.type, t.scale) for t in resize] == [('RandomResize', [(2000, 600), (2000, 1800)])]
    test_resize = [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize']
    assert test_resize[0].scale == (2000, 1000)
    with torch.device('meta'):
        built = MODELS.build(dict(backbone, init_cfg=None))
    assert built.num_layers == layers


def test_cb_dino_parts(read_config):
    cfg = read_config(CB_COCO)
    assert cfg.model.type == 'CBDINO'
    assert cfg.model.backbone.type == 'CBInternImage'
    assert [tuple(i) for i in cfg.model.backbone.out_indices] == [(0, 1, 2, 3), (1, 2, 3)]
    assert cfg.model.neck.type == 'CBChannelMapper'
    assert cfg.model.bbox_head.type == 'CBDINOHead'
    assert cfg.load_from.endswith('dino_4scale_cbinternimage_h_objects365_80classes_mmdet3.pth')


@pytest.mark.parametrize(
    'path, ann', [(CB_LVIS_VAL, 'lvis_v1_val.json'), (CB_LVIS_MINIVAL, 'lvis_v1_minival.json')]
)
def test_lvis_recipe(path, ann, read_config):
    cfg = read_config(path)
    assert cfg.model.bbox_head.num_classes == 1203
    train = cfg.train_dataloader.dataset
    assert (train.type, train.oversample_thr) == ('ClassBalancedDataset', 1e-3)
    assert train.dataset.type == 'LVISV1Dataset'
    resize = [t for t in train.dataset.pipeline if 'Resize' in t.type]
    assert resize[0].scale == [(2000, 600), (2000, 1200)]
    assert cfg.test_dataloader.dataset.ann_file == f'annotations/{ann}'
    assert cfg.test_evaluator.type == 'LVISMetric' and cfg.test_evaluator.ann_file.endswith(ann)
    assert cfg.train_cfg.max_iters == 80000


def test_dino_l_flat_backbone_lr(read_config):
    cfg = read_config(L_FLAT)
    wrapper = cfg.optim_wrapper
    assert 'constructor' not in wrapper
    assert (wrapper.optimizer.lr, wrapper.optimizer.weight_decay) == (1e-4, 0.05)
    assert wrapper.paramwise_cfg == dict(custom_keys={'backbone': dict(lr_mult=0.1)})
    assert cfg.model.backbone.arch == 'l' and cfg.model.test_cfg.max_per_img == 300


def test_crowdhuman_recipe(read_config):
    cfg = read_config(CROWDHUMAN)
    assert cfg.model.type == 'CascadeRCNN'
    assert [h.num_classes for h in cfg.model.roi_head.bbox_head] == [1, 1, 1]
    assert all(h.reg_class_agnostic for h in cfg.model.roi_head.bbox_head)
    backbone = cfg.model.backbone
    assert (backbone.arch, backbone.drop_path_rate, backbone.layer_scale) == ('xl', 0.4, 1.0)
    assert cfg.train_dataloader.dataset.type == 'CrowdHumanDataset'
    assert cfg.test_evaluator.type == 'CrowdHumanMetric'
    assert cfg.optim_wrapper.paramwise_cfg == dict(layer_decay_rate=0.94)
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert 'clip_grad' not in cfg.optim_wrapper
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=128)
    assert cfg.train_cfg.max_epochs == 36 and cfg.param_scheduler[1].milestones == [27, 33]
    crop = cfg.train_dataloader.dataset.pipeline[3].transforms[1]
    assert crop[1].allow_negative_crop is True and crop[0].scales[0] == (1333, 400)


def test_dino_g_fsdp_variant(read_config):
    """The FSDP variant passes the FSDP optimizer guard and keeps the official offset lr."""
    from internimage.apis import check_fsdp_optimizer

    cfg = read_config(f'{DET}/dino-4scale_internimage-g_fsdp_o365-pre_20k_coco.py')
    check_fsdp_optimizer(cfg)
    assert cfg.strategy.type == 'FSDPStrategy' and cfg.runner_type == 'FlexibleRunner'
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert keys == {'sampling_offsets': dict(lr_mult=1e-3, decay_mult=0.0)}
    assert cfg.model.backbone.with_cp and cfg.model.encoder.num_cp == 6
