"""Wizard page 2: architecture, starting weights and hyper-parameters, with an
estimate of how long the training will take on this machine."""
from __future__ import annotations

import time
import uuid

from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QGroupBox, QLabel, QRadioButton, QSpinBox, QVBoxLayout, QWizardPage)

from core.models.architectures import ARCHITECTURES, INIT_IMAGENET, INIT_RANDOM
from core.training.trainer import TrainConfig
from core.training.dataset import patients_needed
from core.training.lung_focus import CROSS_VALIDATED_WEIGHT, weight_of
from core.formatting import format_duration
from core.training.data_sources import (ARCH_LABELS, INIT_CURRENT, defaults_for, estimate_seconds,
                                    wizard_command)


def imagenet_unavailable_reason() -> str | None:
    """Why ImageNet weights cannot be used here (never downloads), or None."""
    from core.models.architectures import ModelBuildError, imagenet_weights_path

    try:
        imagenet_weights_path()
    except ModelBuildError as exc:
        return str(exc)
    return None


class SettingsPage(QWizardPage):
    def __init__(self, current_model=None, parent=None):
        super().__init__(parent)
        self.setTitle("Model and training settings")
        self.setSubTitle("The defaults suit most cases; the estimate below updates as you change them.")
        self.current_model = current_model  # core.models.registry.ModelEntry or None
        self.data_images = 0  # readable images, from the data page
        self.data_patients = 0

        self.arch_combo = QComboBox(self)
        for arch in ARCHITECTURES:
            self.arch_combo.addItem(ARCH_LABELS[arch], arch)
        self.arch_combo.setCurrentIndex(ARCHITECTURES.index("custom_cnn"))

        self.init_group = QButtonGroup(self)
        self.init_buttons = {
            INIT_CURRENT: QRadioButton("Fine-tune the current model", self),
            INIT_RANDOM: QRadioButton("From scratch (random weights)", self),
            INIT_IMAGENET: QRadioButton("From ImageNet weights (MobileNetV2)", self),
        }
        for init, button in self.init_buttons.items():
            button.setProperty("init", init)
            self.init_group.addButton(button)
        self.imagenet_reason = imagenet_unavailable_reason()
        self._describe_fine_tune()

        self.epochs_spin = QSpinBox(self, minimum=1, maximum=500)
        self.batch_spin = QSpinBox(self, minimum=2, maximum=512, value=32)
        self.lr_spin = QDoubleSpinBox(self, decimals=6, minimum=1e-6, maximum=0.1, singleStep=1e-4)
        self.augment_check = QCheckBox("Augment (small rotations, shifts, zoom, exposure; no flips)", self)
        self.augment_check.setChecked(True)
        self.weighting_check = QCheckBox("Weight classes to balance normal and pneumonia", self)
        self.weighting_check.setChecked(True)
        # The current model's own weight when it was trained this way, else the cross-validated one.
        current_weight = weight_of(self.current_model.card) if self.current_model is not None else 0.0
        self.lung_focus_weight = current_weight or CROSS_VALIDATED_WEIGHT
        self.lung_focus_check = QCheckBox("Keep the evidence on the lungs (lung-focus penalty)", self)
        self.lung_focus_check.setToolTip(
            f"Penalise Grad-CAM evidence outside the estimated lung fields (weight {self.lung_focus_weight:g}). "
            "Maps sit on the lungs and markers or framing count less; the lung fields of every training "
            "image are estimated first. On by default when the current model was trained this way.")
        self.lung_focus_check.setChecked(current_weight > 0)
        self.val_spin = QDoubleSpinBox(self, decimals=2, minimum=0.05, maximum=0.45, singleStep=0.05, value=0.15)
        self.val_spin.setToolTip("Share of patients held out for validation; a patient's images "
                                 "never appear on both sides.")
        self.sensitivity_spin = QDoubleSpinBox(self, decimals=3, minimum=0.5, maximum=1.0,
                                               singleStep=0.01, value=0.97)
        self.sensitivity_spin.setToolTip("The threshold is chosen on validation to reach at least this "
                                         "sensitivity; you can change it on the results page.")
        self.size_spin = QSpinBox(self, minimum=32, maximum=512, singleStep=16, value=224)
        self.size_spin.setToolTip("Images are resized to this square size; smaller trains faster "
                                  "but sees less detail. Shipped models use 224.")

        form = QFormLayout()
        form.addRow("Architecture", self.arch_combo)
        starts = QVBoxLayout()
        for button in self.init_buttons.values():
            starts.addWidget(button)
        form.addRow("Start from", starts)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("", self.augment_check)
        form.addRow("", self.weighting_check)
        form.addRow("Validation fraction", self.val_spin)
        form.addRow("Target sensitivity", self.sensitivity_spin)
        self.advanced_box = QGroupBox("Advanced", self)
        advanced = QFormLayout(self.advanced_box)
        advanced.addRow("Input size (px)", self.size_spin)
        advanced.addRow("", self.lung_focus_check)
        self.estimate_label = QLabel(self)
        self.estimate_label.setWordWrap(True)
        self.problem_label = QLabel(self)
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #b00020;")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced_box)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.problem_label)
        layout.addStretch(1)

        start = INIT_CURRENT if self.init_buttons[INIT_CURRENT].isEnabled() else INIT_RANDOM
        self.init_buttons[start].setChecked(True)
        self._apply_start(start)
        self.init_group.buttonToggled.connect(self._on_start_toggled)
        self.arch_combo.currentIndexChanged.connect(lambda _i: self._arch_changed())
        for spin in (self.epochs_spin, self.batch_spin, self.size_spin, self.val_spin):
            spin.valueChanged.connect(lambda _v: self._update())
        self._update()

    # -- choices -------------------------------------------------------------

    @property
    def arch(self) -> str:
        return self.arch_combo.currentData()

    @property
    def init(self) -> str:
        return self.init_group.checkedButton().property("init")

    def _describe_fine_tune(self) -> None:
        button, model = self.init_buttons[INIT_CURRENT], self.current_model
        if model is None:
            button.setEnabled(False)
            button.setToolTip("No model is selected in the main window.")
        elif model.card.architecture not in ARCHITECTURES:
            button.setEnabled(False)
            button.setToolTip(f"{model.label} is a {model.card.architecture} model, which the "
                              "training code cannot continue.")
        else:
            button.setText(f"Fine-tune the current model ({model.label})")
            button.setToolTip("Continue from its weights; its architecture and input size are kept.")

    def _on_start_toggled(self, button, checked: bool) -> None:
        if checked:
            self._apply_start(button.property("init"))

    def _apply_start(self, init: str) -> None:
        defaults = defaults_for(init)
        self.epochs_spin.setValue(defaults.epochs)
        self.lr_spin.setValue(defaults.lr)
        fine_tune = init == INIT_CURRENT
        if fine_tune:  # core.training.trainer keeps the base model's architecture and size
            card = self.current_model.card
            self.arch_combo.setCurrentIndex(ARCHITECTURES.index(card.architecture))
            self.size_spin.setValue(card.input_size)
        elif init == INIT_IMAGENET:
            self.arch_combo.setCurrentIndex(ARCHITECTURES.index("mobilenet_v2"))
        self.arch_combo.setEnabled(not fine_tune and init != INIT_IMAGENET)
        self.size_spin.setEnabled(not fine_tune)
        self._arch_changed()

    def _arch_changed(self) -> None:
        button = self.init_buttons[INIT_IMAGENET]
        if self.imagenet_reason:
            button.setEnabled(False)
            button.setToolTip(self.imagenet_reason)
        else:
            button.setEnabled(True)
            button.setToolTip("Start from MobileNetV2 weights learnt on ImageNet photographs.")
        self._update()

    # -- estimate and checks ---------------------------------------------------

    def initializePage(self) -> None:
        data = self.wizard().data_page if self.wizard() else None
        if data is not None and data.check is not None:
            self.data_images = len(data.check.readable)
            self.data_patients = data.check.patient_total
        self._update()

    def _update(self) -> None:
        train_images = round(self.data_images * (1.0 - self.val_spin.value()))
        seconds = estimate_seconds(self.arch, train_images, self.size_spin.value(), self.epochs_spin.value())
        if self.data_images:
            self.estimate_label.setText(
                f"<b>Estimated time: {'under a minute' if seconds < 60 else 'about ' + format_duration(seconds)}"
                f"</b> for {self.epochs_spin.value()} "
                f"epochs on about {train_images} training images at {self.size_spin.value()} px. "
                "<i>Estimate only</i>: scaled from measured costs on a 2-core CPU; other work on the "
                "machine makes it slower, a GPU much faster, and early stopping may end it sooner.")
        else:
            self.estimate_label.setText("")
        self.problem_label.setText(self.problem() or "")
        self.completeChanged.emit()

    def problem(self) -> str | None:
        needed = patients_needed(self.val_spin.value())
        if self.data_patients and self.data_patients < needed:
            return (f"Only {self.data_patients} patients: a {self.val_spin.value():.0%} patient-grouped "
                    f"validation split needs at least {needed}. Raise the validation fraction or add images.")
        return None

    def isComplete(self) -> bool:
        return self.problem() is None

    def config(self, folder: str | None, extra_samples: list, study_folder=None) -> TrainConfig:
        """The TrainConfig these settings describe (its own run folder, so runs never collide)."""
        from core import paths

        init = self.init
        if init == INIT_CURRENT:
            init = str(self.current_model.keras_path)
        name = self.current_model.card.name if self.init == INIT_CURRENT else self.arch
        stamp = time.strftime("%Y%m%d-%H%M%S")
        config = TrainConfig(
            folder=folder, arch=self.arch, name=name, epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(), lr=self.lr_spin.value(), val_fraction=self.val_spin.value(),
            init=init, target_sensitivity=self.sensitivity_spin.value(), input_size=self.size_spin.value(),
            augment=self.augment_check.isChecked(), class_weighting=self.weighting_check.isChecked(),
            extra_samples=list(extra_samples),
            lung_focus=self.lung_focus_weight if self.lung_focus_check.isChecked() else 0.0,
            run_dir=str(paths.training_runs_dir() / f"wizard-{name}-{stamp}-{uuid.uuid4().hex[:6]}"))
        config.command = wizard_command(config, study_folder)
        return config
