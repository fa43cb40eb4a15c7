"""Lower NIR's linear maps (Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Flatten) to dense
synapse blocks: each becomes a matrix from its input, flattened in C order (channel, row,
column, as torch flattens), to its output, plus a bias. A chain of them between two populations
composes into one matrix (`compose`), which is what the chip stores.

Conventions, as torch (and so snnTorch, Norse, sinabs) computes them:
- Conv2d: weight (C_out, C_in / groups, kH, kW), stride, padding (ints, pairs, "same" or
  "valid"; zeros outside), dilation, groups; output (C_out, H', W') with
  H' = (H + 2 p - d (k - 1) - 1) // s + 1.
- SumPool2d: the sum of each k window (stride s, zero padding p); AvgPool2d: that sum / (kH kW),
  padding counted (torch's `count_include_pad=True`).
A matrix larger than `MAX_ENTRIES` is refused before it is built.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LINEAR", "MAX_ENTRIES", "LoweringError", "lower", "output_shape"]

LINEAR = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d")
MAX_ENTRIES = 1 << 24     # 128 MB of float64: far more synapses than any chip configuration


class LoweringError(ValueError):
    """The node cannot be lowered; the message says why (the caller adds the node's name)."""


def _pair(value, what: str) -> tuple[int, int]:
    array = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    if array.size == 1:
        array = np.repeat(array, 2)
    if array.size != 2 or (array < 0).any():
        raise LoweringError(f"{what} must be one or two non-negative integers, not {value!r}")
    return int(array[0]), int(array[1])


def _window(node, kind: str, shape):
    """Return (kernel, stride, padding, dilation) pairs of a Conv2d or pooling node."""
    if kind == "Conv2d":
        kernel = tuple(int(k) for k in np.asarray(node.weight).shape[-2:])
        dilation = _pair(node.dilation, "dilation")
        if isinstance(node.padding, str):
            if node.padding not in ("same", "valid"):
                raise LoweringError(f"padding {node.padding!r} is not 'same' or 'valid'")
            if node.padding == "same" and _pair(node.stride, "stride") != (1, 1):
                raise LoweringError("padding 'same' needs stride 1")
            padding = (0, 0) if node.padding == "valid" else \
                tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
            if node.padding == "same" and any(d * (k - 1) % 2 for d, k in zip(dilation, kernel)):
                raise LoweringError("padding 'same' with an even kernel extent is asymmetric")
        else:
            padding = _pair(node.padding, "padding")
    else:
        kernel, dilation = _pair(node.kernel_size, "kernel_size"), (1, 1)
        padding = _pair(node.padding, "padding")
    stride = _pair(node.stride, "stride")
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise LoweringError("kernel, stride and dilation must be at least 1")
    return kernel, stride, padding, dilation


def output_shape(node, kind: str, shape: tuple) -> tuple:
    """The output shape of linear node `node` for an input of `shape`."""
    if kind in ("Affine", "Linear"):
        weight = np.asarray(node.weight)
        if weight.ndim != 2 or int(np.prod(shape)) != weight.shape[1]:
            raise LoweringError(f"weight shape {weight.shape} does not take an input of shape "
                                f"{shape}")
        return (weight.shape[0],)
    if len(shape) != 3:
        raise LoweringError(f"needs a (channels, height, width) input, got shape {shape}")
    kernel, stride, padding, dilation = _window(node, kind, shape)
    spatial = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                    for n, k, s, p, d in zip(shape[1:], kernel, stride, padding, dilation))
    if min(spatial) < 1:
        raise LoweringError(f"the window does not fit an input of shape {shape}")
    channels = np.asarray(node.weight).shape[0] if kind == "Conv2d" else shape[0]
    return (channels, *spatial)


def lower(node, kind: str, shape: tuple):
    """Return (matrix out_size x in_size, bias out_size, output shape) of linear node `node`
    for an input of `shape`."""
    out = output_shape(node, kind, shape)
    n_in, n_out = int(np.prod(shape)), int(np.prod(out))
    if n_in * n_out > MAX_ENTRIES:
        raise LoweringError(f"a dense block of {n_out} x {n_in} synapses is too large to lower "
                            f"(limit {MAX_ENTRIES} entries)")
    if kind in ("Affine", "Linear"):
        weight = np.asarray(node.weight, dtype=np.float64)
        bias = np.asarray(getattr(node, "bias", 0.0) if kind == "Affine" else 0.0, np.float64)
        return weight, np.broadcast_to(bias, (n_out,)).copy(), out
    matrix = np.zeros((n_out, n_in))
    kernel, stride, padding, dilation = _window(node, kind, shape)
    if kind == "Conv2d":
        weight = np.asarray(node.weight, dtype=np.float64)
        groups = int(node.groups)
        if weight.shape[1] * groups != shape[0] or weight.shape[0] % groups:
            raise LoweringError(f"weight shape {weight.shape} with {groups} group(s) does not "
                                f"take {shape[0]} input channels")
        per_group = weight.shape[0] // groups
        pairs = [(co, (co // per_group) * weight.shape[1] + ci, weight[co, ci])
                 for co in range(weight.shape[0]) for ci in range(weight.shape[1])]
        bias = np.repeat(np.asarray(node.bias, dtype=np.float64).ravel()
                         * np.ones(weight.shape[0]), out[1] * out[2])
    else:
        value = 1.0 if kind == "SumPool2d" else 1.0 / (kernel[0] * kernel[1])
        pairs = [(c, c, np.full(kernel, value)) for c in range(shape[0])]
        bias = np.zeros(n_out)
    _fill(matrix, pairs, shape, out, stride, padding, dilation)
    return matrix, bias, out


def _fill(matrix, pairs, shape, out, stride, padding, dilation):
    """matrix[(co, y, x), (ci, iy, ix)] += k[ky, kx] for every (co, ci, k) in `pairs` and every
    kernel tap that lands inside the input (zero padding contributes nothing)."""
    _, height, width = shape
    oy, ox = np.meshgrid(np.arange(out[1]), np.arange(out[2]), indexing="ij")
    for co, ci, kernel in pairs:
        for ky in range(kernel.shape[0]):
            for kx in range(kernel.shape[1]):
                iy = oy * stride[0] - padding[0] + ky * dilation[0]
                ix = ox * stride[1] - padding[1] + kx * dilation[1]
                inside = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
                rows = (co * out[1] + oy[inside]) * out[2] + ox[inside]
                cols = (ci * height + iy[inside]) * width + ix[inside]
                matrix[rows, cols] += kernel[ky, kx]
