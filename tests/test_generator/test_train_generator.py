"""Generator training on mmengine's Runner: exact resume, EMA, sample grid, export, the CLI."""
import os
import subprocess
import sys

import cv2
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401
from helpers import REPO, TINY_GENERATOR_CONFIG, label_with_alternating_attributes, tiny_generator_cfg
from mmdet_detdiffusion.generator.export import load_exported_generator


class LossRecorder(Hook):
    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses[runner.iter] = outputs['loss'].item()


def run(cfg, max_epochs, resume=False):
    cfg.train_cfg.max_epochs = max_epochs
    cfg.resume = resume
    cfg.default_hooks.checkpoint.interval = 1
    recorder = LossRecorder()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder.losses


def make_cfg(shapes_root, work_dir):
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    cfg = tiny_generator_cfg(shapes_root, str(work_dir))
    for transform in cfg.train_dataloader.dataset.pipeline:  # augmentation draws from the global RNG
        if transform.type == 'RandomFlip':
            transform.prob = 0.0
    return cfg


def test_resume_reproduces_the_next_steps(shapes_root, tmp_path):
    _, straight = run(make_cfg(shapes_root, tmp_path / 'straight'), max_epochs=2)
    run(make_cfg(shapes_root, tmp_path / 'split'), max_epochs=1)
    runner, resumed = run(make_cfg(shapes_root, tmp_path / 'split'), max_epochs=2, resume=True)
    steps_per_epoch = len(straight) // 2
    assert sorted(resumed) == list(range(steps_per_epoch, 2 * steps_per_epoch))  # iterations of epoch 2
    for step, loss in resumed.items():
        assert abs(loss - straight[step]) < 1e-5, (step, loss, straight[step])
    assert int(runner.model.num_train_steps) == 2 * steps_per_epoch


def test_ema_sample_grid_and_export(shapes_root, tmp_path):
    cfg = make_cfg(shapes_root, tmp_path)
    cfg.custom_hooks = [dict(type='EMAHook', momentum=0.5, priority='ABOVE_NORMAL'),
                        dict(type='GeneratorSampleHook', interval=3, num_samples=3, num_inference_steps=2),
                        dict(type='GeneratorExportHook')]
    runner, _ = run(cfg, max_epochs=1)
    grids = sorted(os.listdir(tmp_path / 'samples'))
    assert grids == ['iter_3.png', 'iter_6.png', 'iter_8.png']
    grid = cv2.imread(str(tmp_path / 'samples' / 'iter_8.png'))
    assert grid.shape[0] > 2 * 256 and grid.shape[1] > 3 * 256  # 2 rows (real, generated) x 3 columns
    exported = load_exported_generator(str(tmp_path / 'export'), device='cpu')
    ema = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook').ema_model.module
    for name, value in ema.unet.state_dict().items():  # the export holds the EMA weights
        assert torch.equal(value, exported.unet.state_dict()[name]), name
    assert any(not torch.equal(v, runner.model.unet.state_dict()[k]) for k, v in ema.unet.state_dict().items())


@pytest.mark.slow
def test_train_generator_cli(shapes_root, tmp_path):
    cfg = make_cfg(shapes_root, tmp_path)
    cfg.custom_hooks = [dict(type='GeneratorExportHook')]
    config = tmp_path / 'tiny_generator.py'
    cfg.dump(str(config))
    proc = subprocess.run([sys.executable, 'tools/train_generator.py', str(config), '--work-dir', str(tmp_path),
                           '--cfg-options', 'train_cfg.max_epochs=1'],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'loss_pa' in proc.stdout + proc.stderr
    assert load_exported_generator(str(tmp_path / 'export'), device='cpu').classes == ('circle', 'square', 'triangle')


@pytest.mark.slow
def test_distributed_training_with_torchrun(shapes_root, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    cfg = make_cfg(shapes_root, tmp_path)
    cfg.custom_hooks = [dict(type='GeneratorExportHook')]
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    config = tmp_path / 'tiny_generator_ddp.py'
    cfg.dump(str(config))
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                           '--master_port', str(port), 'tools/train_generator.py', str(config), '--work-dir',
                           str(tmp_path), '--launcher', 'pytorch', '--cfg-options', 'train_cfg.max_epochs=1'],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed training: True' in log
    # 32 images, 4 per rank and step, 2 ranks: 4 steps per epoch
    assert 'Epoch(train) [1][4/4]' in log
    assert os.path.isfile(tmp_path / 'export' / 'unet' / 'config.json')


@pytest.mark.slow
def test_mmdet_own_train_tool_trains_a_generator_config(shapes_root, tmp_path):
    """The config file as it is, through mmdet's tools/train.py (Config.fromfile + Runner.from_cfg): no step of
    ours fills anything in."""
    import mmdet
    train_tool = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    proc = subprocess.run([sys.executable, train_tool, TINY_GENERATOR_CONFIG, '--work-dir', str(tmp_path),
                           '--cfg-options', f'train_dataloader.dataset.data_root={shapes_root}',
                           'train_cfg.max_epochs=1'],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_exported_generator(str(tmp_path / 'export'), device='cpu').classes == ('circle', 'square', 'triangle')
