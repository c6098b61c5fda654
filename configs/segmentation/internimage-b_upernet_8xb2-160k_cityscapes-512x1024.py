# UperNet + InternImage-B on Cityscapes, 512x1024 crops, 160k iterations (the T recipe
# with the B backbone: drop path 0.4, 33 layers).
# Target (official, single scale): mIoU 83.18.
_base_ = './internimage-t_upernet_8xb2-160k_cityscapes-512x1024.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_b_1k_224.pth'

model = dict(
    backbone=dict(
        arch='b', drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    decode_head=dict(in_channels=[112, 224, 448, 896]),
    auxiliary_head=dict(in_channels=448),
)
