"""The package's one progress mechanism: a tqdm bar on stderr, silent unless asked for.

In a terminal it is tqdm's text bar. In a notebook it is tqdm's widget when ipywidgets is
installed (`tqdm.auto`), else the same text bar; without ipywidgets `tqdm.auto` would warn at
import in every notebook, so it is used only when ipywidgets is there. Nothing is written to
stdout, which the book's notebooks compare under nbval.
"""

from __future__ import annotations

import importlib.util
import sys

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "it", **options) -> tqdm:
    """``tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, unit=unit)``; use it as
    a context manager and call ``update()`` per finished unit (tiles, steps, …)."""
    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, unit=unit, **options)


__all__ = ["progress_bar", "tqdm"]
