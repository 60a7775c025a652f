"""The command-line entry points a user runs first: dataset writer, detector training, the demo."""
import json
import os
import subprocess
import sys

import cv2

from helpers import REPO


def run(*args, timeout=600):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_make_shapes_dataset_cli(tmp_path):
    proc = run('tools/make_shapes_dataset.py', str(tmp_path), '--num-train', '3', '--num-val', '2',
               '--size', '64')
    assert f'train: {tmp_path}/annotations/train.json' in proc.stdout
    assert len(json.load(open(tmp_path / 'annotations' / 'val.json'))['images']) == 2


def test_train_tool_with_data_root(shapes_root, tmp_path):
    run('tools/train.py', 'configs/detector/toy_retinanet_shapes.py', '--work-dir', str(tmp_path),
        '--data-root', shapes_root, '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1')
    assert os.path.isfile(tmp_path / 'epoch_1.pth')
    logs = [os.path.join(root, f) for root, _, files in os.walk(tmp_path) for f in files if f.endswith('.log')]
    log = open(logs[0]).read()
    assert 'Epoch(val) [1][1/1]' in log, 'validation ran on the 8 images of the new data root'


def test_demo_runs_the_whole_loop_and_reuses_finished_steps(tmp_path):
    args = ('tools/demo.py', '--work-dir', str(tmp_path), '--num-train', '16', '--num-val', '4',
            '--detector-epochs', '1', '--generator-epochs', '1', '--steps', '2')
    run(*args)
    attrs = json.load(open(tmp_path / 'attributes' / 'train_pa_attr.json'))
    assert len(attrs['images']) == 16 and all(a['pa_attr'] in ('easy', 'hard') for a in attrs['annotations'])
    assert os.path.isfile(tmp_path / 'detector' / 'epoch_1.pth')
    assert os.path.isfile(tmp_path / 'generator' / 'export' / 'model_index.json')
    for mode in ('hard', 'easy', 'original'):
        synthetic = json.load(open(tmp_path / 'data' / f'shapes_synthetic_{mode}' / 'annotations.json'))
        assert len(synthetic['images']) > 0 and synthetic['detdiffusion']['attr_mode'] == mode
        assert os.path.isfile(tmp_path / 'trainability' / mode / 'epoch_1.pth')
    grid = cv2.imread(str(tmp_path / 'real_vs_generated.png'))
    assert grid is not None and grid.shape[0] > 4 * 256 and grid.shape[1] > 6 * 256  # 4 rows of 6 images
    report = open(tmp_path / 'report.md').read()
    for row in ('| real |', '| hard |', '| easy |', '| original |', '| real only |', '| real + hard |',
                '| generator |', '| trainability |'):
        assert row in report, row
    metrics = json.load(open(tmp_path / 'metrics.json'))
    assert set(metrics['yolo_score']) == {'real', 'hard', 'easy', 'original'}
    assert 0 <= metrics['yolo_score']['real']['mAP'] <= 1 and len(metrics['trainability']) == 4
    recall = metrics['hard_vs_easy_recall']
    num_boxes = len(json.load(open(tmp_path / 'attributes' / 'layouts.json'))['annotations'])
    assert recall['pairs'] == num_boxes and 0 <= recall['recall_a'] <= 1 and 0 <= recall['p_value'] <= 1
    assert f'Of the {num_boxes} layout boxes' in report
    proc = run(*args)  # a rerun reuses every finished step
    assert 'shapes dataset already in' in proc.stdout and 'hard set already in' in proc.stdout
