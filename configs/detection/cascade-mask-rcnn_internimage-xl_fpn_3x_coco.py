# Cascade Mask R-CNN + InternImage-XL, 3x schedule with DETR-style multi-scale
# training (the L 3x recipe with the XL backbone, 39 layers, and drop path 0.6).
# Target (official): box AP 56.2, mask AP 48.8.
_base_ = './cascade-mask-rcnn_internimage-l_fpn_3x_coco.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth'
)
model = dict(
    backbone=dict(
        arch='xl', drop_path_rate=0.6, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    neck=dict(in_channels=[192, 384, 768, 1536]),
)
