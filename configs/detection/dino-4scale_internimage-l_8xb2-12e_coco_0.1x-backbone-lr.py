# DINO (4 scales) + InternImage-L, 1x on COCO with a flat 0.1x backbone lr instead of
# layer decay. Official recipe (dino_4scale_internimage_l_1x_coco_0.1x_backbone_lr): the L
# layer-wise-lr recipe but AdamW weight decay 0.05 and mmcv's default constructor with
# lr x0.1 for every parameter whose name contains "backbone".
# Target (official): box AP 57.6, 241M parameters.
_base_ = './dino-4scale_internimage-l_8xb2-12e_coco.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
