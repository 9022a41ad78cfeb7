"""Nothing the window shows is cut off at its default size (it fits a 1280×800 screen): Export's Details column
beside rows of every format, the score plot's threshold label at either end of the ratio range (offscreen)."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.export_job import ExportOutcome, QualityBaseline  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.panels.export_results import DETAILS_COLUMN, DETAILS_MIN_WIDTH, PSNR_COLUMN, fit_widths  # noqa: E402
from app.widgets.score_plot import ScoreDistribution  # noqa: E402
from core.deploy import ExportCheck  # noqa: E402
from core.deploy.measure import FileProof  # noqa: E402
from core.deploy.onnx_export import VERIFY_SHAPES  # noqa: E402
from core.models.basicvsr import BasicVSR  # noqa: E402
from core.models.spec import dense_spec  # noqa: E402
from core.ssl.scores import compute_scores  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)


def every_format(folder: Path) -> list[ExportOutcome]:
    """An export of every format as the app lists it: the ONNX files verified at three shapes (the widest rows)."""
    base = QualityBaseline(24, "demo", "GT", 20.12, dense=24.93, pruned=17.21)
    proof = FileProof(412.0, 17.2, "GT", 24, (64, 112))
    onnx = "basicvsr, opset 18, dynamic frames/height/width"
    int8 = dict(precision="int8", shapes=VERIFY_SHAPES, psnr_drop=0.12, max_drop=0.3,
                kept_float=("backward.0.in", "forward.0.in"))
    checks = {
        "model": ExportCheck(folder / "m.pth", "model", 0.0, 1e-4, "reloaded and compared", shapes=((3, 32, 32),)),
        "onnx": ExportCheck(folder / "m.onnx", "onnx", 3.1e-5, 1e-3, onnx, shapes=VERIFY_SHAPES),
        "onnx_int8": ExportCheck(folder / "m.int8.onnx", "onnx", 0.04, None, f"{onnx}, drop vs float", **int8),
        "onnx_int8_half_flow": ExportCheck(folder / "m.int8.half-flow.onnx", "onnx", 0.06, None,
                                           f"{onnx}, flow at half resolution, drop vs float", flow="half", **int8),
        "h5": ExportCheck(folder / "m.h5", "h5", None, None, "report"),
    }
    return [ExportOutcome(key, check, proof if key != "h5" else None, base) for key, check in checks.items()]


def test_export_details_column_lies_inside_the_table(qtbot, window: MainWindow, tmp_path: Path) -> None:
    assert window.width() <= 1280 and window.height() <= 800
    window.show_step("export")
    panel = window.panels["export"]
    panel.results_view.show(every_format(tmp_path), None, "a test")
    QApplication.processEvents()
    tree, header = panel.results, panel.results.header()
    left = header.sectionViewportPosition(DETAILS_COLUMN)
    assert 0 <= left and left + DETAILS_MIN_WIDTH <= tree.viewport().width(), (left, tree.viewport().width())
    assert tree.horizontalScrollBar().maximum() == 0          # nothing behind the right edge
    assert header.sectionSize(PSNR_COLUMN) >= tree.sizeHintForColumn(PSNR_COLUMN)     # the figures stay whole
    row = tree.topLevelItem(3)                                # a long file name, elided: whole in its tooltip
    assert row.toolTip(0) == row.text(0) == "ONNX int8, flow at half resolution"


def test_train_settings_scroll_only_vertically_at_1280_by_800(qtbot, window: MainWindow) -> None:
    assert window.width() <= 1280 and window.height() <= 800
    window.show_step("train")
    QApplication.processEvents()
    column = window.panels["train"].settings_column
    assert column.horizontalScrollBar().maximum() == 0 and not column.horizontalScrollBar().isVisible()
    assert column.viewport().width() >= column.widget().minimumSizeHint().width()     # nothing clipped either


def test_fit_widths_narrows_only_the_elidable_columns_to_one_cap() -> None:
    assert fit_widths([100, 50, 300], 450, 20, (0, 2)) == [100, 50, 300]        # room enough: as wanted
    assert fit_widths([100, 50, 300], 300, 20, (0, 2)) == [100, 50, 150]        # the widest gives way
    assert fit_widths([100, 50, 300], 150, 20, (0, 2)) == [50, 50, 50]
    assert fit_widths([100, 50, 300], 60, 20, (0, 2)) == [20, 50, 20]          # never below the least


def test_threshold_label_beside_its_line_and_inside_the_plot(qtbot) -> None:
    torch.manual_seed(0)
    scores = compute_scores(BasicVSR(dense_spec("basicvsr", 16, 2)), "l1")
    plot = ScoreDistribution()
    qtbot.addWidget(plot)
    plot.resize(410, 160)                       # about its size in the Prune step at the window's default size
    plot.show()
    plot.set_scores(scores)
    flat = np.sort(scores.flat)
    view = plot.plotItem.vb
    for threshold in (flat[0], flat[len(flat) // 2], flat[-1]):      # both ends of the ratio range, the middle
        plot.set_threshold(float(threshold))
        QApplication.processEvents()
        label = plot._line.label
        box = label.mapRectToScene(label.boundingRect())
        x = view.mapViewToScene(plot._line.pos()).x()
        assert box.right() < x - 3 or box.left() > x + 3, (threshold, x, box)      # a gap from the line
        assert view.sceneBoundingRect().contains(box), (threshold, box)
