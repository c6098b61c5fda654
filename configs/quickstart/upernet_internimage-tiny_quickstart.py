# Quick start: UperNet + a tiny InternImage on the synthetic shapes label maps
# (python tools/make_quickstart_data.py), trained from scratch on a CPU in a
# few minutes, then evaluated with mIoU.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/default_runtime.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

data_root = 'data/quickstart/seg/'
classes = ('background', 'circle', 'square', 'triangle')
num_classes = len(classes)
image_size = (128, 128)
# Stage channels 32, 64, 128, 256; 16 channels per DCNv3 group everywhere.
arch = dict(channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16])
# Plain BN: single-process CPU training has no process group to sync over.
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=image_size),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch=arch,
        drop_path_rate=0.0,
        out_indices=(0, 1, 2, 3),
        init_cfg=None,
    ),
    decode_head=dict(
        in_channels=[arch['channels'] * 2**i for i in range(4)],
        channels=64,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
    ),
    auxiliary_head=dict(
        in_channels=arch['channels'] * 4, channels=32, num_classes=num_classes, norm_cfg=norm_cfg
    ),
    test_cfg=dict(mode='whole'),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=dict(classes=classes, palette=[[0, 0, 0], [220, 20, 60], [0, 160, 80], [30, 90, 230]]),
    img_suffix='.png',
    seg_map_suffix='.png',
    reduce_zero_label=False,
)
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 800
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=50, end=max_iters),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
)
log_processor = dict(by_epoch=False, window_size=20)
randomness = dict(seed=0)
