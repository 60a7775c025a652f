"""The 2-D sin-cos position encoding shared by location tokens and the toy U-Net's attention queries.

A point ``(x, y)`` (normalised, 0..1) is encoded in ``dim`` channels: ``sin(w x), cos(w x)`` for
``dim / 4`` angular frequencies ``w``, then the same for ``y`` (half the channels per axis, as in
MAE/ViT). The frequencies are geometric from ``pi`` (half a period across the image) to ``pi * cells / 2``
(a period of two cells of a ``cells``-wide grid), so the coarsest channel orders the whole image and the
finest separates neighbouring cells.

Because a location token and an image position use the same channels, "this pixel lies at or beside
that corner" is a dot product of their encodings, and so is "this pixel is right of / below that corner"
up to a linear map: the Fourier coefficients of a step at ``x1`` are linear in ``sin(w x1), cos(w x1)``.
"""
import torch


def axis_frequencies(count: int, cells: int) -> torch.Tensor:
    """``(count,)`` angular frequencies (radians per unit of normalised coordinate), ``pi .. pi * cells / 2``."""
    if count < 1 or cells < 2:
        raise ValueError(f'axis_frequencies needs count >= 1 and cells >= 2, got count={count}, cells={cells}')
    exponents = torch.arange(count, dtype=torch.float64) / max(count - 1, 1)
    return torch.pi * (cells / 2) ** exponents


def sincos_2d_features(x: torch.Tensor, y: torch.Tensor, dim: int, cells: int) -> torch.Tensor:
    """``(N, dim)`` encodings of the points ``(x[i], y[i])`` (normalised coordinates, shape ``(N,)``)."""
    if dim % 4:
        raise ValueError(f'sin-cos 2-D encoding needs an embedding size divisible by 4, got {dim}')
    omega = axis_frequencies(dim // 4, cells).to(x.device)
    parts = []
    for coord in (x, y):
        angles = coord.double()[:, None] * omega[None]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1).to(x.dtype if x.is_floating_point() else torch.float32)


def grid_centres(rows: int, cols: int) -> tuple:
    """``(x, y)``, each ``(rows * cols,)``: normalised centres of a ``rows x cols`` grid's cells, row-major."""
    ys, xs = torch.meshgrid((torch.arange(rows) + 0.5) / rows, (torch.arange(cols) + 0.5) / cols, indexing='ij')
    return xs.reshape(-1), ys.reshape(-1)


def sincos_2d(bins: int, dim: int) -> torch.Tensor:
    """``(bins * bins, dim)`` encodings of the points of a ``bins x bins`` location grid (spacing
    ``1 / (bins - 1)``, corners included); row ``y * bins + x`` encodes point (x, y), the order of the
    location tokens (:class:`~mmdet_detdiffusion.layout.prompt.LocationGrid`)."""
    ys, xs = torch.meshgrid(torch.arange(bins) / (bins - 1), torch.arange(bins) / (bins - 1), indexing='ij')
    return sincos_2d_features(xs.reshape(-1), ys.reshape(-1), dim=dim, cells=bins).float()
