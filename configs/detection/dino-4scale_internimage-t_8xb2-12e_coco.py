# DINO (4 scales) + InternImage-T, 1x schedule (12 epochs) on COCO.
# Official recipe (dino_4scale_internimage_t_1x_coco_layer_wise_lr): 8 GPUs x 2 images,
# AdamW lr 1e-4, wd 1e-4, layer decay 0.9 over 30 layers, gradient clipping at max norm
# 0.1, 500-iteration linear warm-up, lr step at epoch 11; drop path 0.2, layer scale 1.0,
# gradient checkpointing; 900 queries, 100 denoising queries; DETR-style multi-scale
# training (negative crops not allowed), images padded to a multiple of 32; at most 100
# detections per image. mmdet 3.x's DINO is the official model under 3.x names.
# Target (official): box AP 53.9.
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    '../_base_/datasets/detr_multiscale_pipelines.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_t_1k_224.pth'
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        drop_path_rate=0.2,
        layer_scale=1.0,
        out_indices=(1, 2, 3),
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(in_channels=[128, 256, 512]),  # stage 2-4 channels
    test_cfg=dict(max_per_img=100),
)

# The official (mmdet 2.x) COCO training set drops images without boxes.
train_dataloader = dict(
    dataset=dict(
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.detr_multiscale_dino_pipeline}},
    )
)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(layer_decay_rate=0.9),  # the backbone numbers the layers
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[11], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'))
