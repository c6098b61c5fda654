"""configs/model-index.yml: every entry names an existing config, and ``import internimage``
registered them all in mmpretrain's ModelHub as image-classification models."""

from pathlib import Path

import yaml
from mmpretrain.apis import ModelHub

import internimage  # noqa: F401

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def test_every_entry_is_a_registered_existing_config():
    entries = yaml.safe_load((CONFIGS / 'model-index.yml').read_text())['Models']
    assert entries
    for entry in entries:
        config = CONFIGS / entry['Config']
        assert config.is_file(), config
        assert entry['Name'] == config.stem
        assert ModelHub.has(entry['Name'])
        assert [r['Task'] for r in entry['Results']] == ['Image Classification']
