"""Images outside what a chest X-ray model knows, made locally (nothing downloaded).

Categories (name -> list of grey uint8 images):
- dicom_*: pydicom's bundled test files (CT, MR, US, NM, RGB photos...), decoded
  through core.imaging.loader, so the content check sees them without their metadata;
- document, photo, noise, gradient, checkerboard: drawn here;
- inverted, upside_down, rotated_90, one_lung: transforms of real chest X-rays.

Also `scale_proxies` (zoomed in / out chest X-rays): not part of the out-of-scope
target, only a hint of how the check reacts to a thorax of another size.
Used by tests/test_scope.py (small counts) and packaging/make_ood_set.py.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIDE = 224


def pydicom_test_files() -> list[Path]:
    """pydicom's bundled test files (the local folder only: get_testdata_files may download)."""
    import pydicom

    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    return sorted(folder.glob("*.dcm"))


def dicom_images(limit: int | None = None, names: tuple[str, ...] = ()) -> dict[str, list[np.ndarray]]:
    """Decodable pydicom test images by modality: {"dicom_CT": [...], ...} (only `names` if given)."""
    import warnings

    import pydicom

    from core.imaging.loader import ImageLoadError, load_image

    by_modality: dict[str, list[np.ndarray]] = {}
    seen = set()
    for path in pydicom_test_files():
        if names and path.name not in names:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                loaded = load_image(path, max_side=2 * SIDE)
        except (ImageLoadError, Exception):  # some test files are deliberately broken
            continue
        modality = str(ds.get("Modality") or "none")
        if modality in {"DX", "CR"}:
            continue
        image = _to_side(loaded.pixels)
        key = image[::16, ::16].tobytes()
        if key in seen or np.ptp(image) == 0:  # same picture in another transfer syntax, or blank
            continue
        seen.add(key)
        by_modality.setdefault(f"dicom_{modality}", []).append(image)
    if limit:
        by_modality = {k: v[:limit] for k, v in by_modality.items()}
    return by_modality


def _to_side(pixels: np.ndarray) -> np.ndarray:
    image = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    return np.round(cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA) * 255).astype(np.uint8)


def documents(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """White pages with lines of dark text, some with a table or a dark header."""
    images = []
    for i in range(count):
        page = np.full((SIDE * 2, SIDE * 2), int(rng.integers(215, 256)), np.uint8)
        y = int(rng.integers(20, 60))
        while y < page.shape[0] - 10:
            words = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz   0123456789"), int(rng.integers(10, 40))))
            cv2.putText(page, words, (int(rng.integers(5, 40)), y), cv2.FONT_HERSHEY_SIMPLEX,
                        float(rng.uniform(0.4, 0.9)), int(rng.integers(0, 80)), 1, cv2.LINE_AA)
            y += int(rng.integers(14, 30))
        if i % 3 == 1:
            for x in range(20, page.shape[1], int(rng.integers(40, 120))):
                cv2.line(page, (x, 0), (x, page.shape[0]), 60, 1)
        if i % 3 == 2:
            page[:int(rng.integers(30, 90))] = int(rng.integers(0, 90))
        images.append(_resize(page))
    return images


def photos(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Synthetic 'photos': smooth background, blurred shapes of several sizes, some texture."""
    images = []
    for _ in range(count):
        h = SIDE * 2
        yy, xx = np.mgrid[0:h, 0:h] / h
        base = rng.uniform(0.2, 0.8) + rng.uniform(-0.4, 0.4) * yy + rng.uniform(-0.3, 0.3) * xx
        image = (base * 255).astype(np.float32)
        for _shape in range(int(rng.integers(4, 15))):
            colour = float(rng.uniform(0, 255))
            centre = (int(rng.integers(0, h)), int(rng.integers(0, h)))
            if rng.random() < 0.5:
                cv2.circle(image, centre, int(rng.integers(10, h // 3)), colour, -1)
            else:
                size = (int(rng.integers(10, h // 2)), int(rng.integers(10, h // 2)))
                cv2.rectangle(image, centre, (centre[0] + size[0], centre[1] + size[1]), colour, -1)
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(1, 6)))
        image += rng.normal(0, rng.uniform(2, 12), image.shape)
        images.append(_resize(np.clip(image, 0, 255).astype(np.uint8)))
    return images


def noise(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    images = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            image = rng.integers(0, 256, (SIDE, SIDE))
        elif kind == 1:
            image = np.clip(rng.normal(rng.uniform(60, 190), rng.uniform(10, 60), (SIDE, SIDE)), 0, 255)
        else:  # smooth blobs: low-frequency noise
            small = rng.uniform(0, 255, (8, 8)).astype(np.float32)
            image = cv2.resize(small, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return images


def gradients(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    images = []
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    for i in range(count):
        if i % 2:
            cy, cx = rng.uniform(0.2, 0.8, 2)
            field = np.hypot(yy - cy, xx - cx)
        else:
            angle = rng.uniform(0, np.pi)
            field = np.cos(angle) * xx + np.sin(angle) * yy
        field = (field - field.min()) / (np.ptp(field) + 1e-9)
        images.append((field * 255).astype(np.uint8))
    return images


def checkerboards(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    images = []
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    for _ in range(count):
        cell = int(rng.integers(8, 56))
        board = ((yy // cell + xx // cell) % 2).astype(np.float32)
        images.append((board * rng.uniform(120, 255) + rng.uniform(0, 60)).clip(0, 255).astype(np.uint8))
    return images


def _resize(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def chest_transforms(chest_images: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Real chest X-rays made out-of-scope: negative, upside down, on their side, one lung only."""
    out: dict[str, list[np.ndarray]] = {"inverted": [], "upside_down": [], "rotated_90": [], "one_lung": []}
    for i, image in enumerate(chest_images):
        out["inverted"].append(255 - image)
        out["upside_down"].append(np.ascontiguousarray(image[::-1]))
        out["rotated_90"].append(np.ascontiguousarray(np.rot90(image, 1 if i % 2 else 3)))
        half = image[:, : SIDE // 2] if i % 2 else image[:, SIDE // 2:]
        out["one_lung"].append(_resize(half))
    return out


def scale_proxies(chest_images: list[np.ndarray], seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Chest X-rays of another framing, hints for how adult films would fare (no adult data here):

    - zoom_in: the central 65 % (the thorax fills the frame);
    - zoom_out: inside a black border (a smaller thorax);
    - closer_1.2 / closer_1.35: central crops of 1/1.2 and 1/1.35 of the side (milder zooms);
    - square_film: the central 78 % of the width, full height: these squashed landscape films
      (width/height about 1.29) as if the film had been square (as many adult ones are);
    - adult_framing: the lungs and shoulders only, in a portrait crop (55-70 % of the width, 75-90 % of
      the height from near the top) squashed to a square as screening does: roughly how a tightly
      collimated square or portrait adult film looks at the model's input.
    """
    rng = np.random.default_rng(seed)
    out = {"zoom_in": [], "zoom_out": [], "closer_1.2": [], "closer_1.35": [], "square_film": [], "adult_framing": []}
    for image in chest_images:
        m = int(SIDE * 0.175)
        out["zoom_in"].append(_resize(image[m:SIDE - m, m:SIDE - m]))
        framed = np.zeros((int(SIDE * 1.5), int(SIDE * 1.5)), np.uint8)
        o = (framed.shape[0] - SIDE) // 2
        framed[o:o + SIDE, o:o + SIDE] = image
        out["zoom_out"].append(_resize(framed))
        for factor in (1.2, 1.35):
            c = int(round(SIDE / factor))
            o = (SIDE - c) // 2
            out[f"closer_{factor}"].append(cv2.resize(image[o:o + c, o:o + c], (SIDE, SIDE), interpolation=cv2.INTER_LINEAR))
        w = int(round(SIDE / 1.29))
        out["square_film"].append(cv2.resize(image[:, (SIDE - w) // 2:(SIDE - w) // 2 + w], (SIDE, SIDE),
                                             interpolation=cv2.INTER_LINEAR))
        w, h = int(SIDE * rng.uniform(0.55, 0.7)), int(SIDE * rng.uniform(0.75, 0.9))
        y, x = int(SIDE * rng.uniform(0.0, 0.1)), (SIDE - w) // 2 + int(rng.integers(-8, 9))
        out["adult_framing"].append(cv2.resize(image[y:y + h, x:x + w], (SIDE, SIDE), interpolation=cv2.INTER_LINEAR))
    return out


def in_scope_variants(chest_images: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """In-scope chest X-rays altered as real films can be: the scope check should pass most.

    tilt_5 / tilt_10 / tilt_15: turned by that many degrees, alternately left and right (edges
    replicated); gamma_0.7 / gamma_1.5: brighter / darker; mirrored: left-right; black_border_5:
    inside a uniform black frame 5 % of the side wide (padding, as some exports add).
    """
    out: dict[str, list[np.ndarray]] = {"tilt_5": [], "tilt_10": [], "tilt_15": [], "gamma_0.7": [],
                                        "gamma_1.5": [], "mirrored": [], "black_border_5": []}
    for i, image in enumerate(chest_images):
        side = image.shape[0]
        for degrees in (5, 10, 15):
            turn = cv2.getRotationMatrix2D((side / 2, side / 2), degrees if i % 2 else -degrees, 1.0)
            out[f"tilt_{degrees}"].append(cv2.warpAffine(image, turn, (side, side), borderMode=cv2.BORDER_REPLICATE))
        for gamma in (0.7, 1.5):
            out[f"gamma_{gamma}"].append(np.round(255 * (image / 255.0) ** gamma).astype(np.uint8))
        out["mirrored"].append(np.ascontiguousarray(image[:, ::-1]))
        pad = int(round(side * 0.05))
        out["black_border_5"].append(cv2.resize(cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0),
                                                (side, side), interpolation=cv2.INTER_AREA))
    return out


def load_chest_images(paths: list[Path]) -> list[np.ndarray]:
    from core.imaging.loader import load_image

    return [_to_side(load_image(p, max_side=2 * SIDE).pixels) for p in paths]


def out_of_scope_set(chest_paths: list[Path], per_kind: int = 20, seed: int = 0,
                     with_dicom: bool = True) -> dict[str, list[np.ndarray]]:
    """Every out-of-scope category, `per_kind` drawn images each (transforms: one per chest image)."""
    rng = np.random.default_rng(seed)
    categories: dict[str, list[np.ndarray]] = {}
    if with_dicom:
        categories.update(dicom_images())
    categories.update(document=documents(per_kind, rng), photo=photos(per_kind, rng),
                      noise=noise(per_kind, rng), gradient=gradients(per_kind, rng),
                      checkerboard=checkerboards(per_kind, rng))
    categories.update(chest_transforms(load_chest_images(chest_paths)))
    return categories
