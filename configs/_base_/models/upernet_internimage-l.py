# UperNet on InternImage-L (ImageNet-22K weights; drop path 0.4; the arch's offset
# scale 2.0, layer scale 1.0), as the official upernet_internimage_l_* configs.
_base_ = './upernet_internimage.py'

model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.4,
        init_cfg=dict(
            checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth',
        ),
    ),
    decode_head=dict(in_channels=[160, 320, 640, 1280]),
    auxiliary_head=dict(in_channels=640),
)
