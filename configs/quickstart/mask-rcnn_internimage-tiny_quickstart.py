# Quick start: Mask R-CNN + a tiny InternImage on the synthetic shapes data
# (python tools/make_quickstart_data.py), trained from scratch on a CPU in a
# few minutes, then evaluated with the COCO bbox and segm metrics.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/datasets/quickstart_coco.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

num_classes = 3  # the quick-start data's circle, square, triangle
# Stage channels 32, 64, 128, 256; 16 channels per DCNv3 group everywhere.
arch = dict(channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16])
fpn_channels = 64

model = dict(
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch=arch,
        drop_path_rate=0.0,
        out_indices=(0, 1, 2, 3),
        init_cfg=None,
    ),
    neck=dict(in_channels=[arch['channels'] * 2**i for i in range(4)], out_channels=fpn_channels),
    rpn_head=dict(
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        # Shapes are 15-60 px: anchors of 16-256 px over the 5 levels.
        anchor_generator=dict(scales=[4]),
    ),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(
            in_channels=fpn_channels, conv_out_channels=fpn_channels, num_classes=num_classes
        ),
    ),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500), rcnn=dict(sampler=dict(num=128))
    ),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300), rcnn=dict(max_per_img=50)),
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
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0),
    clip_grad=dict(max_norm=10.0),
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
