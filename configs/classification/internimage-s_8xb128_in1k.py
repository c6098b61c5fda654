# InternImage-S, ImageNet-1K from scratch at 224 (official: 84.2 top-1, 50M, 8G FLOPs).
_base_ = './internimage-t_8xb128_in1k.py'

model = dict(backbone=dict(arch='s', drop_path_rate=0.4), head=dict(in_channels=640))
