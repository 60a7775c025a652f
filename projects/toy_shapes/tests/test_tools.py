"""The command-line entry points a user runs first: dataset writer, detector training, the demo."""
import json
import os
import runpy
import subprocess
import sys

import cv2
import pytest

from helpers import PROJECT, REPO
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, ATTRIBUTES
from projects.toy_shapes.toy_shapes.shapes import DEMO_SHAPES


def run(*args, timeout=600):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_tools_show_their_defaults(monkeypatch, capsys):
    for tool, shown in ((os.path.join(REPO, 'tools', 'generate.py'), 'denoising steps (default: 25)'),
                        (os.path.join(PROJECT, 'tools', 'demo.py'), 'for generation (default: 10)'),
                        (os.path.join(REPO, 'tools', 'label_attributes.py'), '(default: ')):
        monkeypatch.setattr(sys, 'argv', [tool, '--help'])
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(tool, run_name='__main__')
        assert exit_info.value.code == 0 and shown in ' '.join(capsys.readouterr().out.split()), tool


def test_demo_refuses_fewer_recall_layouts_than_fidelity_layouts(monkeypatch, capsys, tmp_path):
    tool = os.path.join(PROJECT, 'tools', 'demo.py')
    monkeypatch.setattr(sys, 'argv', [tool, '--work-dir', str(tmp_path), '--fidelity-layouts', '10',
                                      '--recall-layouts', '5'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(tool, run_name='__main__')
    assert exit_info.value.code == 2 and '--recall-layouts' in capsys.readouterr().err
    assert not os.listdir(tmp_path), 'nothing is written before the settings are checked'


def test_study_trains_the_chosen_arms_beside_real_only(monkeypatch):
    tool = os.path.join(PROJECT, 'tools', 'study.py')
    study = runpy.run_path(tool)
    monkeypatch.setattr(sys, 'argv', [tool, '--arms', 'copy_paste', 'instance_paste_easy'])
    args = study['parse_args']()
    # the largest regime prepares the pools of the chosen paste arms only
    assert study['pool_modes'](args, 200) == ['hard', 'easy'] and study['pool_modes'](args, 25) == ['hard']
    regime = study['Regime'](num_real=5, train_ann='annotations/train_5.json', epochs=2, iters_per_epoch=3,
                             pools={'hard': '/pools/hard', 'easy': '/pools/easy'})
    real = study['detector_config']('data/shapes/', 2).train_dataloader.dataset
    arms = study['regime_arms'](args, regime, real)
    assert [arm.name for arm in arms] == ['real only', 'real + CopyPaste', 'real + instance paste, easy pool']
    assert all(arm.max_iters == 6 for arm in arms)
    assert study['hard_over_modes']({arm.name: {'seeds': [0.5, 0.6]} for arm in arms}) == {}
    gain = dict(mean=0.1, low=0.0, high=0.2)
    reports = {5: {'report': {'real only': {}, 'real + CopyPaste': dict(gain=gain)}},
               25: {'report': {'real only': {}, 'real + CopyPaste': dict(gain=gain),
                               'real + hard, added': dict(gain=gain)}}}
    assert list(study['gain_lines'](reports)) == ['real + CopyPaste'], 'the plot holds the arms every regime trained'
    monkeypatch.setattr(sys, 'argv', [tool])  # by default, every arm but the loss switches
    default = [arm.name for arm in study['regime_arms'](study['parse_args'](), regime, real)]
    assert default == ['real only', 'real + hard, added', 'real + CopyPaste', 'real + instance paste',
                       'real + instance paste, easy pool']
    monkeypatch.setattr(sys, 'argv', [tool, '--arms', 'hard_pasted'])
    with pytest.raises(SystemExit):
        study['parse_args']()


@pytest.mark.parametrize('probe', sorted(os.listdir(os.path.join(PROJECT, 'docs', 'probes'))))
def test_probes_import_and_show_their_usage(probe, monkeypatch, capsys):
    path = os.path.join(PROJECT, 'docs', 'probes', probe)
    monkeypatch.setattr(sys, 'argv', [path, '--help'])
    monkeypatch.setattr(sys, 'path', list(sys.path))  # a probe puts its own folders on the path
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(path, run_name='__main__')
    assert exit_info.value.code == 0 and 'usage:' in capsys.readouterr().out


@pytest.mark.slow
def test_make_shapes_dataset_cli(tmp_path):
    proc = run('projects/toy_shapes/tools/make_shapes_dataset.py', str(tmp_path), '--num-train', '3', '--num-val', '2',
               '--size', '64')
    assert f'train: {tmp_path}/annotations/train.json' in proc.stdout
    val = json.load(open(tmp_path / 'annotations' / 'val.json'))
    assert len(val['images']) == 2 and val['info']['colours'] == 'by_class'  # the toy base's colours by default
    assert val['info']['min_contrast'] == DEMO_SHAPES['min_contrast']  # the demo's data by default
    assert min(min(ann['bbox'][2:]) for ann in val['annotations']) >= 2 * DEMO_SHAPES['min_radius'] - 1e-6


@pytest.mark.slow
def test_train_tool_with_data_root(shapes_root, tmp_path):
    run('tools/train.py', 'projects/toy_shapes/configs/detector/retinanet_r18-w16_fpn_1xb8-12e_shapes.py',
        '--work-dir', str(tmp_path), '--data-root', shapes_root, '--max-epochs', '1')
    assert os.path.isfile(tmp_path / 'epoch_1.pth'), 'the checkpoint interval follows the epochs'
    logs = [os.path.join(root, f) for root, _, files in os.walk(tmp_path) for f in files if f.endswith('.log')]
    log = open(logs[0]).read()
    assert 'Epoch(val) [1][1/1]' in log, 'validation ran on the 8 images of the new data root'


@pytest.mark.slow
def test_demo_runs_the_whole_loop_and_reuses_finished_steps(tmp_path):
    args = ('projects/toy_shapes/tools/demo.py', '--work-dir', str(tmp_path), '--num-train', '16', '--num-val', '6',
            '--fidelity-layouts', '4', '--recall-layouts', '6', '--synthetic-layouts', '8', '--detector-epochs', '1',
            '--generator-epochs', '1', '--steps', '2', '--trainability-epochs', '1', '--oracle-epochs', '1',
            '--seeds', '0', '1')
    run(*args, timeout=1200)
    attrs = json.load(open(tmp_path / 'attributes' / 'train_pa_attr.json'))
    assert len(attrs['images']) == 16 and all(a[ATTR_KEY] in ATTRIBUTES for a in attrs['annotations'])
    val_layouts = json.load(open(tmp_path / 'attributes' / 'val_layouts_pa_attr.json'))
    assert len(val_layouts['images']) == 4
    assert all(a[ATTR_KEY] in ATTRIBUTES for a in val_layouts['annotations'])
    assert os.path.isfile(tmp_path / 'detector' / 'epoch_1.pth')
    assert os.path.isfile(tmp_path / 'generator' / 'export' / 'model_index.json')
    recall_layouts = json.load(open(tmp_path / 'attributes' / 'recall_layouts_pa_attr.json'))
    assert len(recall_layouts['images']) == 6
    for name, mode, count in (('val_original_s0', 'original', 4), ('recall_hard_s1', 'hard', 6),
                              ('recall_easy_s1', 'easy', 6), ('train_hard', 'hard', 8),
                              ('base_original', 'original', 4)):
        synthetic = json.load(open(tmp_path / 'data' / name / 'annotations.json'))
        assert len(synthetic['images']) == count and synthetic['detdiffusion']['attr_mode'] == mode
    for arm in ('real_only', 'real_plus_hard', 'real_only_same_epochs'):
        assert os.path.isdir(tmp_path / 'trainability' / arm / 'seed1'), arm
    grid = cv2.imread(str(tmp_path / 'real_vs_generated.png'))
    assert grid is not None and grid.shape[0] > 5 * 256 and grid.shape[1] > 4 * 256  # 5 rows of 4 images
    assert cv2.imread(str(tmp_path / 'trainability.png')) is not None
    report = open(tmp_path / 'report.md').read()
    for row in ('| real |', '| hard |', '| easy |', '| original |', '| base (original) |', '| real only |',
                '| real + hard |', '| real only, same epochs |', '| generator |', '| trainability |'):
        assert row in report, row
    metrics = json.load(open(tmp_path / 'metrics.json'))
    assert set(metrics['yolo_score']) == {'real', 'hard', 'easy', 'original', 'base (original)'}
    assert set(metrics['yolo_score']['real']) == {'mAP', 'AP50', 'AP75'}
    assert 0 <= metrics['yolo_score']['real']['mAP'] <= 1
    scored_hard = json.load(open(tmp_path / 'yolo_score' / 'hard_layouts.json'))
    assert len(scored_hard['images']) == 4, 'the YOLO score of the hard generations is over the fidelity layouts'
    assert set(metrics['box_repair']) == {'real', 'layout', 'head', 'detector', 'fused'}
    assert all(set(metrics['box_repair'][m]) == {'ap75_ratio', 'median_iou_drawn'} for m in ('head', 'fused'))
    head = json.load(open(tmp_path / 'box_repair' / 'head_labels' / 'annotations.json'))
    assert head['detdiffusion']['box_source'] == 'head' and all('layout_bbox' in a for a in head['annotations'])
    assert '| mean of the head\'s and the oracle\'s boxes |' in report
    train = metrics['trainability']
    assert set(train) == {'real only', 'real + hard', 'real + easy', 'real only, same epochs'}  # the default modes
    assert len(train['real + hard']['seeds']) == 2 and train['real + hard']['iters'] == train['real only']['iters']
    assert {'mean', 'low', 'high'} <= set(train['real + hard']['gain'])
    recall = metrics['hard_vs_easy_recall']
    num_boxes = len(recall_layouts['annotations'])
    assert recall['pairs'] == num_boxes and set(recall['per_seed']) == {'0', '1'}
    assert {'recall_hard', 'recall_easy', 'only_easy', 'only_hard', 'p_value'} <= set(recall)
    proc = run(*args)  # a rerun reuses every finished step
    assert 'shapes dataset already in' in proc.stdout and 'recall_hard_s0 set already in' in proc.stdout


@pytest.mark.slow
def test_study_runs_every_regime_and_arm_and_writes_the_metrics_schema(tmp_path):
    args = ('projects/toy_shapes/tools/study.py', '--work-dir', str(tmp_path), '--num-train', '10', '--num-val', '6',
            '--regimes', '5', '10', '--detector-epochs', '1', '--oracle-epochs', '1', '--generator-epochs', '1',
            '--steps', '1', '--trainability-epochs', '1', '--min-iters', '4', '--curve-points', '2',
            '--pool-size', '10', '--fidelity-layouts', '4', '--seeds', '0', '1', '--arms', 'hard_added',
            'hard_added_cls', 'hard_added_objects', 'copy_paste', 'instance_paste', 'instance_paste_easy',
            '--head-min-confidence', '0')  # a 1-epoch head is unsure: keep its masks
    proc = run(*args, timeout=1200)
    metrics = json.load(open(tmp_path / 'metrics.json'))
    assert set(metrics['regimes']) == {'5', '10'}
    for n, regime in metrics['regimes'].items():
        arms = regime['arms']
        compared = {'hard_added', 'hard_added_cls', 'hard_added_objects', 'copy_paste', 'instance_paste'}
        if n == '10':  # the largest regime also pastes from the pool of each chosen instance_paste_<mode> arm
            compared |= {'instance_paste_easy'}
            assert set(regime['hard_over_mode']) == {'easy'}
        assert set(arms) == compared | {'real_only'} and set(regime['gain']) == compared
        assert set(regime['final_gain']) == set(regime['gain'])
        assert all({'mean', 'ci_low', 'ci_high'} == set(gain) for gain in regime['gain'].values())
        for entry in arms.values():
            assert {'best_map_mean', 'best_map_std', 'best_iter_mean', 'seeds', 'images_seen'} <= set(entry)
            assert len(entry['seeds']) == 2 and entry['iters'] == arms['real_only']['iters']
        # 8 real images a batch, plus 2 synthetic ones in the added arm
        assert arms['hard_added']['images_seen'] == arms['real_only']['images_seen'] * 10 // 8
    assert set(metrics['box_repair']) == {'layout', 'head', 'detector', 'fused'}
    assert all({'ap75_ratio', 'median_iou_drawn'} == set(m) for m in metrics['box_repair'].values())
    pool = json.load(open(tmp_path / 'regime_5' / 'pool_hard' / 'annotations.json'))
    assert pool['detdiffusion']['box_source'] == 'head' and pool['detdiffusion']['num_per_image'] == 2
    easy = json.load(open(tmp_path / 'regime_10' / 'pool_easy' / 'annotations.json'))
    assert pool['detdiffusion']['attribute_guidance_scale'] == easy['detdiffusion']['attribute_guidance_scale'] == 2.0
    assert not (tmp_path / 'regime_10' / 'pool_original').exists(), 'no pool for an arm not chosen'
    curve = json.load(open(tmp_path / 'regime_5' / 'curves' / 'real_plus_instance_paste' / 'seed1' / 'val_curve.json'))
    assert [p['iter'] for p in curve] == [2, 4]
    report = open(tmp_path / 'report.md').read()
    assert '| real + CopyPaste |' in report and 'best against best' in report
    for png in ('curves_5.png', 'curves_10.png', 'gain_vs_real_images.png'):
        assert cv2.imread(str(tmp_path / png)) is not None
    proc = run(*args)  # a rerun reuses every finished step and run
    assert 'shapes dataset already in' in proc.stdout and 'pool_hard set already in' in proc.stdout
