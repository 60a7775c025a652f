"""Seeing through dataset wrappers, built datasets and dataset configs alike.

mmengine/mmdet wrappers hold what they wrap in ``dataset`` (RepeatDataset, ClassBalancedDataset,
MultiImageMixDataset) or ``datasets`` (ConcatDataset); DetDiffusionDataset holds its training set in
``real``. The same names are the config keys, so one walk serves configs and built datasets.
"""
from typing import Any, Iterator, List

# ``real`` first: a DetDiffusionDataset's synthetic sets are additions with roots and files of their own, so
# neither data-root rewrites nor "the training set" lookups look into them.
WRAPPED_KEYS = ('real', 'dataset', 'datasets')


def wrapped_datasets(dataset: Any) -> List[Any]:
    """The datasets (or configs) that ``dataset`` (a dataset or its config) wraps; ``[]`` for a plain one."""
    for key in WRAPPED_KEYS:
        inner = dataset.get(key) if isinstance(dataset, dict) else getattr(dataset, key, None)
        if inner is not None:  # not truthiness: that would take the length of a lazily initialised dataset
            return list(inner) if key == 'datasets' else [inner]
    return []


def iter_datasets(dataset: Any) -> Iterator[Any]:
    """``dataset`` and, depth first, every dataset it wraps (configs or built datasets)."""
    yield dataset
    for inner in wrapped_datasets(dataset):
        yield from iter_datasets(inner)


def base_dataset(dataset: Any) -> Any:
    """The first innermost dataset of ``dataset``: the (real) training set itself under any wrappers."""
    return next(d for d in iter_datasets(dataset) if not wrapped_datasets(d))
