# Mask R-CNN + InternImage-B, 1x schedule. Drop path 0.4, 33 layers.
# Target (official): box AP 48.8, mask AP 44.0.
_base_ = './mask-rcnn_internimage-t_fpn_1x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_b_1k_224.pth'
model = dict(
    backbone=dict(
        arch='b', drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    neck=dict(in_channels=[112, 224, 448, 896]),
)
