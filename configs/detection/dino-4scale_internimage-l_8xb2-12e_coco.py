# DINO (4 scales) + InternImage-L (ImageNet-22K pre-trained), 1x schedule on COCO.
# Official recipe (dino_4scale_internimage_l_1x_coco_layer_wise_lr): the T recipe with
# the L backbone (layer decay 0.9 over 37 layers, drop path 0.4, offset scale 2.0, no
# gradient checkpointing) and at most 300 detections per image.
# Target (official): box AP 57.5.
_base_ = './dino-4scale_internimage-t_8xb2-12e_coco.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth'
)
model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.4,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(in_channels=[320, 640, 1280]),
    test_cfg=dict(max_per_img=300),
)
