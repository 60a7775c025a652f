"""DetDiffusionDataset: a real detection dataset plus synthetic ones, for training a detector.

In a stock mmdet config::

    train_dataloader = dict(
        dataset=dict(
            _delete_=True, type='DetDiffusionDataset',
            real=dict(type='CocoDataset', data_root='data/coco/', ann_file='annotations/instances_train2017.json',
                      data_prefix=dict(img='train2017/'), filter_cfg=dict(filter_empty_gt=True), pipeline=...),
            synthetic=[dict(type='CocoDataset', data_root='data/coco_synthetic_hard/', ann_file='annotations.json',
                            data_prefix=dict(img='images/'))]),
        # optional: every real sample plus a fresh synthetic draw each epoch, 30% of the epoch
        sampler=dict(type='SyntheticRatioSampler', synthetic_ratio=0.3))

Without the sampler every epoch sees every sample of every set (mmengine's ConcatDataset, real first).
Each sample's ``data_samples.metainfo['synthetic']`` says whether it comes from a synthetic set: a head such as
:class:`~mmdet_detdiffusion.models.SyntheticAwareRetinaHead` can then learn less from it.
A synthetic entry given as a config inherits ``pipeline``, ``metainfo``, ``filter_cfg`` and
``backend_args`` from the real one unless it sets them. Its classes must equal the real ones.
"""
import copy
from typing import List, Sequence, Union

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset, ConcatDataset

from mmdet_detdiffusion.datasets.utils import base_dataset

INHERITED_KEYS = ('pipeline', 'metainfo', 'filter_cfg', 'backend_args')
SYNTHETIC_KEY = 'synthetic'  # in each packed sample's metainfo: True for samples of a synthetic set
DatasetOrCfg = Union[dict, BaseDataset]


def _describe(dataset) -> str:
    return getattr(base_dataset(dataset), 'ann_file', None) or type(dataset).__name__


def _lazy(cfg_or_dataset: DatasetOrCfg, lazy_init: bool) -> DatasetOrCfg:
    # ConcatDataset builds configs without lazy_init: their annotations would load at once even under ours
    if isinstance(cfg_or_dataset, dict):
        return {'lazy_init': lazy_init, **copy.deepcopy(dict(cfg_or_dataset))}
    return cfg_or_dataset


@DATASETS.register_module()
class DetDiffusionDataset(ConcatDataset):
    """The real dataset followed by the synthetic ones (see module docstring); metainfo is the real one's.

    Args:
        real: config or dataset of the real training set (itself possibly a wrapper such as RepeatDataset,
            given as a config: mmengine's ConcatDataset takes built datasets of BaseDataset only).
        synthetic: one or several configs or datasets of synthetic sets (``tools/generate.py`` output).
        lazy_init: defer loading annotations until :meth:`full_init` (mmengine convention).
        ignore_keys: metainfo keys besides ``classes`` the sets may disagree on (mmengine's ConcatDataset).
    """

    def __init__(self, real: DatasetOrCfg, synthetic: Union[DatasetOrCfg, Sequence[DatasetOrCfg]],
                 lazy_init: bool = False, ignore_keys: Union[str, List[str], None] = None):
        synthetic = [synthetic] if isinstance(synthetic, (dict, BaseDataset)) else list(synthetic)
        if not synthetic:
            raise ValueError('DetDiffusionDataset: give at least one synthetic dataset')
        if isinstance(real, dict):
            inherited = {k: v for k, v in base_dataset(real).items() if k in INHERITED_KEYS}
            synthetic = [{**inherited, **s} if isinstance(s, dict) else s for s in synthetic]
        ignore_keys = [ignore_keys] if isinstance(ignore_keys, str) else list(ignore_keys or [])
        # classes are checked here, with an error naming both sets (ConcatDataset's would name neither), and
        # before full_init, whose category check would otherwise report a class mismatch less clearly
        super().__init__([_lazy(d, lazy_init) for d in (real, *synthetic)], lazy_init=True,
                         ignore_keys=['classes', *ignore_keys])
        self._check_classes()
        if not lazy_init:
            self.full_init()

    @property
    def real(self) -> BaseDataset:
        return self.datasets[0]

    @property
    def synthetic(self) -> List[BaseDataset]:
        return self.datasets[1:]

    def __getitem__(self, idx: int) -> dict:
        """The sample of the set ``idx`` falls in, its ``data_samples`` marked ``synthetic`` or not (when the
        pipeline packs one)."""
        data = super().__getitem__(idx)
        dataset_idx, _ = self._get_ori_dataset_idx(idx)
        if isinstance(data, dict) and hasattr(data.get('data_samples'), 'set_metainfo'):
            data['data_samples'].set_metainfo({SYNTHETIC_KEY: dataset_idx > 0})
        return data

    def full_init(self) -> None:
        """Load every dataset and check that the synthetic annotations use the real category names."""
        if self._fully_initialized:
            return
        super().full_init()
        classes = self.metainfo.get('classes', ())
        for dataset in self.synthetic:
            cat_ids = getattr(base_dataset(dataset), 'cat_ids', None)
            if cat_ids is not None and len(cat_ids) != len(classes):
                raise ValueError(f'DetDiffusionDataset: {_describe(dataset)} has categories for {len(cat_ids)} of '
                                 f'the {len(classes)} classes {classes}: its json must use the real category names')

    def _check_classes(self) -> None:
        classes = tuple(self.real.metainfo.get('classes', ()))
        for dataset in self.synthetic:
            other = tuple(dataset.metainfo.get('classes', ()))
            if other != classes:
                raise ValueError(f'DetDiffusionDataset: synthetic dataset {_describe(dataset)} has classes {other}, '
                                 f'the real dataset {_describe(self.real)} has {classes}')
