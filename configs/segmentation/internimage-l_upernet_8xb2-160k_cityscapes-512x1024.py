# UperNet + InternImage-L (ImageNet-22K pre-trained) on Cityscapes, 512x1024 crops, 160k
# iterations. Official recipe: the T recipe with AdamW lr 2e-5, layer decay 0.94 over
# 37 layers, drop path 0.4, offset scale 2.0, gradient clipping at max norm 0.1.
# Target (official, single scale): mIoU 83.68.
_base_ = './internimage-t_upernet_8xb2-160k_cityscapes-512x1024.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth'
)

model = dict(
    backbone=dict(
        arch='l', drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    decode_head=dict(in_channels=[160, 320, 640, 1280]),
    auxiliary_head=dict(in_channels=640),
)

optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.94),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
