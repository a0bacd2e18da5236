"""FitFigures: an invisible widget that reports the width of the box it sits in.

A plotly ``FigureWidget`` sizes itself once, when its view is first drawn. A figure
put into a box by a tab switch is drawn before the box has laid it out, so it keeps
plotly's default 700 px: half the dashboard's width (found in the browser test; the
FigureWidget's own window-resize handler never runs in plotly 7's anywidget view).
Placed first among a box's children, this widget measures the box in the page
(a ``ResizeObserver``) and syncs its width in pixels to :attr:`FitFigures.width`;
the dashboard gives its figures that width, now and whenever it changes.

It holds no data and draws nothing.
"""

from __future__ import annotations

import anywidget
import traitlets

__all__ = ["FitFigures"]

_ESM = """
export default {
  render({ model, el }) {
    el.style.display = "none";
    let observed = null;
    const sizes = new ResizeObserver((entries) => {
      const width = Math.floor(entries[0].contentRect.width);
      if (width > 0 && width !== model.get("width")) {
        model.set("width", width);
        model.save_changes();
      }
    });
    const watch = () => {
      const box = el.parentElement;
      if (!box || !el.isConnected) { requestAnimationFrame(watch); return; }
      if (observed !== box) { observed = box; sizes.observe(box); }
    };
    watch();
    return () => sizes.disconnect();
  },
};
"""


class FitFigures(anywidget.AnyWidget):
    """Put it first among a box's children; :attr:`width` is then the box's width."""

    _esm = _ESM
    width = traitlets.Int(0).tag(sync=True)
    """The box's content width in CSS pixels as the page last measured it (0: not yet)."""
