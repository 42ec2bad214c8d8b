"""Where the tests' real chest films come from: one path definition for the suite.

The full data (the 5,216 training films, the full-resolution sample) is used
when it is present: `$PNEUMOSCAN_DATA`, else `<repo>/../shared/data` (the
folder `pneumoscan-cli data fetch` fills by default). Otherwise the tests run
on the small set the repository ships in tests/data (414 training films, the
first 206 of each class exactly as in the full set, and four full-resolution
films; see tests/data/README.md), so a bare clone runs every test instead of
skipping them.

Tests ask for films by position: `films("NORMAL", count, offset)`. The first
films are real ones in file-name order, as in the full set. A test that asks
for more than the small set holds gets, after the real films, *made* films:
copies of the shipped ones with other exposure and grain (no geometry change). A made film keeps its source's patient in its name
(`IM-0115-0001` -> `IM-0115-000101`, `person1000_bacteria_2931` ->
`person1000_bacteria_293101`), so patient-grouped splits keep it beside its
source. On the small set, films past the real ones are therefore not new
patients: a "held-out" slice there shares patients with the films before it.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DATA = REPO_ROOT / "tests" / "data"
CLASSES = ("NORMAL", "PNEUMONIA")

# The counts a test can hold each training folder to (never counted from the folder itself).
FULL_TRAIN_COUNTS = {"NORMAL": 1341, "PNEUMONIA": 3875}
SHIPPED_TRAIN_COUNTS = {"NORMAL": 207, "PNEUMONIA": 207}


def full_data_root() -> Path:
    """`$PNEUMOSCAN_DATA`, else `<repo>/../shared/data`."""
    override = os.environ.get("PNEUMOSCAN_DATA")
    return Path(override).expanduser().resolve() if override else REPO_ROOT.parent / "shared" / "data"


def _has_training_part(root: Path) -> bool:
    return (root / "chest_xray" / "train").is_dir()


def _choose_root() -> Path:
    root = full_data_root()
    if _has_training_part(root):
        return root
    if os.environ.get("PNEUMOSCAN_DATA"):
        # Asked for by name: falling back to the small set would hide a wrong path.
        raise RuntimeError(f"PNEUMOSCAN_DATA={root} has no chest_xray/train folder "
                           "(run `pneumoscan-cli data fetch --dest` there, or unset it)")
    return SHIPPED_DATA


DATA = _choose_root()
FULL = DATA != SHIPPED_DATA
TRAIN = DATA / "chest_xray" / "train"
TRAIN_COUNTS = FULL_TRAIN_COUNTS if FULL else SHIPPED_TRAIN_COUNTS
# `data fetch` makes no full-resolution sample: the shipped one stands in for it.
FULLRES = DATA / "fullres_sample" if (DATA / "fullres_sample").is_dir() else SHIPPED_DATA / "fullres_sample"


def describe() -> str:
    """One line for the pytest header: which films this run uses."""
    kind = "full data" if FULL else "the small shipped set (tests/data)"
    return f"chest films: {kind} at {DATA}"


def real_films(label: str) -> list[Path]:
    return sorted((TRAIN / label).glob("*.jpeg"))


_made_dir: Path | None = None
_made: dict[str, list[Path]] = {label: [] for label in CLASSES}


def _made_folder() -> Path:
    global _made_dir
    if _made_dir is None:
        _made_dir = Path(tempfile.mkdtemp(prefix="pneumoscan-made-films-"))
        atexit.register(shutil.rmtree, _made_dir, True)
    return _made_dir


def _make_variant(source: Path, target: Path, round_: int, index: int) -> None:
    """A copy with other exposure and grain, stored like the shipped films (224 px, 3-channel JPEG q75).

    Exposure only, no geometry: the scope check's layout test judges framing and turning.
    """
    import cv2
    import numpy as np

    rng = np.random.default_rng([round_, index])
    grey = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    exposed = grey ** rng.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05) + rng.uniform(-0.015, 0.015)
    grain = rng.normal(0, 2.0, grey.shape)
    pixels = np.clip(exposed * 255 + grain, 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if not cv2.imwrite(str(target), bgr, [cv2.IMWRITE_JPEG_QUALITY, 75]):
        raise RuntimeError(f"could not write a made film at {target}")


def _made_films(label: str, count: int) -> list[Path]:
    """The first `count` made films of `label`: round 1 over every real film, then round 2, ..."""
    made = _made[label]
    sources = real_films(label)
    folder = _made_folder() / label
    folder.mkdir(parents=True, exist_ok=True)
    while len(made) < count:
        round_, index = divmod(len(made), len(sources))
        source = sources[index]
        target = folder / f"{source.stem}{round_ + 1:02d}{source.suffix}"
        _make_variant(source, target, round_ + 1, index)
        made.append(target)
    return made[:count]


def films(label: str, count: int, offset: int = 0) -> list[Path]:
    """Films `offset` .. `offset + count` of one class: real ones first, then made ones (small set only)."""
    if label not in CLASSES:
        raise ValueError(f"label must be one of {CLASSES}, not {label!r}")
    real = real_films(label)
    wanted = offset + count
    if wanted <= len(real):
        return real[offset:wanted]
    if FULL:
        raise RuntimeError(f"a test asks for {wanted} {label} films; {TRAIN / label} holds {len(real)}")
    return (real + _made_films(label, wanted - len(real)))[offset:wanted]


def copy_small_study(dest: Path, per_class: int, offset: int = 0) -> Path:
    """Copy `per_class` films per class into dest/{NORMAL,PNEUMONIA}."""
    for label in CLASSES:
        (dest / label).mkdir(parents=True, exist_ok=True)
        for src in films(label, per_class, offset):
            shutil.copy(src, dest / label / src.name)
    return dest
