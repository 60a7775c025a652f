"""DetDiffusionDataset: a real detection dataset plus synthetic ones, for training a detector.

In a stock mmdet config::

    train_dataloader = dict(dataset=dict(
        _delete_=True, type='DetDiffusionDataset',
        real=dict(type='CocoDataset', data_root='data/coco/', ann_file='annotations/instances_train2017.json',
                  data_prefix=dict(img='train2017/'), filter_cfg=dict(filter_empty_gt=True), pipeline=...),
        synthetic=[dict(type='CocoDataset', data_root='data/coco_synthetic_hard/', ann_file='annotations.json',
                        data_prefix=dict(img='images/'))],
        synthetic_ratio=None))        # None: concatenate; 0.3: 30% of each epoch is synthetic

A synthetic entry given as a config inherits ``pipeline``, ``metainfo``, ``filter_cfg`` and
``backend_args`` from the real one unless it sets them. Its classes must equal the real ones.
"""
import copy
import random
from typing import List, Optional, Sequence, Tuple, Union

from mmdet.registry import DATASETS
from torch.utils.data import Dataset

INHERITED_KEYS = ('pipeline', 'metainfo', 'filter_cfg', 'backend_args')


def _describe(dataset) -> str:
    return getattr(dataset, 'ann_file', None) or type(dataset).__name__


def _build(cfg_or_dataset, lazy_init: bool):
    if isinstance(cfg_or_dataset, dict):
        cfg = copy.deepcopy(dict(cfg_or_dataset))
        cfg.setdefault('lazy_init', lazy_init)
        return DATASETS.build(cfg)
    return cfg_or_dataset


@DATASETS.register_module()
class DetDiffusionDataset(Dataset):
    """Real + synthetic samples (see module docstring); metainfo is the real dataset's.

    Args:
        real: config or dataset of the real training set.
        synthetic: one or several configs or datasets of synthetic sets (``tools/generate.py`` output).
        synthetic_ratio: share of synthetic samples in an epoch, in [0, 1); ``None`` uses every sample of
            every set. With a ratio, ``round(len(real) * r / (1 - r))`` synthetic samples are drawn once,
            without repeats while the synthetic sets last, by ``seed``.
        seed: seed of that draw.
        lazy_init: defer loading annotations until :meth:`full_init` (mmengine convention).
    """

    def __init__(self, real: Union[dict, Dataset], synthetic: Union[dict, Dataset, Sequence[Union[dict, Dataset]]],
                 synthetic_ratio: Optional[float] = None, seed: int = 0, lazy_init: bool = False):
        if synthetic_ratio is not None and not 0 <= synthetic_ratio < 1:
            raise ValueError(f'synthetic_ratio must be in [0, 1) or None, got {synthetic_ratio}')
        synthetic = [synthetic] if isinstance(synthetic, (dict, Dataset)) else list(synthetic)
        if not synthetic:
            raise ValueError('DetDiffusionDataset: give at least one synthetic dataset')
        if isinstance(real, dict):
            synthetic = [{**{k: real[k] for k in INHERITED_KEYS if k in real}, **s} if isinstance(s, dict) else s
                         for s in synthetic]
        self.real = _build(real, lazy_init)
        self.synthetic = [_build(s, lazy_init) for s in synthetic]
        self.synthetic_ratio = synthetic_ratio
        self.seed = seed
        self._index: List[Tuple[int, int]] = []  # (dataset number: 0 real, 1.. synthetic, sample index)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.real.metainfo)

    def full_init(self) -> None:
        """Load every dataset, check their classes, and fix the epoch's sample list."""
        if self._fully_initialized:
            return
        for dataset in (self.real, *self.synthetic):
            if hasattr(dataset, 'full_init'):
                dataset.full_init()
        self._check_classes()
        self._index = [(0, i) for i in range(len(self.real))]
        pool = [(d, i) for d, dataset in enumerate(self.synthetic, start=1) for i in range(len(dataset))]
        if self.synthetic_ratio is None:
            self._index += pool
        elif pool:
            wanted = round(len(self.real) * self.synthetic_ratio / (1 - self.synthetic_ratio))
            rng = random.Random(self.seed)
            drawn = []
            while len(drawn) < wanted:
                drawn += rng.sample(pool, len(pool))
            self._index += drawn[:wanted]
        self._fully_initialized = True

    def _check_classes(self) -> None:
        classes = tuple(self.real.metainfo.get('classes', ()))
        for dataset in self.synthetic:
            other = tuple(dataset.metainfo.get('classes', ()))
            if other != classes:
                raise ValueError(f'DetDiffusionDataset: synthetic dataset {_describe(dataset)} has classes {other}, '
                                 f'the real dataset {_describe(self.real)} has {classes}')
            cat_ids = getattr(dataset, 'cat_ids', None)
            if cat_ids is not None and len(cat_ids) != len(classes):
                raise ValueError(f'DetDiffusionDataset: {_describe(dataset)} has categories for {len(cat_ids)} of '
                                 f'the {len(classes)} classes {classes}: its json must use the real category names')

    def _locate(self, idx: int):
        if not self._fully_initialized:
            self.full_init()
        dataset_number, sample = self._index[idx]
        return (self.real if dataset_number == 0 else self.synthetic[dataset_number - 1]), sample

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._index)

    def __getitem__(self, idx: int) -> dict:
        dataset, sample = self._locate(idx)
        return dataset[sample]

    def get_data_info(self, idx: int) -> dict:
        """The annotation dict of sample ``idx`` (mmdet's aspect-ratio grouping reads width/height)."""
        dataset, sample = self._locate(idx)
        return dataset.get_data_info(sample)

    def num_synthetic(self) -> int:
        """Synthetic samples in an epoch."""
        return len(self) - len(self.real)
