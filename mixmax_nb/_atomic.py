"""One way to write a Parquet file so that a reader never sees half of it.

The caches, the per-message store and the warehouse's table copies all write through
here: a private (0600) temporary file in the same directory, fsync, then one rename.
A reader, another process included, sees the old file or the new one; a crash leaves
at most a hidden temporary file, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def write_parquet(table: pa.Table, final: Path) -> Path:
    """Write ``table`` to ``final`` atomically (0600); return ``final``."""
    import pyarrow.parquet as pq

    # mkstemp creates the file 0600; it is written and synced through the descriptor
    # it opened (no second open, no chmod: a small part's write is mostly such calls).
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem}-", suffix=".parquet")
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


__all__ = ["write_parquet"]
