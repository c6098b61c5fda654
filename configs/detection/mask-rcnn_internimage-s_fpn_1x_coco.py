# Mask R-CNN + InternImage-S, 1x schedule. Drop path 0.3, 33 layers.
# Target (official): box AP 47.8, mask AP 43.3.
_base_ = './mask-rcnn_internimage-t_fpn_1x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_s_1k_224.pth'
model = dict(
    backbone=dict(
        arch='s', drop_path_rate=0.3, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    neck=dict(in_channels=[80, 160, 320, 640]),
)
