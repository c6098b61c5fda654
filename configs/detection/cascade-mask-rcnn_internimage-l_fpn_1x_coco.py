# Cascade Mask R-CNN + InternImage-L (ImageNet-22K pre-trained), 1x schedule.
# Official recipe: AdamW lr 1e-4, wd 0.05, layer decay 0.94 over 37 layers,
# drop path 0.4, layer scale 1.0, offset scale 2.0 (the arch's), 8 GPUs x 2 images; box
# heads are 4conv-1fc with GIoU loss on decoded boxes.
# Target (official): box AP 54.9, mask AP 47.7.
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth'
)
# One box head per cascade stage; later stages refine with tighter stds.
stage_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
model = dict(
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='l',
        drop_path_rate=0.4,
        layer_scale=1.0,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(in_channels=[160, 320, 640, 1280]),  # stage channels
    roi_head=dict(
        bbox_head=[
            dict(
                type='ConvFCBBoxHead',
                num_shared_convs=4,
                num_shared_fcs=1,
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=target_stds,
                ),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=dict(type='SyncBN', requires_grad=True),
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0),
            )
            for target_stds in stage_target_stds
        ]
    ),
)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.94),  # the backbone numbers the layers
)

# 8 GPUs x 2 images; set auto_scale_lr.enable=True to train on fewer.
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'))
