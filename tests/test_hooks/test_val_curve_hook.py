"""ValCurveHook: one point per validation, written at once, and a resumed run redoes the points after its start."""
import json
from types import SimpleNamespace

import pytest

from mmdet_detdiffusion.hooks.val_curve_hook import CURVE_FILE, ValCurveHook, load_curve


def test_each_validation_appends_its_iteration_and_numeric_metrics(tmp_path):
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=0)
    hook = ValCurveHook()
    hook.before_train(runner)
    for iteration, value in ((50, 0.2), (100, 0.35)):
        runner.iter = iteration
        hook.after_val_epoch(runner, {'coco/bbox_mAP': value, 'coco/bbox_mAP_copypaste': '0.2 0.3'})
    points = json.load(open(tmp_path / CURVE_FILE))
    assert points == [dict(iter=50, metrics={'coco/bbox_mAP': 0.2}), dict(iter=100, metrics={'coco/bbox_mAP': 0.35})]


def test_a_resumed_run_keeps_the_points_before_its_start_and_redoes_the_rest(tmp_path):
    (tmp_path / CURVE_FILE).write_text(json.dumps([dict(iter=i, metrics={'m': i / 1000}) for i in (150, 50, 100)]))
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=100)  # resumed from the checkpoint of iteration 100
    hook = ValCurveHook()
    hook.before_train(runner)
    assert [p['iter'] for p in hook.points] == [50, 100]
    runner.iter = 150
    hook.after_val_epoch(runner, {'m': 0.9})
    assert [(p['iter'], p['metrics']['m']) for p in load_curve(str(tmp_path / CURVE_FILE))] == [
        (50, 0.05), (100, 0.1), (150, 0.9)]


def test_a_file_that_is_no_curve_is_refused_with_its_path(tmp_path):
    path = tmp_path / CURVE_FILE
    path.write_text(json.dumps({'iter': 1}))
    with pytest.raises(ValueError, match=f'{CURVE_FILE}: expected a list'):
        load_curve(str(path))
