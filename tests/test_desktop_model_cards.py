"""Model cards in the GUI: the selector's tooltip, Help > About, and the site calibration entry."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from core.models.registry import ModelCard, ModelEntry
from desktop.main_window import RESEARCH_NOTICE, MainWindow
from desktop.model_choice import fill_combo
from core.models.notes import first_sentence, model_tooltip
from desktop.settings import AppSettings


INTENDED_USE = {
    "use": "Research use only, not a medical device. Second-reader screening of frontal chest radiographs.",
    "population": {"description": "children aged 1-5 years, frontal chest X-rays (Kermany et al. 2018). "
                                  "One hospital.", "age_years": [0, 6]},
    "known_limits": ["Adult chest X-rays are outside its population: AUROC 0.33-0.42 on adults. More text.",
                     "Lateral views are outside its scope."],
}
SITE_METRICS = {"n": 218, "auroc": 0.98828, "sensitivity": 0.97931, "specificity": 0.84931}


def entry(**card_fields) -> ModelEntry:
    card = ModelCard(name="kid_cnn", architecture="custom_cnn", version=2, input_size=224, created="2026-11-01",
                     sha256="0" * 64, **card_fields)
    return ModelEntry(card=card, keras_path=Path("/nonexistent/kid_cnn-v2.keras"), shipped=True)


def test_first_sentence_keeps_abbreviations():
    assert first_sentence(INTENDED_USE["population"]["description"]) == \
        "children aged 1-5 years, frontal chest X-rays (Kermany et al. 2018)."


def test_selector_tooltip_shows_intended_use_limits_and_site_validation(qtbot):
    window = MainWindow(AppSettings(), quiet=True)
    qtbot.addWidget(window)
    described = entry(intended_use=INTENDED_USE, site_validation={"metrics": SITE_METRICS})
    bare = entry()
    fill_combo(window.model_combo, [described, bare])
    window.model_combo.setCurrentIndex(0)
    tip = window.model_combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    assert tip == "\n".join([
        "kid_cnn v2: custom_cnn, 224px, created 2026-11-01",
        "Use: Research use only, not a medical device.",
        "Population: children aged 1-5 years, frontal chest X-rays (Kermany et al. 2018).",
        "Known limit: Adult chest X-rays are outside its population: AUROC 0.33-0.42 on adults.",
        "Known limit: Lateral views are outside its scope.",
        "Site validation (218 images): AUROC 0.988, sensitivity 97.9 %, specificity 84.9 %",
    ])
    assert window.model_combo.toolTip() == tip  # the selector itself, for the chosen model
    window.model_combo.setCurrentIndex(1)
    assert "No intended-use statement" in window.model_combo.toolTip()
    assert "Site validation" not in model_tooltip(bare)


def test_about_shows_the_research_notice_and_the_current_models_use_and_limits(qtbot):
    window = MainWindow(AppSettings(), quiet=True)
    qtbot.addWidget(window)
    window.models.entries = [entry(intended_use=INTENDED_USE)]
    fill_combo(window.model_combo, window.models.entries)
    window.model_combo.setCurrentIndex(0)
    box = window.show_about()
    text = box.text()
    assert RESEARCH_NOTICE in text and "kid_cnn v2" in text
    assert "Second-reader screening of frontal chest radiographs." in text  # the full statement
    for limit in INTENDED_USE["known_limits"]:
        assert limit in text
    box.close()


def test_calibrate_to_my_site_opens_the_wizards_calibration_path(qtbot, monkeypatch):
    import desktop.wizard

    opened = []
    monkeypatch.setattr(desktop.wizard, "open_site_calibration", lambda window: opened.append(window))
    window = MainWindow(AppSettings(), quiet=True)
    qtbot.addWidget(window)
    screening_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Screening")
    action = next(a for a in screening_menu.actions() if a.text() == "Calibrate to my site…")
    action.trigger()
    assert opened == [window]
