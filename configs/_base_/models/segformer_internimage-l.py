# SegFormer's all-MLP decode head (mmseg's segformer_mit-b0 head: 256 channels, dropout
# 0.1, no auxiliary head) on InternImage-L (ImageNet-22K weights, drop path 0.4, the
# arch's offset scale 2.0 and layer scale 1.0), as the official segformer_internimage_l_*
# configs; whole-image inference.
_base_ = 'mmseg::_base_/models/segformer_mit-b0.py'

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='l',
        drop_path_rate=0.4,
        layer_scale=1.0,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth',
        ),
    ),
    decode_head=dict(in_channels=[160, 320, 640, 1280]),
)
