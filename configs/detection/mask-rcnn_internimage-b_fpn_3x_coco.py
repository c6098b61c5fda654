# Mask R-CNN + InternImage-B, 3x schedule with multi-scale training (the
# InternImage-T 3x recipe with the B backbone of the 1x config).
# Target (official): box AP 50.3, mask AP 44.8.
_base_ = './mask-rcnn_internimage-t_fpn_3x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_b_1k_224.pth'
model = dict(
    backbone=dict(
        arch='b', drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    neck=dict(in_channels=[112, 224, 448, 896]),
)
