# UperNet + InternImage-XL on Mapillary -> 19 Cityscapes classes (the L recipe with the
# XL backbone, 39 layers). Official: upernet_internimage_xl_512x1024_80k_mapillary.
# Target: the official model zoo publishes no mIoU for this pre-training stage.
_base_ = './internimage-l_upernet_8xb2-80k_mapillary-512x1024.py'

model = dict(
    backbone=dict(
        arch='xl',
        init_cfg=dict(
            checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth'
        ),
    ),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768),
)
