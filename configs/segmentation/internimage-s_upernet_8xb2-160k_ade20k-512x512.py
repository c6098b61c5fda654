# UperNet + InternImage-S on ADE20K, 512x512 crops, 160k iterations (the T
# recipe with the S backbone: drop path 0.3, 33 layers).
# Target (official, single scale): mIoU 50.1.
_base_ = './internimage-t_upernet_8xb2-160k_ade20k-512x512.py'

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_s_1k_224.pth'
arch = 's'
depths = [4, 4, 21, 4]
channels = 80

model = dict(
    backbone=dict(
        arch=arch, drop_path_rate=0.3, init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    ),
    decode_head=dict(in_channels=[channels * 2**i for i in range(4)]),
    auxiliary_head=dict(in_channels=channels * 4),
)
optim_wrapper = dict(paramwise_cfg=dict(num_layers=sum(depths), depths=depths))
