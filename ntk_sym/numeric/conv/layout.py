"""How a tile's pair arrays are indexed, and how per-point arrays broadcast against them.

Arrays keep the image index LAST, so that the spatial shifts of a Conv move long contiguous
runs of memory. Per-point arrays have shape (*S, t): one value per spatial position and image
((t,) after the readout). Pair arrays hold a kernel between two sets of images:

* outer, full:      (*S, *S', t₁, t₂)   Σ(x_i, x'_j)[p, p'] at every pixel pair;
* outer, diagonal:  (*S, t₁, t₂)        only p = p' (Conv stacks ending in Flatten);
* zipped, full:     (*S, *S', t)        Σ(x_i, x_i)[p, p'], each image with itself;
* zipped, diagonal: (*S, t)             the per-pixel variances Σ(x_i, x_i)[p, p].

After the readout (GlobalAvgPool or Flatten) there are no spatial axes (nd = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Layout:
    """Outer (two image sets) or zipped (each image with itself), full or diagonal, nd axes."""

    zipped: bool
    full: bool
    nd: int

    def pooled(self) -> Layout:
        """The layout after the readout: no spatial axes left."""
        return replace(self, full=True, nd=0)

    def groups(self) -> list[tuple[int, ...]]:
        """The spatial axes of the first image, then (full layouts) of the second."""
        if self.nd == 0:
            return []
        first = tuple(range(self.nd))
        return [first, tuple(range(self.nd, 2 * self.nd))] if self.full else [first]

    def spatial_axes(self) -> tuple[int, ...]:
        return tuple(a for g in self.groups() for a in g)

    def _ones(self) -> tuple[int, ...]:
        return (1,) * self.nd if self.full else ()

    def left(self, v):
        """Per-point array (*S, t₁) of the first image set, broadcastable to the pair arrays."""
        *spatial, t = v.shape
        return v.reshape(*spatial, *self._ones(), *((t,) if self.zipped else (t, 1)))

    def right(self, v):
        """Per-point array (*S', t₂) of the second image set, broadcastable likewise."""
        *spatial, t = v.shape
        if not self.full:
            return v.reshape(*spatial, *((t,) if self.zipped else (1, t)))
        return v.reshape(*self._ones(), *spatial, *((t,) if self.zipped else (1, t)))

    def split(self, idx: tuple) -> tuple[tuple, tuple]:
        """Index arrays of pair entries (as `nonzero` gives) → (indices into the first set's
        per-point arrays, indices into the second's), each (*position, image)."""
        n = self.nd
        first_pos = idx[:n]
        second_pos = idx[n:2 * n] if self.full else first_pos
        images = idx[(2 * n if self.full else n):]
        i1, i2 = (images[0], images[0]) if self.zipped else images
        return (*first_pos, i1), (*second_pos, i2)

    def join(self, first: tuple, second: tuple) -> tuple:
        """The inverse of `split` (diagonal layouts take the position from `first`)."""
        spatial = (*first[:-1], *second[:-1]) if self.full else first[:-1]
        images = (first[-1],) if self.zipped else (first[-1], second[-1])
        return (*spatial, *images)

    def diagonal(self, cov, xp):
        """Σ(x, x)[p, p] from a zipped pair array: (*S, t)."""
        if not self.full or self.nd == 0:
            return cov
        spatial, t = cov.shape[:self.nd], cov.shape[-1]
        size = math.prod(spatial)
        diag = cov.reshape(size, size, t).diagonal(0, 0, 1)  # (t, P)
        return xp.ascontiguousarray(diag.T).reshape(*spatial, t)

    def grid(self, arr):
        """A pair array as the 4-D grid (P₁, P₂, t₁, t₂) (a view; `ntk_sym.numeric.conv.mehler`):
        P₂ = 1 on diagonal layouts (p' = p), t₂ = 1 on zipped ones (j = i)."""
        size = math.prod(arr.shape[:self.nd])
        second = size if self.full and self.nd else 1
        t1 = arr.shape[-1] if self.zipped else arr.shape[-2]
        t2 = 1 if self.zipped else arr.shape[-1]
        return arr.reshape(size, second, t1, t2)

    def points_grid(self, v):
        """A per-point array (…, *S, t) as (…, P, t) (a view where the slicing allows)."""
        lead = v.shape[:v.ndim - self.nd - 1]
        return v.reshape(*lead, math.prod(v.shape[len(lead):-1]), v.shape[-1])

    @property
    def grid_flags(self) -> dict[str, bool]:
        """The flags of `grid` for `ntk_sym.numeric.conv.mehler.grid_series`."""
        return {"diag": not self.full or self.nd == 0, "zipped": self.zipped}

    def pixel_diagonal(self, arr):
        """The entries p = p' of a full pair array: (*batch, P) (a view)."""
        size = math.prod(arr.shape[:self.nd])
        batch = arr.shape[2 * self.nd:]
        return arr.reshape(size, size, *batch).diagonal(0, 0, 1)
