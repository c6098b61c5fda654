# UperNet + InternImage-S on Cityscapes, 512x1024 crops, 160k iterations (the T recipe
# with the S backbone: drop path 0.3, 33 layers).
# Target (official, single scale): mIoU 82.74.
_base_ = './internimage-t_upernet_8xb2-160k_cityscapes-512x1024.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_s_1k_224.pth'

model = dict(
    backbone=dict(
        arch='s', drop_path_rate=0.3, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320),
)
