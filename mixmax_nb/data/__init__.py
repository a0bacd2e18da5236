"""Data: pure shaping and planning over what Mixmax serves, and the private store.

- :mod:`.engagement`  the engagement dataset (messages, recipients' stages, live-feed
                      stats, per-message events) and the pure rules joining them
- :mod:`.planner`     what a pull needs (requests, minutes, cached) before it runs
- :mod:`.store`       the private Parquet store of per-message events (append-only
                      parts; data and coverage committed together)

Nothing here starts a process or talks to Mixmax: the client does, and hands the
records over.
"""

from __future__ import annotations
