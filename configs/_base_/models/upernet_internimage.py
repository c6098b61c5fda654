# UperNet (mmseg's upernet_r50: PPM + FPN decode head, FCN auxiliary head on stage 3) on
# InternImage-T (ImageNet-1K weights), as the official upernet_internimage_* configs
# build it; whole-image inference.
_base_ = 'mmseg::_base_/models/upernet_r50.py'

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        drop_path_rate=0.2,
        layer_scale=1.0,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_t_1k_224.pth',
        ),
    ),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256),  # stage 3
    test_cfg=dict(mode='whole'),
)
