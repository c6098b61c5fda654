# UperNet + InternImage-B on ADE20K, 512x512 crops, 160k iterations (the T
# recipe with the B backbone: drop path 0.4, 33 layers).
# Target (official, single scale): mIoU 50.8.
_base_ = './internimage-t_upernet_8xb2-160k_ade20k-512x512.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_b_1k_224.pth'
arch = 'b'
depths = [4, 4, 21, 4]
channels = 112

model = dict(
    backbone=dict(
        arch=arch, drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    decode_head=dict(in_channels=[channels * 2**i for i in range(4)]),
    auxiliary_head=dict(in_channels=channels * 4),
)
optim_wrapper = dict(paramwise_cfg=dict(num_layers=sum(depths), depths=depths))
