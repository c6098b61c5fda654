# Quick start: DINO (4 scales) + a tiny InternImage with the H-style block options
# (res-post-norm, extra stage-3 post-norms, 5x5 depthwise kernel, centre feature scale) on
# the synthetic shapes data (python tools/make_quickstart_data.py; its masks load unused).
# A shrunken transformer (2 encoder / 2 decoder layers, 256-wide FFNs, 100 queries) runs
# in seconds on a CPU; the width stays 256, which mmdet's DINO decoder assumes (its
# 128-feature sine embedding of the reference points).
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    '../_base_/datasets/quickstart_coco.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

num_classes = 3  # the quick-start data's circle, square, triangle
# Stage channels 32, 64, 128, 256; 16 channels per DCNv3 group; H's block options.
arch = dict(
    channels=32,
    depths=[1, 1, 2, 1],
    groups=[2, 4, 8, 16],
    dw_kernel_size=5,
    res_post_norm=True,
    level2_post_norm_block_ids=[1],
    center_feature_scale=True,
)
ffn_channels = 256

model = dict(
    num_queries=100,
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch=arch,
        drop_path_rate=0.0,
        out_indices=(1, 2, 3),
        init_cfg=None,
    ),
    neck=dict(in_channels=[arch['channels'] * 2**i for i in (1, 2, 3)]),
    encoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=ffn_channels))),
    decoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=ffn_channels))),
    bbox_head=dict(num_classes=num_classes),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=20)),
    test_cfg=dict(max_per_img=50),
)

train_dataloader = {{_base_.quickstart_train_dataloader}}
val_dataloader = {{_base_.quickstart_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.quickstart_evaluator}}
test_evaluator = val_evaluator

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(layer_decay_rate=1.0),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1)
)
log_processor = dict(window_size=10)
auto_scale_lr = dict(enable=False)
randomness = dict(seed=0)
