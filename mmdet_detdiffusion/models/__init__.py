from mmdet_detdiffusion.models.synthetic_loss import SyntheticAwareRetinaHead, SyntheticLossMixin

__all__ = ['SyntheticAwareRetinaHead', 'SyntheticLossMixin']
