"""PerceptionAttributeHook: label easy/hard attributes with the detector while it trains.

Add to any mmdet config (``custom_imports=dict(imports=['mmdet_detdiffusion'])``)::

    custom_hooks = [dict(type='PerceptionAttributeHook', interval=4, score_thr=0.3, iou_thr=0.5)]

Every ``interval`` epochs (0: never during training) and, if ``after_train``, once training ends, the
hook runs the model being trained over ``ann_file`` (default: the training set) and writes the
attribute file to ``{out_dir}/attributes_epoch_{E}.json`` / ``{out_dir}/attributes.json``
(``out_dir`` defaults to the work dir; when the last epoch was just labeled, ``attributes.json`` is a copy
of its file, not a second run). Under distributed training each rank labels a shard and the
results are gathered once; rank 0 writes. The hook only writes a file: it does not change the
dataset being trained on, so persistent dataloader workers never see stale annotations.
"""
import os
from typing import Optional, Sequence, Tuple

from mmdet.registry import HOOKS
from mmdet.utils import get_test_pipeline_cfg
from mmengine import dist
from mmengine.config import ConfigDict
from mmengine.hooks import Hook

from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, labeling_record, write_labeling
from mmdet_detdiffusion.datasets.utils import base_dataset
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.utils.fileio import atomic_write_bytes


def _train_dataset_files(runner) -> tuple:
    """``(ann_file, img_prefix)`` of the runner's training dataset (through dataset wrappers)."""
    dataset = base_dataset(runner.train_dataloader.dataset)
    ann_file = getattr(dataset, 'ann_file', None)
    img_prefix = getattr(dataset, 'data_prefix', {}).get('img')
    if not ann_file or img_prefix is None:
        raise ValueError('PerceptionAttributeHook: cannot find ann_file / data_prefix.img of the training '
                         f'dataset ({type(dataset).__name__}); set ann_file and img_prefix on the hook')
    return ann_file, img_prefix


@HOOKS.register_module()
class PerceptionAttributeHook(Hook):
    """Label ground-truth boxes easy/hard with the model being trained.

    Args:
        interval: label every ``interval`` training epochs; 0 disables labeling during training.
        after_train: label once more when training ends (writes ``attributes.json``).
        ann_file: COCO json to label; default the training dataset's.
        img_prefix: folder of its images; default the training dataset's ``data_prefix['img']``.
        out_dir: where attribute files go; default the runner's work dir.
        score_thr: gamma. iou_thr: beta.
        match_class: also require the prediction's class (off: the paper's class-agnostic rule).
        pipeline: test pipeline config; default the config's test (else val) dataloader pipeline.
        batch_size / num_workers: of the labeling dataloader.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 0, after_train: bool = True, ann_file: Optional[str] = None,
                 img_prefix: Optional[str] = None, out_dir: Optional[str] = None,
                 score_thr: float = DEFAULT_SCORE_THR, iou_thr: float = DEFAULT_IOU_THR, match_class: bool = False,
                 pipeline: Optional[Sequence[dict]] = None, batch_size: int = 4, num_workers: int = 0):
        if interval < 0:
            raise ValueError(f'PerceptionAttributeHook: interval must be >= 0, got {interval}')
        self.interval = interval
        self.label_after_train = after_train
        self.ann_file = ann_file
        self.img_prefix = img_prefix
        self.out_dir = out_dir
        self.score_thr = score_thr
        self.iou_thr = iou_thr
        self.match_class = match_class
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.num_workers = num_workers
        self._last_labeling: Optional[Tuple[int, str]] = None  # (runner.iter, file) of the latest labeling

    def after_train_epoch(self, runner) -> None:
        if self.interval and self.every_n_epochs(runner, self.interval):
            epochs_done = runner.epoch + 1  # the loop counts the epoch after this hook
            path = self.label(runner, f'attributes_epoch_{epochs_done}.json', epochs_done)
            self._last_labeling = (runner.iter, path)

    def after_train(self, runner) -> None:
        if not self.label_after_train:
            return
        if self._last_labeling is not None and self._last_labeling[0] == runner.iter:
            # the last epoch's labeling used these very weights: copy it rather than run the detector again
            if dist.is_main_process():
                with open(self._last_labeling[1], 'rb') as f:
                    atomic_write_bytes(f.read(), self.out_path(runner, 'attributes.json'))
            dist.barrier()
        else:
            self.label(runner, 'attributes.json', runner.epoch)

    def out_path(self, runner, file_name: str) -> str:
        """Where the hook writes ``file_name``: ``out_dir``, else the work dir."""
        return os.path.join(self.out_dir or runner.work_dir, file_name)

    def label(self, runner, file_name: str, epochs_done: int) -> str:
        """Label the dataset with ``runner.model`` (trained for ``epochs_done`` epochs) and write
        ``{out_dir}/{file_name}``; return its path."""
        ann_file, img_prefix = self.ann_file, self.img_prefix
        if ann_file is None or img_prefix is None:
            default_ann, default_prefix = _train_dataset_files(runner)
            ann_file, img_prefix = ann_file or default_ann, img_prefix or default_prefix
        pipeline = self.pipeline or self._config_pipeline(runner)
        coco = load_coco(ann_file)
        labeler = AttributeLabeler(runner.model, pipeline, self.score_thr, self.iou_thr, self.match_class,
                                   self.batch_size, self.num_workers)
        result = labeler.label(coco, img_prefix, ann_file=ann_file)
        out_path = self.out_path(runner, file_name)
        if dist.is_main_process():
            write_labeling(coco, result, out_path, record=labeling_record(
                labeler, runner.cfg.filename, ann_file,
                weights=f'model in training after {epochs_done} epochs, {runner.iter} iterations'))
        dist.barrier()
        return out_path

    @staticmethod
    def _config_pipeline(runner) -> Sequence[dict]:
        for key in ('test_dataloader', 'val_dataloader'):
            if runner.cfg.get(key):
                return get_test_pipeline_cfg(ConfigDict(test_dataloader=runner.cfg[key]))
        raise ValueError('PerceptionAttributeHook: the config has no test/val dataloader to take the '
                         'inference pipeline from; set pipeline on the hook')
