"""Shared fixtures: a small shapes dataset and a tiny detector trained on it (once per session)."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from helpers import SHAPES_SIZE, toy_detector_cfg, train_detector  # noqa: E402


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """A shapes dataset folder (32 train / 8 val images of 128 px); returns its path with a trailing '/'."""
    from mmdet_detdiffusion.datasets.shapes import write_shapes_dataset
    root = str(tmp_path_factory.mktemp('shapes')) + '/'
    write_shapes_dataset(root, num_train=32, num_val=8, size=SHAPES_SIZE, seed=0)
    return root


@pytest.fixture(scope='session')
def trained_retinanet(shapes_root, tmp_path_factory):
    """``(config_path, checkpoint_path)`` of the toy RetinaNet trained for a few epochs on ``shapes_root``."""
    work_dir = str(tmp_path_factory.mktemp('retinanet'))
    cfg = toy_detector_cfg('toy_retinanet_shapes.py', shapes_root, work_dir, max_epochs=12)
    return train_detector(cfg, work_dir)
