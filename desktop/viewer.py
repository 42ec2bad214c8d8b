"""The image viewer: zoom, pan, window/level (in the file's own values), invert
and the Grad-CAM overlay.

Pixels arrive already loaded (see `load_view_image`, run on a worker); the
view only maps the float pixels through the current window to 8-bit, which
is a table look-up on a display-sized copy, cheap enough for a live drag.
Recently shown images stay in a small cache, so stepping back is instant.

Heatmaps: the cam values are drawn as they are (an absolute [0, 1] scale from
core.models.gradcam), never re-scaled to each map's own maximum. In a review queue the
overlay is on for every image; elsewhere it starts hidden only on a confident normal
(core.reading.heatmap_default); H shows it, faintly. (The "Fine map" toggle
was removed: its lattice of dots had no anatomical meaning, see README "Heatmaps".)
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView,
                               QHBoxLayout, QLabel, QSizePolicy, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from desktop.text import breakable, wrapping
from desktop.view_image import (LEVELS, WL_PRESETS, ViewImage, heatmap_rgba, load_view_image,  # noqa: F401
                                preset_window, window_lut)
from desktop.workers import grey_to_qimage, run_in_pool

_ZOOM_PER_DEGREE = 1.015  # one wheel notch (15 degrees) zooms about 1.25x
_WL_PER_PIXEL = 1.0 / 400.0
_CACHE_IMAGES = 8  # display copies kept (2048 px uint16: 8 MB each)
NORMAL_HEATMAP_FACTOR = 0.5  # a confident normal's overlay, when shown, is this much fainter


class ImageView(QGraphicsView):
    """Wheel zooms, left-drag pans, right-drag sets window/level."""

    window_changed = Signal(float, float)  # center, width

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._base = QGraphicsPixmapItem()
        self._base.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._heat = QGraphicsPixmapItem(self._base)
        self._heat.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._base)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor("#111"))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(240, 240)
        self._levels: np.ndarray | None = None
        self._center, self._width = 0.5, 1.0
        self._fit_mode = True  # refit on resize until the reader zooms
        self._wl_anchor: QPointF | None = None
        self._heat_visible = True
        self._inverted = False
        self.image: ViewImage | None = None
        self.key: str | None = None

    # -- content -------------------------------------------------------------

    def show_image(self, view: ViewImage) -> None:
        self.key = view.key
        self.image = view
        self._levels = view.levels
        self._center, self._width = 0.5, 1.0
        if self._inverted:
            self._base.setPixmap(QPixmap.fromImage(grey_to_qimage(window_lut(0.5, 1.0, True)[view.levels])))
        else:
            self._base.setPixmap(QPixmap.fromImage(view.image))
        self._heat.setPixmap(QPixmap.fromImage(view.heatmap) if view.heatmap is not None else QPixmap())
        self._heat.setVisible(self._heat_visible and view.heatmap is not None)
        self.scene().setSceneRect(QRectF(self._base.pixmap().rect()))
        self.fit_to_window()
        self.window_changed.emit(self._center, self._width)

    def clear(self) -> None:
        self.key = None
        self.image = None
        self._levels = None
        self._base.setPixmap(QPixmap())
        self._heat.setPixmap(QPixmap())

    @property
    def has_image(self) -> bool:
        return self._levels is not None

    @property
    def has_heatmap(self) -> bool:
        return not self._heat.pixmap().isNull()

    @property
    def heatmap_shown(self) -> bool:
        return self._heat.isVisible()

    def set_heatmap_visible(self, visible: bool) -> None:
        self._heat_visible = visible
        self._heat.setVisible(visible and self.has_heatmap)

    def set_heatmap(self, heatmap: QImage | None) -> None:
        """Swap the overlay (coarse or fine map) without touching the image or its window."""
        self._heat.setPixmap(QPixmap.fromImage(heatmap) if heatmap is not None else QPixmap())
        self._heat.setVisible(self._heat_visible and heatmap is not None)

    def set_heatmap_opacity(self, opacity: float) -> None:
        self._heat.setOpacity(opacity)

    # -- window / level ------------------------------------------------------

    @property
    def window(self) -> tuple[float, float]:
        return self._center, self._width

    def set_window(self, center: float, width: float) -> None:
        if self._levels is None:
            return
        self._center = float(np.clip(center, 0.0, 1.0))
        self._width = float(np.clip(width, 1.0 / 256, 2.0))
        grey = window_lut(self._center, self._width, self._inverted)[self._levels]
        self._base.setPixmap(QPixmap.fromImage(grey_to_qimage(grey)))
        self.window_changed.emit(self._center, self._width)

    def reset_window(self) -> None:
        self.set_window(0.5, 1.0)

    def apply_preset(self, name: str) -> None:
        if self._levels is not None:
            self.set_window(*preset_window(self._levels, name))

    @property
    def inverted(self) -> bool:
        return self._inverted

    def set_inverted(self, inverted: bool) -> None:
        """Greyscale inversion (bright lungs), kept from image to image until switched off."""
        self._inverted = bool(inverted)
        if self._levels is not None:
            self.set_window(self._center, self._width)

    # -- zoom ----------------------------------------------------------------

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit_to_window(self) -> None:
        self._fit_mode = True
        if not self._base.pixmap().isNull():
            self.fitInView(self._base, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom_by(self, factor: float) -> None:
        self._fit_mode = False
        self.scale(factor, factor)

    def wheelEvent(self, event) -> None:
        if self._base.pixmap().isNull():
            return
        self.zoom_by(_ZOOM_PER_DEGREE ** (event.angleDelta().y() / 8))
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit_to_window()

    # -- mouse: right-drag is window/level, the rest pans (hand drag) --------

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton and self._levels is not None:
            self._wl_anchor = event.position()
            self._wl_start = (self._center, self._width)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._wl_anchor is not None:
            delta = event.position() - self._wl_anchor
            center, width = self._wl_start
            # Horizontal = width (contrast), vertical = level (brightness),
            # as on a reading workstation.
            self.set_window(center - delta.y() * _WL_PER_PIXEL, width + delta.x() * _WL_PER_PIXEL)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton and self._wl_anchor is not None:
            self._wl_anchor = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self.reset_window()
        else:
            self.fit_to_window()
        event.accept()

    def contextMenuEvent(self, event) -> None:
        event.accept()  # the right button belongs to window/level


class HeatmapLegend(QWidget):
    """Colour scale of the Grad-CAM overlay (jet), on the model's absolute evidence scale."""

    # OpenCV's COLORMAP_JET anchors, from 0 to 1.
    _STOPS = ((0.0, "#00007f"), (0.125, "#0000ff"), (0.375, "#00ffff"),
              (0.625, "#ffff00"), (0.875, "#ff0000"), (1.0, "#7f0000"))
    TEXT = ("Red: evidence as strong as in a typical confident pneumonia (scaled by this image's "
            "probability); blue or no colour: little or none. One scale for every image, never "
            "stretched to an image's own maximum. Not a finding on its own.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedHeight(22)
        self.setMinimumWidth(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(self.TEXT)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        bar = self.rect().adjusted(34, 4, -34, -4)
        gradient = QLinearGradient(bar.left(), 0, bar.right(), 0)
        for stop, colour in self._STOPS:
            gradient.setColorAt(stop, QColor(colour))
        painter.fillRect(bar, gradient)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(QRectF(0, 0, 32, self.height()), Qt.AlignmentFlag.AlignCenter, "low")
        painter.drawText(QRectF(self.width() - 32, 0, 32, self.height()), Qt.AlignmentFlag.AlignCenter, "high")


class ViewerPanel(QWidget):
    """The image view plus its controls; loads images on a worker thread."""

    heatmap_toggled = Signal(bool)
    opacity_changed = Signal(float)
    image_shown = Signal(str)  # path key
    load_failed = Signal(str, str)  # path key, message

    def __init__(self, heatmap_visible: bool = True, opacity: float = 0.45, parent=None):
        super().__init__(parent)
        self.view = ImageView(self)
        self.view.setObjectName("imageView")
        self.caption = QLabel("No image", self)
        self.caption.setObjectName("viewerCaption")
        wrapping(self.caption)
        self.heatmap_box = QCheckBox("Heatmap (H)", self)
        self.heatmap_box.setChecked(heatmap_visible)
        self.heatmap_box.setToolTip("On in review queues; elsewhere off by default on confident normals "
                                    "(H shows it faintly)")
        self.invert_box = QCheckBox("Invert (I)", self)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(opacity * 100))
        self.opacity_slider.setMaximumWidth(90)
        self.opacity_slider.setToolTip("Heatmap opacity")
        self.legend = HeatmapLegend(self)
        self.legend_text = QLabel(HeatmapLegend.TEXT, self)
        self.legend_text.setObjectName("heatmapLegendText")
        wrapping(self.legend_text)
        self.preset_combo = QComboBox(self)
        self.preset_combo.addItems(list(WL_PRESETS))
        self.preset_combo.setToolTip("Window presets on this image's own values (1-5)")
        self.preset_combo.activated.connect(lambda i: self.view.apply_preset(self.preset_combo.itemText(i)))
        self.window_label = QLabel(self)
        self.window_label.setToolTip("Window/level in the file's own values: right-drag on the image; "
                                     "right double-click resets")
        fit = QToolButton(self)
        fit.setText("Fit")
        fit.setToolTip("Fit to window (or double-click the image)")
        fit.clicked.connect(self.view.fit_to_window)

        top = QHBoxLayout()
        top.addWidget(self.heatmap_box)
        top.addWidget(self.opacity_slider)
        top.addWidget(self.legend, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.invert_box)
        bottom.addWidget(self.preset_combo)
        bottom.addWidget(self.window_label, 1)
        bottom.addWidget(fit)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)
        layout.addLayout(top)
        layout.addWidget(self.legend_text)
        layout.addLayout(bottom)

        self._opacity = opacity
        self._ai_normal = False  # a confident normal outside a queue: overlay off unless revealed
        self._revealed = False
        self._cache: OrderedDict[str, ViewImage] = OrderedDict()
        self.view.set_heatmap_visible(heatmap_visible)
        self.view.set_heatmap_opacity(opacity)
        self.heatmap_box.toggled.connect(self._on_heatmap_toggled)
        self.invert_box.toggled.connect(self.view.set_inverted)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self.view.window_changed.connect(self._on_window)
        self._request = 0

    def load(self, key: str, cam, caption: str, ai_normal: bool = False) -> None:
        """Show a file; the newest request wins if the reader moves on quickly. `ai_normal`:
        a confident normal outside a review queue, whose overlay starts hidden."""
        self._request += 1
        request = self._request
        self._ai_normal, self._revealed = ai_normal, False
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self._loaded(request, cached, caption)
            return
        self.caption.setText(f"{breakable(caption)}  (loading…)")
        run_in_pool(lambda: load_view_image(key, cam),
                    on_done=lambda view: self._loaded(request, view, caption),
                    on_error=lambda message: self._failed(request, key, message))

    def forget(self, key: str | None = None) -> None:
        """Drop cached display copies: one (its result just changed) or all (another study or model)."""
        if key is None:
            self._cache.clear()
        else:
            self._cache.pop(key, None)

    def _loaded(self, request: int, view: ViewImage, caption: str) -> None:
        if request != self._request:
            return
        self._cache[view.key] = view
        while len(self._cache) > _CACHE_IMAGES:
            self._cache.popitem(last=False)
        self.caption.setText(breakable(caption))
        self.view.show_image(view)
        self._apply_heatmap()
        self.image_shown.emit(view.key)

    def _failed(self, request: int, key: str, message: str) -> None:
        if request != self._request:
            return
        self.view.clear()
        self.caption.setText(f"Cannot show this image: {message}")
        self.load_failed.emit(key, message)

    def clear(self) -> None:
        self._request += 1
        self.view.clear()
        self.caption.setText("No image")

    def toggle_heatmap(self) -> None:
        """H: on a confident normal, show/hide its overlay faintly; otherwise the overlay switch."""
        if self._ai_normal:
            self._revealed = not self._revealed
            self._apply_heatmap()
        else:
            self.heatmap_box.toggle()

    def toggle_invert(self) -> None:
        self.invert_box.toggle()

    def apply_preset(self, index: int) -> None:
        if 0 <= index < self.preset_combo.count():
            self.preset_combo.setCurrentIndex(index)
            self.view.apply_preset(self.preset_combo.itemText(index))

    def _apply_heatmap(self) -> None:
        if self._ai_normal:
            self.view.set_heatmap_visible(self._revealed)
            self.view.set_heatmap_opacity(self._opacity * NORMAL_HEATMAP_FACTOR)
        else:
            self.view.set_heatmap_visible(self.heatmap_box.isChecked())
            self.view.set_heatmap_opacity(self._opacity)

    def _on_heatmap_toggled(self, checked: bool) -> None:
        self._apply_heatmap()
        self.heatmap_toggled.emit(checked)

    def _on_opacity(self, value: int) -> None:
        self._opacity = value / 100.0
        self._apply_heatmap()
        self.opacity_changed.emit(value / 100.0)

    def _on_window(self, center: float, width: float) -> None:
        image = self.view.image
        if image is None:
            self.window_label.setText(f"W {width:.2f}  L {center:.2f}")
            return
        lo, hi = image.value_range
        self.window_label.setText(f"W {width * (hi - lo):.0f}  L {image.to_file_value(center):.0f}")
