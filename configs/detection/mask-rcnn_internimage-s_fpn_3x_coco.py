# Mask R-CNN + InternImage-S, 3x schedule with multi-scale training (the
# InternImage-T 3x recipe with the S backbone of the 1x config).
# Target (official): box AP 49.7, mask AP 44.5.
_base_ = './mask-rcnn_internimage-t_fpn_3x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_s_1k_224.pth'
model = dict(
    backbone=dict(
        arch='s', drop_path_rate=0.3, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    neck=dict(in_channels=[80, 160, 320, 640]),
)
