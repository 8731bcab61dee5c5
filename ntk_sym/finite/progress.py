"""Progress of long training runs: a tqdm bar on stderr, silent unless asked.

Book notebooks are compared cell by cell (nbval) on their stdout; the bar never writes there.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int, label: str, enabled: bool = False) -> tqdm:
    """A bar counting `total` steps, labelled `label`; a no-op unless `enabled`."""
    return tqdm(total=total, desc=label, disable=not enabled, file=sys.stderr)
