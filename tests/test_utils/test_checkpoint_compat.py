"""mmengine checkpoints load with torch's weights_only=True once the package is imported."""
import pickle

import pytest
import torch
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401
from helpers import toy_detector_cfg
from mmdet_detdiffusion.utils.checkpoint_compat import _history_buffer_getattr


def test_runner_checkpoint_resumes_with_weights_only_loading(shapes_root, tmp_path):
    cfg = toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes.py', shapes_root, str(tmp_path), max_epochs=1)
    first = Runner.from_cfg(cfg)
    first.train()
    checkpoint = tmp_path / 'epoch_1.pth'
    raw = torch.load(checkpoint, map_location='cpu')  # weights_only=True is torch's default
    assert 'message_hub' in raw and raw['meta']['epoch'] == 1

    cfg.train_cfg.max_epochs = 2
    cfg.resume = True  # finds epoch_1.pth through last_checkpoint
    second = Runner.from_cfg(cfg)
    second.load_or_resume()
    assert (second.epoch, second.iter) == (1, first.iter)
    for name, value in second.model.state_dict().items():
        assert torch.equal(value, raw['state_dict'][name]), name
    assert second.optim_wrapper.state_dict()['state'], 'optimizer state is resumed too'
    second.train()
    assert second.epoch == 2 and second.iter == 2 * first.iter
    loss_history = second.message_hub.get_scalar('train/loss').data[0]
    assert len(loss_history) == second.iter  # history restored from the checkpoint, then extended


def test_init_detector_and_load_from(trained_retinanet, shapes_root, tmp_path):
    from mmdet.apis import init_detector
    config, checkpoint = trained_retinanet
    model = init_detector(config, checkpoint, device='cpu')
    assert model.dataset_meta['classes'] == ('circle', 'square', 'triangle')
    cfg = toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes.py', shapes_root, str(tmp_path), max_epochs=1,
                           load_from=checkpoint)
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    expected = torch.load(checkpoint)['state_dict']
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_getattr_stand_in_only_reaches_history_buffer_methods():
    from mmengine.logging.history_buffer import HistoryBuffer
    assert _history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    for obj, name in ((HistoryBuffer, '__init__'), (HistoryBuffer, '_statistics_methods'), (torch, 'load')):
        with pytest.raises(pickle.UnpicklingError, match='only public methods'):
            _history_buffer_getattr(obj, name)
