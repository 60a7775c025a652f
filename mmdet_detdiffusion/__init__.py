"""mmdet-detdiffusion: DetDiffusion (CVPR 2024) as an OpenMMLab plugin.

Importing the package (``custom_imports=dict(imports=['mmdet_detdiffusion'])``) registers every
component in mmdet's registries and lets mmengine checkpoints load under torch >= 2.6.
"""
# first, so that no mmengine config loaded after importing the package prints setuptools' notice
from mmdet_detdiffusion.utils.quiet import quiet_third_party_warnings

quiet_third_party_warnings()

from mmdet_detdiffusion.utils.checkpoint_compat import register_mmengine_safe_globals  # noqa: E402
from mmdet_detdiffusion.version import __version__  # noqa: E402

register_mmengine_safe_globals()

from mmdet_detdiffusion import datasets, evaluation, generator, hooks, models, transforms  # noqa: E402,F401
from mmdet_detdiffusion.attributes import AttributeLabeler  # noqa: E402
from mmdet_detdiffusion.datasets import (DetDiffusionCocoDataset, DetDiffusionDataset,  # noqa: E402
                                         SyntheticRatioSampler)
from mmdet_detdiffusion.generator import DetDiffusionGenerator, DetDiffusionPipeline  # noqa: E402
from mmdet_detdiffusion.hooks import PerceptionAttributeHook  # noqa: E402
from mmdet_detdiffusion.models import SyntheticAwareRetinaHead  # noqa: E402
from mmdet_detdiffusion.transforms import DetDiffusionGenerate  # noqa: E402

__all__ = ['__version__', 'register_mmengine_safe_globals', 'AttributeLabeler', 'DetDiffusionCocoDataset',
           'DetDiffusionDataset', 'SyntheticRatioSampler', 'DetDiffusionGenerator', 'DetDiffusionPipeline',
           'PerceptionAttributeHook', 'SyntheticAwareRetinaHead', 'DetDiffusionGenerate']
