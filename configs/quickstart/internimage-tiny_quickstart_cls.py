# Quick start: a tiny InternImage classifier on the synthetic shapes class
# folders (python tools/make_quickstart_data.py), trained from scratch on a CPU
# in a few minutes, then evaluated with top-1 accuracy.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

data_root = 'data/quickstart/cls/'
num_classes = 3
# Stage channels 32, 64, 128, 256; 16 channels per DCNv3 group everywhere.
arch = dict(channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16])

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=num_classes,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True,
    ),
    backbone=dict(
        type='InternImage', arch=arch, drop_path_rate=0.0, out_indices=(3,), init_cfg=None
    ),
    head=dict(
        type='InternImageClsHead',
        num_classes=num_classes,
        in_channels=arch['channels'] * 8,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1,),
    ),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=test_pipeline
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1,))
test_evaluator = val_evaluator

max_epochs = 15
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1)
)
log_processor = dict(window_size=10)
randomness = dict(seed=0)
