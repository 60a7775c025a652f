"""Samplers for real + synthetic training.

- ``SyntheticRatioSampler``: epochs of every real sample plus a fresh draw of synthetic ones.
- ``CheckedGroupMultiSourceSampler``: a fixed real:synthetic count in every batch (iteration-based training),
  mmdet's grouped sampler with a guard against the case where it never yields.
"""
import math
from typing import Iterator, List, Optional, Union

import numpy as np
import torch
from mmdet.datasets.samplers import GroupMultiSourceSampler
from mmdet.registry import DATA_SAMPLERS
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

# mmdet's aspect-ratio groups (GroupMultiSourceSampler): 0 when width < height, else 1
ASPECT_GROUPS = ('portrait: width < height', 'landscape or square: width >= height')


@DATA_SAMPLERS.register_module()
class SyntheticRatioSampler(Sampler):
    """Epochs of all real samples plus synthetic ones making up ``synthetic_ratio`` of the epoch.

    For a DetDiffusionDataset (any ConcatDataset whose first set is the real one). Epoch ``e`` takes the
    ``e``-th stretch of an endless run of shuffled passes over all synthetic samples: consecutive epochs see
    different synthetic samples, none repeats before all were seen, and the draw depends on ``(seed, epoch)``
    only, so a resumed run draws what an uninterrupted one would (mmdet's CustomSampleSizeSampler keeps its
    draw in iterator state instead). The runner calls :meth:`set_epoch`. Shuffling, padding and sharding
    across ranks are mmengine's DefaultSampler's (``round_up=True``).

    Args:
        dataset: the real + synthetic dataset.
        synthetic_ratio: synthetic share of an epoch, in [0, 1): ``round(num_real * r / (1 - r))`` samples.
        shuffle: shuffle each epoch's samples.
        seed: of the draw and the shuffle; ``None``: a seed shared by all ranks.
    """

    def __init__(self, dataset: ConcatDataset, synthetic_ratio: float, shuffle: bool = True,
                 seed: Optional[int] = None):
        if not isinstance(dataset, ConcatDataset):
            raise TypeError('SyntheticRatioSampler: the dataset must be a DetDiffusionDataset (real set first, then '
                            f'the synthetic ones), got {type(dataset).__name__}')
        if not 0 <= synthetic_ratio < 1:
            raise ValueError(f'SyntheticRatioSampler: synthetic_ratio must be in [0, 1), got {synthetic_ratio}')
        self.dataset = dataset
        self.synthetic_ratio = synthetic_ratio
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.rank, self.world_size = get_dist_info()
        self.num_real = len(dataset.datasets[0])
        self.num_pool = len(dataset) - self.num_real
        self.num_synthetic = round(self.num_real * synthetic_ratio / (1 - synthetic_ratio))
        if self.num_synthetic and not self.num_pool:
            raise ValueError(f'SyntheticRatioSampler: synthetic_ratio {synthetic_ratio} but the synthetic datasets '
                             'are empty')
        self.num_samples = math.ceil((self.num_real + self.num_synthetic) / self.world_size)
        self.total_size = self.num_samples * self.world_size

    def synthetic_indices(self) -> List[int]:
        """This epoch's synthetic samples, as dataset indices."""
        if not self.num_synthetic:
            return []
        start = self.epoch * self.num_synthetic
        end = start + self.num_synthetic
        first_pass, end_pass = start // self.num_pool, -(-end // self.num_pool)
        passes = np.concatenate([np.random.default_rng([self.seed, p]).permutation(self.num_pool)
                                 for p in range(first_pass, end_pass)])
        offset = first_pass * self.num_pool
        return (self.num_real + passes[start - offset:end - offset]).tolist()

    def __iter__(self) -> Iterator[int]:
        indices = list(range(self.num_real)) + self.synthetic_indices()
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
        indices = (indices * math.ceil(self.total_size / len(indices)))[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.world_size])

    def __len__(self) -> int:
        """Samples per epoch on this rank."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s synthetic samples and order next (mmengine's loop calls it each epoch)."""
        self.epoch = epoch


@DATA_SAMPLERS.register_module()
class CheckedGroupMultiSourceSampler(GroupMultiSourceSampler):
    """mmdet's ``GroupMultiSourceSampler`` (a fixed real:synthetic count in every batch, each batch from one
    aspect-ratio group) that refuses the settings in which mmdet's sampler never yields.

    mmdet's sampler picks a group by its share of all images, then loops over each source's images of that
    group until it has the source's count: a source without images of a picked group loops forever
    (mmdet #12327). All-square synthetic images are exactly that case beside real images some of which are
    portrait. It also supports two sources only. Both cases raise a ``ValueError`` here, at build time;
    ``MultiSourceSampler`` (no grouping) is the sampler for them. Arguments as mmdet's sampler.
    """

    def __init__(self, dataset: ConcatDataset, batch_size: int, source_ratio: List[Union[int, float]],
                 shuffle: bool = True, seed: Optional[int] = None):
        sources = len(getattr(dataset, 'datasets', ()))
        if sources != 2:
            raise ValueError(f'CheckedGroupMultiSourceSampler: mmdet\'s GroupMultiSourceSampler handles exactly 2 '
                             f'sources (real, synthetic), the dataset has {sources}; use MultiSourceSampler')
        super().__init__(dataset, batch_size, source_ratio, shuffle=shuffle, seed=seed)
        for group, share in enumerate(self.group_ratio):
            for source, count in enumerate(self.num_per_source):
                if share > 0 and count > 0 and not self.group2size_per_source[source][group]:
                    raise ValueError(
                        f'CheckedGroupMultiSourceSampler: source {source} ({len(dataset.datasets[source])} images) '
                        f'has no image in aspect-ratio group {group} ({ASPECT_GROUPS[group]}), which holds '
                        f'{self.group_sizes[group]} images of the other source; mmdet\'s GroupMultiSourceSampler '
                        'would wait forever for one (all-square synthetic images are in one group). Use '
                        'MultiSourceSampler, which keeps the per-batch ratio without grouping.')
