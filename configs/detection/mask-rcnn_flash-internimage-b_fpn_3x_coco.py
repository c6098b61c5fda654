# Mask R-CNN + FlashInternImage-B (DCNv4), 3x schedule with the DETR-style multi-scale
# training of the T 3x config; official recipe: 16 GPUs x 4 images (batch 64), AdamW lr
# 2e-4, layer decay 0.9 with 0.01x lr on DCNv4's offset/mask projections
# (offset_lr_scale), drop path 0.4, offset scale 0.5.
# Target (official mask_rcnn_flash_intern_image_b_fpn_3x_coco): box AP 50.6, mask AP 45.4.
_base_ = './mask-rcnn_flash-internimage-t_fpn_3x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/flash_intern_image_b_1k_224.pth'
channels = 112

model = dict(
    backbone=dict(
        arch='b',
        drop_path_rate=0.4,
        offset_scale=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(in_channels=[channels * 2**i for i in range(4)]),
)
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(layer_decay_rate=0.9, offset_lr_scale=0.01),
)
train_dataloader = dict(batch_size=4)
auto_scale_lr = dict(base_batch_size=64)
