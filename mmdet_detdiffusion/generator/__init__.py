"""The generative side of DetDiffusion: layout-conditioned Stable Diffusion with the P.A. loss."""
from mmdet_detdiffusion.generator.model import DetDiffusionGenerator
from mmdet_detdiffusion.generator.perception_head import PerceptionHead
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline, DetDiffusionPipelineOutput
from mmdet_detdiffusion.generator.transforms import (LoadPerceptionAttributes, PackGeneratorInputs,
                                                     RandomPerceptionAttributes)

__all__ = ['DetDiffusionGenerator', 'PerceptionHead', 'DetDiffusionPipeline', 'DetDiffusionPipelineOutput',
           'LoadPerceptionAttributes', 'PackGeneratorInputs', 'RandomPerceptionAttributes']
