"""Matplotlib figures embedded in the wizard (FigureCanvasQTAgg).

Each canvas keeps its line artists and only updates their data, then asks
for an idle redraw: cheap enough to call per batch while training runs.
"""
from __future__ import annotations

import warnings

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

NEW_COLOR = "#1f77b4"
CURRENT_COLOR = "#7f7f7f"


def draw_operating_point(ax, metrics: dict | None, color: str, marker: str = "o", label: str | None = None) -> None:
    """A model's point on its ROC with the 95 % intervals of sensitivity (vertical)
    and specificity (horizontal, as 1 - specificity): how sure the point is."""
    if not metrics or metrics.get("sensitivity") is None or metrics.get("specificity") is None:
        return
    x, y = 1.0 - metrics["specificity"], metrics["sensitivity"]
    ci = metrics.get("ci95") or {}
    xerr = yerr = None
    if ci.get("specificity"):
        low, high = ci["specificity"]
        xerr = [[max(0.0, x - (1.0 - high))], [max(0.0, (1.0 - low) - x)]]
    if ci.get("sensitivity"):
        low, high = ci["sensitivity"]
        yerr = [[max(0.0, y - low)], [max(0.0, high - y)]]
    ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt=marker, color=color, ms=7, mec="black",
                ecolor=color, elinewidth=1.2, capsize=3, label=label)


class _Canvas(FigureCanvasQTAgg):
    def draw(self):
        # A page laid out while hidden can be tiny for a moment; the layout
        # engine then warns that it cannot fit the axes. The next draw fits them.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="constrained_layout not applied")
            super().draw()


class TrainingCurves(_Canvas):
    """Loss (per N batches and per epoch) and validation AUROC per epoch."""

    def __init__(self, parent=None):
        figure = Figure(figsize=(6.4, 3.0), layout="constrained")
        super().__init__(figure)
        self.setParent(parent)
        self.loss_ax, self.auroc_ax = figure.subplots(1, 2)
        self.clear()

    def clear(self) -> None:
        self.batch_x, self.batch_loss = [], []
        self.epochs, self.train_loss, self.val_loss, self.val_auroc = [], [], [], []
        for ax in (self.loss_ax, self.auroc_ax):
            ax.clear()
            ax.grid(alpha=0.3)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        self.loss_ax.set_title("Loss", fontsize=10)
        self.auroc_ax.set_title("Validation AUROC", fontsize=10)
        (self._batch_line,) = self.loss_ax.plot([], [], color=NEW_COLOR, alpha=0.35, lw=1,
                                                label="training (running)")
        (self._train_line,) = self.loss_ax.plot([], [], "o-", color=NEW_COLOR, lw=1.5, label="training")
        (self._val_line,) = self.loss_ax.plot([], [], "s-", color="#d62728", lw=1.5, label="validation")
        (self._auroc_line,) = self.auroc_ax.plot([], [], "o-", color="#2ca02c", lw=1.5)
        self.loss_ax.legend(fontsize=8, loc="upper right")
        self.auroc_ax.set_ylim(0.4, 1.01)
        self._set_epoch_range(1.0)  # empty charts start at epoch 0, never below
        self.loss_ax.set_ylim(0.0, 1.0)
        self.draw_idle()

    def _set_epoch_range(self, right: float) -> None:
        for ax in (self.loss_ax, self.auroc_ax):
            ax.set_xlim(0, right + 0.05)

    def add_batch_loss(self, epoch_position: float, loss: float) -> None:
        """`epoch_position`: fractional epochs done (e.g. 1.5 halfway through epoch 2)."""
        self.batch_x.append(epoch_position)
        self.batch_loss.append(loss)
        self._batch_line.set_data(self.batch_x, self.batch_loss)
        self._rescale()

    def add_epoch(self, epoch: int, loss: float | None, val_loss: float | None, auroc: float | None) -> None:
        self.epochs.append(epoch)
        self.train_loss.append(np.nan if loss is None else loss)
        self.val_loss.append(np.nan if val_loss is None else val_loss)
        self.val_auroc.append(np.nan if auroc is None else auroc)
        self._train_line.set_data(self.epochs, self.train_loss)
        self._val_line.set_data(self.epochs, self.val_loss)
        self._auroc_line.set_data(self.epochs, self.val_auroc)
        low = np.nanmin(self.val_auroc) if np.isfinite(self.val_auroc).any() else 0.4
        self.auroc_ax.set_ylim(min(0.4, low - 0.05), 1.01)
        self._rescale()

    def _rescale(self) -> None:
        self._set_epoch_range(max([1.0, *self.batch_x, *self.epochs]))
        self.loss_ax.relim()
        self.loss_ax.autoscale_view(scalex=False)
        self.draw_idle()


class ComparisonFigure(_Canvas):
    """ROC curves of both models, and a confusion matrix for each at its threshold."""

    def __init__(self, parent=None):
        figure = Figure(figsize=(7.5, 2.8), layout="constrained")
        super().__init__(figure)
        self.setParent(parent)
        self.roc_ax, self.new_cm_ax, self.current_cm_ax = figure.subplots(
            1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1]})

    def plot(self, curves: list[tuple], matrices: list[tuple[str, dict | None]],
             title: str = "ROC (validation split)") -> None:
        """curves: (label, color, fpr, tpr, operating point) where the point is None
        or a metrics dict with ci95 (drawn with its 95 % intervals as error bars);
        matrices: (title, binary_metrics dict or None) for the new and current model."""
        ax = self.roc_ax
        ax.clear()
        ax.plot([0, 1], [0, 1], ":", color="#bbbbbb", lw=1)
        for label, color, fpr, tpr, point in curves:
            ax.plot(fpr, tpr, color=color, lw=1.8, label=label)
            draw_operating_point(ax, point, color)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
        for ax, (title, metrics) in zip((self.new_cm_ax, self.current_cm_ax), matrices):
            self._matrix(ax, title, metrics)
        self.draw_idle()

    @staticmethod
    def _matrix(ax, title: str, metrics: dict | None) -> None:
        ax.clear()
        ax.set_title(title, fontsize=9)
        if metrics is None:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
            return
        ax.set_axis_on()
        # Truth down the side, call across, pneumonia first (as in the main window).
        cells = np.array([[metrics["tp"], metrics["fn"]], [metrics["fp"], metrics["tn"]]])
        ax.imshow(cells, cmap="Blues", vmin=0, vmax=max(1, cells.max()))
        for (r, c), value in np.ndenumerate(cells):
            ax.text(c, r, str(value), ha="center", va="center",
                    color="white" if value > cells.max() / 2 else "black", fontsize=11)
        ax.set_xticks([0, 1], ["pneumonia", "normal"], fontsize=8)
        ax.set_yticks([0, 1], ["pneumonia", "normal"], fontsize=8)
        ax.set_xlabel("model call", fontsize=8)
        ax.set_ylabel("truth", fontsize=8)


class CalibrationFigure(_Canvas):
    """A site's ROC for one model: the chosen operating point and the model's own
    one, each with its 95 % intervals, on the same images."""

    def __init__(self, parent=None):
        figure = Figure(figsize=(4.6, 3.4), layout="constrained")
        super().__init__(figure)
        self.setParent(parent)
        self.ax = figure.subplots()

    def plot(self, fpr, tpr, label: str, chosen: dict | None, own: dict | None, own_label: str) -> None:
        ax = self.ax
        ax.clear()
        ax.plot([0, 1], [0, 1], ":", color="#bbbbbb", lw=1)
        ax.plot(fpr, tpr, color=NEW_COLOR, lw=1.8, label=label)
        draw_operating_point(ax, own, CURRENT_COLOR, "s", own_label)
        draw_operating_point(ax, chosen, "#d62728", "o", "chosen for this site")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title("ROC on the site's images (bars: 95% CI)", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
        self.draw_idle()
