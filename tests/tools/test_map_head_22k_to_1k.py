"""tools/map_head_22k_to_1k.py (internimage.checkpoint.head_22k) keeps, for each 1K class,
the row of its 22K class."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from internimage.checkpoint.head_22k import map_head_22k_to_1k, read_mapping

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'map_head_22k_to_1k.py'


def _official_layout(rows: int = 21841):
    """An official-style checkpoint: ``model`` and ``model_ema`` with a 22K linear head."""
    generator = torch.Generator().manual_seed(0)
    weights = {
        'levels.0.blocks.0.mlp.fc1.weight': torch.randn(8, 4, generator=generator),
        'head.weight': torch.randn(rows, 6, generator=generator),
        'head.bias': torch.randn(rows, generator=generator),
    }
    return {'model': weights, 'model_ema': {k: v + 1 for k, v in weights.items()}}


def test_rows_follow_the_mapping(tmp_path):
    source = _official_layout()
    mapping = [21840, 0, 7, 7, 12345]  # any 22K index per 1K class, repeats allowed
    (tmp_path / 'map.txt').write_text('\n'.join(map(str, mapping)) + '\n')
    torch.save(source, tmp_path / 'in.pth')
    subprocess.run(
        [sys.executable, str(TOOL), str(tmp_path / 'in.pth'), str(tmp_path / 'map.txt'),
         str(tmp_path / 'out.pth')],
        check=True, capture_output=True,
    )  # fmt: skip
    out = torch.load(tmp_path / 'out.pth', weights_only=True)
    for key in ('model', 'model_ema'):
        head_w, head_b = source[key]['head.weight'], source[key]['head.bias']
        assert out[key]['head.weight'].shape == (5, 6)
        for i, index in enumerate(mapping):  # row i is 22K row mapping[i]
            assert torch.equal(out[key]['head.weight'][i], head_w[index])
            assert out[key]['head.bias'][i] == head_b[index]
        fc1 = 'levels.0.blocks.0.mlp.fc1.weight'
        assert torch.equal(out[key][fc1], source[key][fc1])


@pytest.mark.parametrize(
    'text, message', [('3\nx\n', 'line|integer'), ('21841\n', 'outside'), ('\n', 'empty')]
)
def test_bad_mapping_file(tmp_path, text, message):
    (tmp_path / 'map.txt').write_text(text)
    with pytest.raises(ValueError, match=message):
        read_mapping(tmp_path / 'map.txt')


def test_checkpoint_without_22k_head(tmp_path):
    with pytest.raises(ValueError, match='no 22K head'):
        map_head_22k_to_1k(_official_layout(rows=1000)['model'], [0, 1])
