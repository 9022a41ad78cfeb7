"""Colours shared by the plots, so a trunk or a model has the same colour in every chart."""
from __future__ import annotations

GROUP_COLORS = {"backward": "#3b7dd8", "forward": "#2e9e6a", "head": "#d9822b"}
GROUP_LABELS = {"backward": "backward trunk", "forward": "forward trunk", "head": "head"}
SERIES_COLORS = {"dense": "#3b7dd8", "pruned": "#d9534f", "bicubic": "#888888", "kept": "#2e9e6a",
                 "pruned_units": "#d9534f", "lambda": "#8e44ad", "psnr": "#d9822b"}
PLOT_BACKGROUND = "#ffffff"
PLOT_FOREGROUND = "#303030"
