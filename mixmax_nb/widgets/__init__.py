"""ipywidgets forms over the client (added by later issues)."""

__all__: list[str] = []
