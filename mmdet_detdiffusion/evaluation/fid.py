"""FID between a real and a generated image set, with user-supplied Inception weights.

The network is the TorchScript Inception-v3 of the TensorFlow FID (``inception-2015-12-05.pt``, as
used by StyleGAN2-ADA and clean-fid): it takes uint8 RGB ``(N, 3, H, W)`` images, resizes them to 299
itself and returns 2048-d pool features with ``return_features=True``. Nothing is downloaded: pass the
file's path. Images are first resized to ``size x size`` (bicubic) as the paper's protocol evaluates at
the generation resolution; record every setting with the number, FIDs of different implementations,
sizes or sample counts are not comparable.
"""
import os
from typing import Iterable, List, Tuple

import cv2
import numpy as np
import torch
from scipy import linalg

INCEPTION_HINT = ('the TorchScript Inception-v3 of the TensorFlow FID, "inception-2015-12-05.pt" '
                  '(published with NVlabs/stylegan2-ada-pytorch); nothing is downloaded at run time')


def load_inception(path: str, device: str = 'cpu') -> torch.jit.ScriptModule:
    """Load the Inception feature network from ``path`` (see module docstring)."""
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f'FID needs Inception weights: {path!r} is not a file. '
                                f'Pass the path of {INCEPTION_HINT}.')
    try:
        return torch.jit.load(path, map_location=device).eval()
    except RuntimeError as err:
        raise ValueError(f'{path} is not a TorchScript module ({err.__class__.__name__}); expected {INCEPTION_HINT}') \
            from None


def _batches(paths: List[str], size: int, batch_size: int) -> Iterable[torch.Tensor]:
    for start in range(0, len(paths), batch_size):
        images = []
        for path in paths[start:start + batch_size]:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f'FID: cannot read image {path}')
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)[:, :, ::-1]
            images.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        yield torch.stack(images)


@torch.no_grad()
def inception_features(model, paths: List[str], size: int = 256, batch_size: int = 32) -> np.ndarray:
    """``(N, D)`` float64 features of the images at ``paths``, each resized to ``size x size`` first."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    features = [model(batch.to(device), return_features=True).double().cpu().numpy()
                for batch in _batches(paths, size, batch_size)]
    return np.concatenate(features)


def feature_statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of ``(N, D)`` features."""
    if len(features) < 2:
        raise ValueError(f'FID needs at least 2 images per set, got {len(features)}')
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between two Gaussians: |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))."""
    covmean, _ = linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as the reference code does
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(model, real_paths: List[str], generated_paths: List[str], size: int = 256, batch_size: int = 32) -> float:
    """FID between two image sets (matched sets: the generated images of the real ones' layouts)."""
    real = feature_statistics(inception_features(model, real_paths, size, batch_size))
    generated = feature_statistics(inception_features(model, generated_paths, size, batch_size))
    return frechet_distance(*real, *generated)
