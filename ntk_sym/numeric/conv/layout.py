"""How a tile's pair arrays are indexed, and how per-point arrays broadcast against them.

Per-point arrays have shape (t, *S): one value per image and spatial position (or (t,) after
the readout). Pair arrays hold a kernel between two sets of images:

* outer, full:     (t₁, t₂, *S, *S')   Σ(x_i, x'_j)[p, p'] at every pixel pair;
* outer, diagonal: (t₁, t₂, *S)        only p = p' (Conv stacks ending in Flatten);
* zipped, full:    (t, *S, *S)         Σ(x_i, x_i)[p, p'], each image with itself;
* zipped, diagonal:(t, *S)             the per-pixel variances Σ(x_i, x_i)[p, p].

After the readout (GlobalAvgPool or Flatten) there are no spatial axes (nd = 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Layout:
    """Outer (two image sets) or zipped (each image with itself), full or diagonal, nd axes."""

    zipped: bool
    full: bool
    nd: int

    @property
    def lead(self) -> int:
        return 1 if self.zipped else 2

    def pooled(self) -> Layout:
        """The layout after the readout: no spatial axes left."""
        return replace(self, full=True, nd=0)

    def groups(self) -> list[tuple[int, ...]]:
        """The spatial axes of the first image, then (full layouts) of the second."""
        if self.nd == 0:
            return []
        first = tuple(range(self.lead, self.lead + self.nd))
        if not self.full:
            return [first]
        return [first, tuple(range(self.lead + self.nd, self.lead + 2 * self.nd))]

    def spatial_axes(self) -> tuple[int, ...]:
        return tuple(a for g in self.groups() for a in g)

    def left(self, v):
        """Per-point array (t₁, *S) of the first image set, broadcastable to the pair arrays."""
        t, spatial = v.shape[0], v.shape[1:]
        ones = (1,) * self.nd if self.full else ()
        if self.zipped:
            return v.reshape(t, *spatial, *ones)
        return v.reshape(t, 1, *spatial, *ones)

    def right(self, v):
        """Per-point array (t₂, *S') of the second image set, broadcastable likewise."""
        t, spatial = v.shape[0], v.shape[1:]
        ones = (1,) * self.nd if self.full else ()
        if self.zipped:
            return v.reshape(t, *ones, *spatial)
        return v.reshape(1, t, *ones, *spatial)

    def split(self, idx: tuple) -> tuple[tuple, tuple]:
        """Index arrays of pair entries → (indices into the first set's per-point arrays,
        indices into the second's)."""
        n = self.nd
        if self.zipped:
            first = (idx[0], *idx[1:1 + n])
            second = (idx[0], *idx[1 + n:1 + 2 * n]) if self.full else first
            return first, second
        first = (idx[0], *idx[2:2 + n])
        second = (idx[1], *idx[2 + n:2 + 2 * n]) if self.full else (idx[1], *idx[2:2 + n])
        return first, second

    def join(self, first: tuple, second: tuple) -> tuple:
        """The inverse of `split` (diagonal layouts take the position from `first`)."""
        spatial = (*first[1:], *second[1:]) if self.full else first[1:]
        if self.zipped:
            return (first[0], *spatial)
        return (first[0], second[0], *spatial)

    def diagonal(self, cov, xp):
        """Σ(x, x)[p, p] from a zipped pair array: (t, *S)."""
        if not self.full or self.nd == 0:
            return cov
        t = cov.shape[0]
        spatial = cov.shape[1:1 + self.nd]
        size = 1
        for s in spatial:
            size *= s
        return xp.ascontiguousarray(
            cov.reshape(t, size, size).diagonal(0, 1, 2)).reshape(t, *spatial)
