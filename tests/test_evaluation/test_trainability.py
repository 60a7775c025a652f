"""The trainability protocol on hand-made numbers: iteration matching, schedules in iterations, per-seed
statistics and the paired interval."""
import math
import os

import pytest
from mmengine.config import Config

from mmdet_detdiffusion.evaluation.report import protocol_rows
from mmdet_detdiffusion.evaluation.trainability import (REAL_ONLY, REAL_ONLY_SAME_EPOCHS, Arm, arm_config,
                                                        available_cpus, best_point, curve_report, final_values,
                                                        images_seen, paired_gain, plan_arms, protocol_report, run_arms,
                                                        schedule_in_iterations, select, summarize, threads_per_worker)

SYNTHETIC = dict(hard=dict(type='CocoDataset', data_root='hard/'), easy=dict(type='CocoDataset', data_root='easy/'))


def test_every_arm_gets_the_largest_arms_iterations_and_the_reference_its_own():
    arms = plan_arms(num_real=200, synthetic=SYNTHETIC, synthetic_sizes=dict(hard=100, easy=90), epochs=8,
                     batch_size=8)
    by_name = {arm.name: arm for arm in arms}
    assert list(by_name) == [REAL_ONLY, 'real + hard', 'real + easy', REAL_ONLY_SAME_EPOCHS]
    # 8 epochs of 300 images in batches of 8: 38 steps an epoch (the last one partial), 304 in all
    assert {by_name[n].max_iters for n in (REAL_ONLY, 'real + hard', 'real + easy')} == {304}
    assert by_name[REAL_ONLY].iters_per_epoch == 38
    assert by_name[REAL_ONLY_SAME_EPOCHS].max_iters == 8 * 25 and by_name[REAL_ONLY_SAME_EPOCHS].iters_per_epoch == 25
    assert by_name['real + hard'].synthetic == (SYNTHETIC['hard'],) and by_name[REAL_ONLY].synthetic == ()


def test_epoch_schedules_become_the_same_schedule_in_iterations():
    schedulers = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
                  dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=8, T_max=8),
                  dict(type='MultiStepLR', begin=0, end=6, milestones=[4, 5])]  # by_epoch defaults to True
    converted = schedule_in_iterations(schedulers, iters_per_epoch=38)
    assert converted[0] == schedulers[0]
    assert converted[1] == dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=304, T_max=304)
    assert converted[2]['milestones'] == [152, 190] and converted[2]['end'] == 228 and not converted[2]['by_epoch']


def test_arm_config_is_iteration_based_with_the_synthetic_sets_added():
    cfg = Config(dict(train_dataloader=dict(batch_size=8, sampler=dict(type='DefaultSampler', shuffle=True),
                                            dataset=dict(type='CocoDataset', data_root='real/')),
                      train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=8),
                      param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=8, T_max=8)],
                      default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1))))
    arm = plan_arms(200, SYNTHETIC, dict(hard=100, easy=90), 8, 8)[1]
    out = arm_config(cfg, arm, seed=2, work_dir='w')
    assert out.train_cfg == dict(type='IterBasedTrainLoop', max_iters=304, val_interval=304)
    assert out.train_dataloader.sampler.type == 'InfiniteSampler'
    assert out.train_dataloader.dataset.type == 'DetDiffusionDataset'
    assert out.train_dataloader.dataset.real.data_root == 'real/'
    assert out.train_dataloader.dataset.synthetic == [SYNTHETIC['hard']]
    assert out.param_scheduler[0].T_max == 304 and out.randomness.seed == 2 and out.work_dir == 'w'
    assert cfg.train_dataloader.dataset.type == 'CocoDataset', 'the input config is left as it was'


def test_summary_and_paired_interval_on_hand_made_numbers():
    assert summarize([0.5, 0.6, 0.7]) == dict(mean=pytest.approx(0.6), std=pytest.approx(0.1),
                                              seeds=[0.5, 0.6, 0.7])
    # differences 0.02, 0.04, 0.03: mean 0.03, sd 0.01, sem 0.01 / sqrt(3); t(0.975, 2) = 4.302653
    gain = paired_gain([0.52, 0.44, 0.53], [0.50, 0.40, 0.50])
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert gain['mean'] == pytest.approx(0.03)
    assert gain['low'] == pytest.approx(0.03 - half, abs=1e-6) and gain['high'] == pytest.approx(0.03 + half, abs=1e-6)
    assert gain['low'] > 0 and gain['half_width'] == pytest.approx(half, abs=1e-6)
    # the same mean with seed-to-seed scatter: the interval crosses 0
    noisy = paired_gain([0.60, 0.40, 0.53], [0.50, 0.40, 0.54])
    assert noisy['mean'] == pytest.approx(0.03) and noisy['low'] < 0 < noisy['high']
    with pytest.raises(ValueError, match='at least 2 seeds'):
        paired_gain([0.5], [0.4])


def test_protocol_report_pairs_each_mixed_arm_with_the_matched_real_only_arm():
    arms = plan_arms(200, SYNTHETIC, dict(hard=100, easy=90), 8, 8)
    results = {REAL_ONLY: [0.50, 0.40, 0.50], 'real + hard': [0.52, 0.44, 0.53], 'real + easy': [0.4, 0.3, 0.4],
               REAL_ONLY_SAME_EPOCHS: [0.45, 0.35, 0.45]}
    report = protocol_report(results, arms)
    assert report['real + hard']['gain']['low'] > 0 and report['real + hard']['iters'] == 304
    assert report['real + easy']['gain']['mean'] == pytest.approx(-0.1)
    assert 'gain' not in report[REAL_ONLY] and 'gain' not in report[REAL_ONLY_SAME_EPOCHS]
    assert report[REAL_ONLY_SAME_EPOCHS]['iters'] == 200


def test_runs_with_several_metrics_are_reported_per_metric():
    arms = plan_arms(200, SYNTHETIC, dict(hard=100, easy=90), 8, 8)
    seen = []

    def train(cfg):  # a stand-in for training: the metrics follow the arm and the seed
        seen.append((cfg.train_cfg.max_iters, cfg.randomness.seed))
        return dict(mAP=0.4 + 0.01 * cfg.randomness.seed + 0.05 * ('hard' in cfg.work_dir),
                    rare_AP=0.1 + 0.02 * cfg.randomness.seed)

    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='CocoDataset')), default_hooks=dict(),
                      param_scheduler=[]))
    results = run_arms(cfg, arms, [0, 1, 2], 'work', train)
    assert seen[:3] == [(304, 0), (304, 1), (304, 2)] and seen[-1] == (200, 2)
    report = protocol_report(select(results, 'mAP'), arms)
    assert report['real + hard']['gain']['mean'] == pytest.approx(0.05)
    assert select(results, 'rare_AP')[REAL_ONLY] == pytest.approx([0.1, 0.12, 0.14])


def stand_in_training(cfg) -> dict:
    """A picklable stand-in for training (module level): metrics from the arm and the seed, and the threads."""
    import torch
    return dict(mAP=0.4 + 0.01 * cfg.randomness.seed + 0.05 * ('hard' in cfg.work_dir),
                threads=torch.get_num_threads())


def test_runs_in_worker_processes_give_the_same_results_in_seed_order(monkeypatch):
    arms = plan_arms(200, SYNTHETIC, dict(hard=100, easy=90), 8, 8)
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='CocoDataset')), default_hooks=dict(),
                      param_scheduler=[]))
    ended = []
    assert 1 <= available_cpus() <= os.cpu_count()
    monkeypatch.setattr('mmdet_detdiffusion.evaluation.trainability.available_cpus', lambda: 4)
    parallel = run_arms(cfg, arms, [0, 1, 2], 'work', stand_in_training, lambda *run: ended.append(run), workers=2)
    serial = run_arms(cfg, arms, [0, 1, 2], 'work', stand_in_training)
    assert select(parallel, 'mAP') == select(serial, 'mAP')
    assert select(parallel, 'mAP')['real + hard'] == pytest.approx([0.45, 0.46, 0.47])
    assert all(metrics['threads'] == 2 for runs in parallel.values() for metrics in runs), 'an equal share of 4'
    assert threads_per_worker(3) == 1 and threads_per_worker(8) == 1, 'at least one thread each'
    assert sorted((arm.name, seed) for arm, seed, _ in ended) == sorted((a.name, s) for a in arms for s in (0, 1, 2))


def test_protocol_rows_word_each_arm_of_a_protocol_report():
    arms = plan_arms(200, SYNTHETIC, dict(hard=100, easy=90), 8, 8)
    results = {REAL_ONLY: [0.50, 0.40, 0.50], 'real + hard': [0.52, 0.44, 0.53], 'real + easy': [0.4, 0.3, 0.4],
               REAL_ONLY_SAME_EPOCHS: [0.45, 0.35, 0.45]}
    rows = {row[0]: row for row in protocol_rows(protocol_report(results, arms))}
    assert rows[REAL_ONLY] == [REAL_ONLY, '304', '0.467 ± 0.058', '0.500, 0.400, 0.500', '-']
    assert rows['real + hard'][4].endswith('a gain beyond seed noise')


def base_cfg() -> Config:
    return Config(dict(train_dataloader=dict(batch_size=8, sampler=dict(type='DefaultSampler', shuffle=True),
                                             dataset=dict(type='CocoDataset', data_root='real/')),
                       train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=8), param_scheduler=[],
                       default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1))))


def test_an_added_arm_keeps_the_real_images_of_every_batch_and_adds_synthetic_ones():
    arm = Arm('real + hard, added', (SYNTHETIC['hard'],), max_iters=400, iters_per_epoch=25, synthetic_per_batch=2)
    out = arm_config(base_cfg(), arm, seed=0, work_dir='w')
    assert out.train_dataloader.batch_size == 10
    assert out.train_dataloader.sampler == dict(type='MultiSourceSampler', batch_size=10, source_ratio=[8, 2],
                                                shuffle=True)
    assert out.train_dataloader.dataset.synthetic == [SYNTHETIC['hard']]
    assert images_seen(arm, 8) == 4000 and images_seen(Arm(REAL_ONLY, (), 400, 25), 8) == 3200
    with pytest.raises(ValueError, match='one synthetic set, got 2'):
        arm_config(base_cfg(), Arm('two', (SYNTHETIC['hard'], SYNTHETIC['easy']), 400, 25, synthetic_per_batch=2),
                   0, 'w')


def test_an_arm_may_bring_its_own_real_set_and_a_curve_validates_along_the_way():
    pasted = dict(type='MultiImageMixDataset', dataset=dict(type='CocoDataset', data_root='real/'), pipeline=[])
    out = arm_config(base_cfg(), Arm('paste', (), 400, 25, real_dataset=pasted), seed=0, work_dir='w', val_interval=50)
    assert out.train_dataloader.dataset == pasted and out.train_dataloader.sampler.type == 'InfiniteSampler'
    assert out.train_cfg.val_interval == 50 and out.default_hooks.checkpoint.interval == 50
    assert out.custom_hooks == [dict(type='ValCurveHook')]
    assert 'custom_hooks' not in arm_config(base_cfg(), Arm(REAL_ONLY, (), 400, 25), 0, 'w')
    head = arm_config(base_cfg(), Arm('boxes', (), 400, 25, cfg_options={'model.bbox_head.type': 'MyHead'}), 0, 'w')
    assert head.model.bbox_head.type == 'MyHead'


def curve(*values: float, key: str = 'mAP') -> list:
    """A hand-made learning curve: one point every 100 iterations."""
    return [dict(iter=100 * (i + 1), metrics={key: v}) for i, v in enumerate(values)]


def test_the_best_point_of_a_curve_is_its_earliest_maximum_and_a_missing_metric_counts_zero():
    assert best_point(curve(0.2, 0.5, 0.5, 0.4), 'mAP') == (0.5, 200)
    assert best_point([dict(iter=100, metrics={}), dict(iter=200, metrics={'mAP': 0.1})], 'mAP') == (0.1, 200)
    with pytest.raises(ValueError, match='no point'):
        best_point([], 'mAP')


def test_best_against_best_pairs_each_seeds_best_with_real_onlys_best():
    arms = [Arm(REAL_ONLY, (), 400, 25),
            Arm('real + hard, added', (SYNTHETIC['hard'],), 400, 25, synthetic_per_batch=2)]
    # real only peaks early and decays; the added arm peaks later, higher by 0.03, 0.02 and 0.04
    curves = {REAL_ONLY: [curve(0.50, 0.45, 0.4, 0.4), curve(0.3, 0.40, 0.38, 0.38), curve(0.2, 0.45, 0.44, 0.3)],
              'real + hard, added': [curve(0.4, 0.45, 0.53, 0.5), curve(0.3, 0.3, 0.3, 0.42),
                                     curve(0.1, 0.2, 0.3, 0.49)]}
    report = curve_report(curves, arms, 'mAP', batch_size=8)
    added, real = report['real + hard, added'], report[REAL_ONLY]
    assert real['seeds'] == [0.5, 0.4, 0.45] and real['best_iters'] == [100, 200, 200] and 'gain' not in real
    assert added['seeds'] == [0.53, 0.42, 0.49] and added['best_iters'] == [300, 400, 400]
    assert added['best_iter_mean'] == pytest.approx(1100 / 3) and added['images_seen'] == 4000
    assert added['gain']['mean'] == pytest.approx(0.03) and added['gain']['low'] > 0
    # the last points tell another story (0.10, 0.04, 0.19 better)
    final = protocol_report(final_values(curves, 'mAP'), arms)
    assert final[REAL_ONLY]['seeds'] == [0.4, 0.38, 0.3] and final['real + hard, added']['gain']['mean'] == \
        pytest.approx(0.11)
