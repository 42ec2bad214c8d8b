"""The image viewer: window/level by right-drag, wheel zoom, fit, Grad-CAM overlay."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from desktop.viewer import LEVELS, ViewerPanel, heatmap_rgba, load_view_image, window_lut
from desktop_helpers import source_images, write_dicom


def test_window_lut_maps_the_window_onto_the_full_grey_range():
    lut = window_lut(0.5, 0.2)
    assert lut.shape == (LEVELS,) and lut.dtype == np.uint8
    assert lut[int(0.39 * (LEVELS - 1))] == 0 and lut[int(0.61 * (LEVELS - 1))] == 255
    assert np.all(np.diff(lut.astype(int)) >= 0)


def test_heatmap_is_transparent_where_there_is_no_evidence():
    cam = np.zeros((7, 7), np.float32)
    cam[3, 3] = 1.0
    image = heatmap_rgba(cam, (140, 100))
    assert (image.width(), image.height()) == (100, 140)
    assert image.pixelColor(0, 0).alpha() == 0 and image.pixelColor(50, 70).alpha() > 200


@pytest.fixture
def dicom_view(tmp_path):
    path = write_dicom(source_images("NORMAL", 1)[0], tmp_path / "x.dcm")
    cam = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    return load_view_image(str(path), cam)


def test_right_drag_sets_window_level_and_wheel_zooms(qtbot, dicom_view):
    panel = ViewerPanel(heatmap_visible=True, opacity=0.5)
    qtbot.addWidget(panel)
    panel.resize(600, 600)
    panel.show()
    view = panel.view
    view.show_image(dicom_view)
    assert dicom_view.kind == "dicom" and view.has_heatmap and view.heatmap_shown
    assert view.window == (0.5, 1.0)

    before = view._base.pixmap().toImage()
    viewport = view.viewport()
    start = QPoint(300, 300)
    qtbot.mousePress(viewport, Qt.MouseButton.RightButton, pos=start)
    qtbot.mouseMove(viewport, QPoint(200, 260))  # narrower window, brighter level
    qtbot.mouseRelease(viewport, Qt.MouseButton.RightButton, pos=QPoint(200, 260))
    center, width = view.window
    assert width < 1.0 and center > 0.5
    assert view._base.pixmap().toImage() != before
    assert "W 191 " in panel.window_label.text()  # 0.75 of the 8-bit file range, in its own values

    fitted = view.zoom
    wheel = QWheelEvent(QPointF(300, 300), QPointF(viewport.mapToGlobal(QPoint(300, 300))), QPoint(),
                        QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, wheel)
    assert view.zoom == pytest.approx(fitted * 1.015 ** 15, rel=1e-3)
    view.fit_to_window()
    assert view.zoom == pytest.approx(fitted, rel=1e-3)

    panel.toggle_heatmap()
    assert not view.heatmap_shown
    panel.opacity_slider.setValue(20)
    assert view._heat.opacity() == pytest.approx(0.2)
