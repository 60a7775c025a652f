"""Generator hooks on a wrapped training set: the sample grid reaches the visualizer, the export keeps the
training set's layout filters and refuses classes that are not the training set's, and resuming a finished run
keeps both outputs."""
import os

import cv2
import numpy as np
import pytest
from mmengine.runner import Runner

from helpers import label_with_alternating_attributes, tiny_generator_cfg
from mmdet_detdiffusion.hooks import generator_hooks


def test_hooks_see_through_a_repeat_dataset_and_log_samples_to_the_visualizer(shapes_root, tmp_path, monkeypatch):
    exported_filters = []
    export = generator_hooks.export_generator

    def recorded_export(model, out_dir, data_filters=None):
        exported_filters.append(data_filters)
        return export(model, out_dir, data_filters=data_filters)

    monkeypatch.setattr(generator_hooks, 'export_generator', recorded_export)
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    cfg = tiny_generator_cfg(shapes_root, str(tmp_path))
    cfg.train_dataloader.dataset.update(min_box_area_ratio=0.001, min_object_area_ratio=0.02)
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=1, dataset=cfg.train_dataloader.dataset)
    cfg.train_cfg.max_epochs = 1
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.custom_hooks = [dict(type='GeneratorSampleHook', interval=1000, num_samples=2, num_inference_steps=1),
                        dict(type='GeneratorExportHook')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert exported_filters == [dict(min_box_area_ratio=0.001, min_object_area_ratio=0.02)]
    assert os.path.isdir(tmp_path / 'export')
    logged = os.path.join(runner.log_dir, 'vis_data', 'vis_image', f'generator_samples_{runner.iter}.png')
    assert os.path.isfile(logged)  # what TensorBoard / W&B backends get too
    assert np.array_equal(cv2.imread(logged), cv2.imread(str(tmp_path / 'samples' / f'iter_{runner.iter}.png')))


def test_export_hook_refuses_classes_that_are_not_the_training_sets(shapes_root, tmp_path):
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    cfg = tiny_generator_cfg(shapes_root, str(tmp_path))
    cfg.model.classes = ('circle', 'triangle', 'square')  # the dataset's are circle, square, triangle
    cfg.custom_hooks = [dict(type='GeneratorExportHook')]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r"generator's classes \('circle', 'triangle', 'square'\) differ"):
        runner.train()
    assert not os.path.isdir(tmp_path / 'export')


def test_resuming_a_finished_run_keeps_its_sample_grid_and_export(shapes_root, tmp_path, monkeypatch):
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    cfg = tiny_generator_cfg(shapes_root, str(tmp_path))
    cfg.train_cfg.max_epochs = 1
    cfg.custom_hooks = [dict(type='GeneratorSampleHook', interval=1000, num_samples=2, num_inference_steps=1),
                        dict(type='GeneratorExportHook')]
    runner = Runner.from_cfg(dict(cfg, experiment_name='first'))  # runs within a second share mmengine's default
    runner.train()
    written = {path: os.stat(path).st_mtime_ns for path in (tmp_path / 'samples' / f'iter_{runner.iter}.png',
                                                            tmp_path / 'export' / 'model_index.json')}

    def must_not_run(*args, **kwargs):
        raise AssertionError('a finished run drew or exported again')

    monkeypatch.setattr(generator_hooks, 'export_generator', must_not_run)
    monkeypatch.setattr(generator_hooks.GeneratorSampleHook, 'save_grid', must_not_run)
    cfg.resume = True
    resumed = Runner.from_cfg(dict(cfg, experiment_name='resumed'))
    resumed.train()
    assert resumed.iter == runner.iter
    assert {path: os.stat(path).st_mtime_ns for path in written} == written

    cfg.train_cfg.max_epochs = 2  # resumed to train on: both are written again, at the new iteration
    monkeypatch.undo()
    longer = Runner.from_cfg(dict(cfg, experiment_name='longer'))
    longer.train()
    assert longer.iter == 2 * runner.iter
    assert os.path.isfile(tmp_path / 'samples' / f'iter_{longer.iter}.png')
    index = tmp_path / 'export' / 'model_index.json'
    assert os.stat(index).st_mtime_ns > written[index]
