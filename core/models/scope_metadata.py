"""Scope check, first part: what an image's DICOM attributes say (modality, body part, view, the
patient's age against the population the model card states). Files without them pass here and are
judged on their content (core.models.scope)."""
from __future__ import annotations

import re
from datetime import date

NOT_CHEST = "not a chest X-ray"
LATERAL = "lateral view"

XRAY_MODALITIES = {"CR", "DX"}
# X-ray modalities that are not plain chest radiographs: said as "not a chest X-ray".
OTHER_XRAY_MODALITIES = {"MG", "XA", "RF", "PX", "IO", "RG", "DF", "DS"}
CHEST_BODY_PARTS = {"CHEST", "THORAX", "LUNG", "LUNGS", "TORSO"}
COLOUR_PHOTOMETRIC = ("RGB", "YBR", "PALETTE")
LATERAL_VIEWS = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD", "LLAT", "RLAT"}
# DX-family storage classes that are never chest films: intra-oral (.1.1.3) and mammography (.1.1.2),
# each "for presentation" and "for processing" (.x and .x.1).
NON_CHEST_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.3")
# Words in the study/series description or protocol that name another examination. Chest words win,
# so "chest and abdomen" passes; a description that names nothing decides nothing.
DESCRIPTION_KEYWORDS = ("StudyDescription", "SeriesDescription", "ProtocolName")
CHEST_WORDS = re.compile(r"\b(CHEST|THORAX|THORACIC|LUNGS?|TORAX|BABYGRAM|CXR)\b")
NON_CHEST_WORDS = re.compile(
    r"\b(PANO\w*|OPG|OPT|ORTHOPANTOMO\w*|DENTAL|BITEWING|CEPH\w*|SKULL|SINUS\w*|MANDIBLE|HAND|WRIST|"
    r"FINGERS?|ELBOW|SHOULDER|HUMERUS|FOREARM|PELVIS|HIPS?|FEMUR|KNEE|TIBIA|ANKLE|FOOT|FEET|SPINE|"
    r"LUMBAR|CERVICAL|ABDOMEN|KUB|MAMMO\w*|BREAST)\b")
MAX_PLAUSIBLE_AGE = 110  # older than this, a birth date or age is a placeholder, not a patient


def not_an_xray(modality: str) -> str:
    return f"not an X-ray ({modality})"


def age_reason(age_years: float) -> str:
    shown = f"{age_years:.0f}" if age_years >= 2 else f"{age_years:.1f}".rstrip("0").rstrip(".")
    return f"patient age {shown} y: outside the model's population"


def population_of(card) -> dict:
    """The card's stated population, e.g. {"age_years": [1, 5]} ({} when none)."""
    intended = getattr(card, "intended_use", None) or {}
    population = intended.get("population") if isinstance(intended, dict) else None
    return population if isinstance(population, dict) else {}


def metadata_reason(meta: dict | None, population: dict | None = None) -> str:
    """The short reason an image's metadata puts it out of scope, or "" (missing attributes pass)."""
    meta = meta or {}
    modality = _text(meta.get("Modality"))
    if modality and modality not in XRAY_MODALITIES:
        return NOT_CHEST if modality in OTHER_XRAY_MODALITIES else not_an_xray(modality)
    photometric = _text(meta.get("PhotometricInterpretation"))
    if photometric.startswith(COLOUR_PHOTOMETRIC):  # radiographs are grey; colour is a photo or a map
        return not_an_xray("colour image")
    body_part = _text(meta.get("BodyPartExamined"))
    if body_part and body_part not in CHEST_BODY_PARTS:
        return NOT_CHEST
    if _text(meta.get("SOPClassUID")).startswith(NON_CHEST_SOP_CLASSES):
        return NOT_CHEST
    if _describes_another_examination(meta):
        return NOT_CHEST
    image_type = _text(meta.get("ImageType"))
    if "LOCALIZER" in image_type.split("\\"):  # a CT/MR scout stored as an image
        return NOT_CHEST
    if _text(meta.get("ViewPosition")) in LATERAL_VIEWS:
        return LATERAL
    age_range = (population or {}).get("age_years")
    age = patient_age_years(meta)
    if age is not None and age <= MAX_PLAUSIBLE_AGE and _valid_range(age_range):
        low, high = float(age_range[0]), float(age_range[1])
        # The range is in whole years: a "5" limit covers 5 y 11 mo.
        if age < low or age >= high + 1:
            return age_reason(age)
    return ""


def _describes_another_examination(meta: dict) -> bool:
    words = " ".join(_text(meta.get(k)) for k in DESCRIPTION_KEYWORDS)
    return bool(NON_CHEST_WORDS.search(words)) and not CHEST_WORDS.search(words)


def _text(value) -> str:
    return str(value).strip().upper() if value is not None else ""


def _valid_range(age_range) -> bool:
    try:
        return len(age_range) == 2 and float(age_range[0]) <= float(age_range[1])
    except (TypeError, ValueError):
        return False


_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0, "": 1.0}


def patient_age_years(meta: dict) -> float | None:
    """Age from PatientAge ("054Y", "006M", "003W", "010D"), else BirthDate with StudyDate."""
    match = _AGE.match(str(meta.get("PatientAge") or ""))
    if match:
        return int(match.group(1)) * _UNIT_YEARS[match.group(2).upper()]
    born, studied = _dicom_date(meta.get("PatientBirthDate")), _dicom_date(meta.get("StudyDate"))
    if born and studied and studied >= born:
        return (studied - born).days / 365.25
    return None


def _dicom_date(value) -> date | None:
    text = str(value or "").strip().replace("-", "").replace(".", "")
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
