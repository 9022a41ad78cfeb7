"""Reusable widgets: plots, image views and small controls that render core values."""
import pyqtgraph as pg

# Frames are numpy (H, W, 3) arrays; plots sit on light panels.
pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="#303030", antialias=False)
