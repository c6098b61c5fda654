# InternImage-B, ImageNet-1K from scratch at 224 (official: 84.9 top-1, 97M, 16G FLOPs).
_base_ = './internimage-t_8xb128_in1k.py'

model = dict(backbone=dict(arch='b', drop_path_rate=0.5), head=dict(in_channels=896))
