# DINO (4 scales) + CB-InternImage-H on LVIS v1, evaluated on LVIS v1 minival (the 5k
# images of val not in the LVIS v1 train set): the LVIS val recipe with the minival file.
# Target (official): box AP 65.8, 2.18B parameters.
_base_ = './dino-4scale_cb-internimage-h_o365-pre_80k_lvis-val.py'

minival = 'annotations/lvis_v1_minival.json'
val_dataloader = dict(dataset=dict(ann_file=minival))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='data/lvis_v1/' + minival)
test_evaluator = val_evaluator
