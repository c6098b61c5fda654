# Mask R-CNN + InternImage-T, 1x schedule (12 epochs) on COCO.
# Official recipe: AdamW lr 1e-4, wd 0.05, layer decay 1.0 over 30 layers,
# drop path 0.2, layer scale 1.0 (offset scale 1.0, the arch's), 8 GPUs x 2 images.
# Target (official): box AP 47.2, mask AP 42.5.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_t_1k_224.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        drop_path_rate=0.2,
        layer_scale=1.0,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),  # stage channels
)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0),  # the backbone numbers the layers
)

# 8 GPUs x 2 images; set auto_scale_lr.enable=True to train on fewer.
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'))
