"""YOLO score and FID on hand-made cases, and tools/evaluate_fidelity.py on the shapes set."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import REPO, run_generate
from mmdet_detdiffusion.evaluation.fid import fid, frechet_distance, load_inception
from mmdet_detdiffusion.evaluation.yolo_score import YOLOScore

CLASSES = ('circle', 'square')
GT = {1: [(0, [10, 10, 50, 50]), (1, [60, 20, 90, 70])], 2: [(1, [5, 5, 95, 95])]}  # image id: (label, xyxy)


@pytest.fixture(scope='module')
def ann_file(tmp_path_factory):
    images = [dict(id=i, file_name=f'{i}.png', width=100, height=100) for i in GT]
    annotations = [dict(image_id=i, category_id=label + 1, iscrowd=0, bbox=[x1, y1, x2 - x1, y2 - y1],
                        area=(x2 - x1) * (y2 - y1)) for i, objects in GT.items() for label, (x1, y1, x2, y2) in objects]
    for ann_id, ann in enumerate(annotations, start=1):
        ann['id'] = ann_id
    path = tmp_path_factory.mktemp('yolo') / 'layouts.json'
    path.write_text(json.dumps(dict(images=images, annotations=annotations,
                                    categories=[dict(id=1, name='circle'), dict(id=2, name='square')])))
    return str(path)


def score(ann_file, predictions):
    """YOLO score of predictions ``{image id: [(label, xyxy, score), ...]}``."""
    metric = YOLOScore(ann_file=ann_file)
    metric.dataset_meta = dict(classes=CLASSES)
    samples = []
    for image_id in GT:
        preds = predictions.get(image_id, [])
        samples.append(dict(img_id=image_id, ori_shape=(100, 100), pred_instances=dict(
            bboxes=torch.tensor([p[1] for p in preds], dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([p[2] for p in preds], dtype=torch.float32),
            labels=torch.tensor([p[0] for p in preds], dtype=torch.long))))
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def shifted(box, dx):
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


def test_perfect_detections_score_one(ann_file):
    scores = score(ann_file, {i: [(label, box, 0.9) for label, box in objects] for i, objects in GT.items()})
    assert scores == dict(mAP=1.0, AP50=1.0, AP75=1.0, AR100=1.0)


def test_shifted_boxes_score_lower(ann_file):
    small_shift = score(ann_file, {i: [(label, shifted(box, 4), 0.9) for label, box in objects]
                                   for i, objects in GT.items()})
    large_shift = score(ann_file, {i: [(label, shifted(box, 15), 0.9) for label, box in objects]
                                   for i, objects in GT.items()})
    assert small_shift['AP50'] == 1.0 and small_shift['mAP'] < 1.0
    assert large_shift['mAP'] < small_shift['mAP'] and large_shift['AP75'] < 1.0


def test_no_detections_score_zero(ann_file):
    assert score(ann_file, {}) == dict(mAP=0.0, AP50=0.0, AP75=0.0, AR100=0.0)


def test_missed_and_wrong_class_objects_lower_recall(ann_file):
    half = score(ann_file, {1: [(0, GT[1][0][1], 0.9)], 2: [(0, GT[2][0][1], 0.9)]})  # 2nd: wrong class
    assert half['AR100'] == pytest.approx(1 / 2, abs=0.01) and half['mAP'] < 1.0


class StubInception(torch.nn.Module):
    """Stands in for the TorchScript Inception: 12-d features (mean colour per image quadrant)."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(img.float() / 255, 2).flatten(1)


@pytest.fixture(scope='module')
def stub_inception(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('inception') / 'stub.pt')
    torch.jit.script(StubInception()).save(path)
    return path


def write_images(folder, seed, count=12, brightness=0):
    import cv2
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        image = np.clip(rng.integers(0, 200, (40, 40, 3)) + brightness, 0, 255).astype(np.uint8)
        paths.append(os.path.join(folder, f'{i}.png'))
        cv2.imwrite(paths[-1], image)
    return paths


def test_fid_is_zero_for_one_set_and_grows_with_the_gap(stub_inception, tmp_path):
    model = load_inception(stub_inception)
    real = write_images(tmp_path / 'real', seed=0)
    assert fid(model, real, real, size=32) == pytest.approx(0.0, abs=1e-6)
    near = write_images(tmp_path / 'near', seed=1, brightness=10)
    far = write_images(tmp_path / 'far', seed=1, brightness=60)
    assert 0 < fid(model, real, near, size=32) < fid(model, real, far, size=32)


def test_frechet_distance_of_gaussians_with_equal_covariance_is_the_squared_mean_gap():
    sigma = np.diag([1.0, 2.0, 3.0])
    assert frechet_distance(np.zeros(3), sigma, np.array([1.0, 2.0, 0.0]), sigma) == pytest.approx(5.0)


def test_missing_inception_weights_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='inception-2015-12-05.pt'):
        load_inception(str(tmp_path / 'absent.pt'))
    (tmp_path / 'bad.pt').write_bytes(b'not a model')
    with pytest.raises(ValueError, match='not a TorchScript module'):
        load_inception(str(tmp_path / 'bad.pt'))


@pytest.mark.slow
def test_evaluate_fidelity_tool(trained_retinanet, shapes_root, tiny_generator_export, stub_inception, tmp_path):
    config, checkpoint = trained_retinanet
    # an mmdet:: base makes mmengine import pkg_resources, whose deprecation notice the tools hide
    config_with_mmdet_base = tmp_path / 'detector.py'
    config_with_mmdet_base.write_text("_base_ = 'mmdet::_base_/default_runtime.py'\n" + open(config).read())
    synthetic = tmp_path / 'shapes_hard'
    run_generate(tiny_generator_export, shapes_root, synthetic, '--attr-mode', 'hard')
    out = tmp_path / 'fidelity.json'
    result = subprocess.run([sys.executable, 'tools/evaluate_fidelity.py', str(config_with_mmdet_base), checkpoint,
                             '--real-ann-file',
                             shapes_root + 'annotations/train.json', '--real-img-prefix', shapes_root + 'images',
                             '--generated', str(synthetic), '--inception', stub_inception, '--fid-size', '64',
                             '--work-dir', str(tmp_path / 'work'), '--out', str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.load(open(out))
    assert set(metrics) == {'real', 'shapes_hard'} and set(metrics['real']) == {'mAP', 'AP50', 'AP75', 'AR100'}
    assert metrics['real']['mAP'] > metrics['shapes_hard']['mAP']  # an untrained generator draws noise
    assert metrics['shapes_hard']['FID'] > 0
    assert '| real |' in result.stdout and '| shapes_hard |' in result.stdout
    console = result.stdout + result.stderr
    assert 'pkg_resources' not in console and 'Config:' not in console and 'Average Precision' not in console
    assert 'YOLO score and FID of shapes_hard' in result.stdout and len(console.splitlines()) < 15, console
    logs = [os.path.join(root, f) for root, _, files in os.walk(tmp_path / 'work' / 'shapes_hard') for f in files
            if f.endswith('.log')]
    log = open(logs[0]).read()  # the Runner's details are in its log file, one per scored set
    assert 'Config:' in log and 'Average Precision' in log and 'shapes_hard' in log


def test_evaluate_fidelity_names_missing_inputs_and_says_fid_is_skipped(trained_retinanet, shapes_root, tmp_path):
    config, checkpoint = trained_retinanet
    (tmp_path / 'unfinished' / 'manifest').mkdir(parents=True)
    result = subprocess.run([sys.executable, 'tools/evaluate_fidelity.py', config, checkpoint, '--real-ann-file',
                             shapes_root + 'annotations/train.json', '--real-img-prefix', shapes_root + 'images',
                             '--generated', str(tmp_path / 'absent'), str(tmp_path / 'unfinished')],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert f'--generated {tmp_path}/absent does not exist: expected the --out folder of python tools/generate.py' \
        in result.stderr
    assert f'--generated {tmp_path}/unfinished: its tools/generate.py run has not finished' in result.stderr
    assert 'FID: not computed, no --inception given' in result.stdout and 'inception-2015-12-05.pt' in result.stdout
