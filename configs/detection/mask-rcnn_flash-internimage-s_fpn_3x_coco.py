# Mask R-CNN + FlashInternImage-S (DCNv4), 3x schedule with the DETR-style multi-scale
# training of the T 3x config; official recipe: 8 GPUs x 8 images (batch 64), AdamW lr 2e-4,
# layer decay 1.0, drop path 0.4, offset scale 1.0.
# Target (official mask_rcnn_flash_intern_image_s_fpn_3x_coco): box AP 50.5, mask AP 44.9.
_base_ = './mask-rcnn_flash-internimage-t_fpn_3x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/flash_intern_image_s_1k_224.pth'
channels = 80

model = dict(
    backbone=dict(
        arch='s', drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    neck=dict(in_channels=[channels * 2**i for i in range(4)]),
)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
train_dataloader = dict(batch_size=8)
auto_scale_lr = dict(base_batch_size=64)
