# Cascade R-CNN + InternImage-XL on CrowdHuman (full-body boxes), 3x schedule with
# DETR-style multi-scale training. Official recipe (cascade_internimage_xl_fpn_3x_crowd_human):
# mmdet's Cascade R-CNN (three Shared2FC box heads, class-agnostic regression) with one
# class, RPN proposals 2000 in training; 8 nodes x 8 GPUs x 2 images (batch 128), AdamW
# lr 1e-4 (wd 1e-4), layer decay 0.94 over 39 layers, no gradient clipping; drop path 0.4,
# layer scale 1.0, offset scale 2.0 (the XL arch), no gradient checkpointing.
# Data: mmdet 3.x's CrowdHumanDataset / CrowdHumanMetric on the original odgt files (the
# official converts them to COCO json first and scores COCO box AP).
# Target (official): none published (TBD in its model zoo).
_base_ = [
    'mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
    '../_base_/datasets/crowdhuman_detection.py',
    '../_base_/datasets/detr_multiscale_pipelines.py',
    '../_base_/schedules/schedule_3x.py',
    'mmdet::_base_/default_runtime.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth'
)
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='xl',
        drop_path_rate=0.4,
        layer_scale=1.0,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(in_channels=[192, 384, 768, 1536]),
    # mmdet's three Cascade stages (lists replace, so each is written whole) with one class.
    roi_head=dict(
        bbox_head=[
            dict(
                type='Shared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=1,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=stage_stds
                ),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
            )
            for stage_stds in (
                [0.1, 0.1, 0.2, 0.2],
                [0.05, 0.05, 0.1, 0.1],
                [0.033, 0.033, 0.067, 0.067],
            )
        ]
    ),
)

train_dataloader = dict(dataset=dict(pipeline={{_base_.detr_multiscale_box_pipeline}}))

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(layer_decay_rate=0.94),
)
# Official total batch: 64 GPUs x 2 images; the lr follows the total batch.
auto_scale_lr = dict(enable=True, base_batch_size=128)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'))
