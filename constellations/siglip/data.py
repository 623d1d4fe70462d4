"""Image-text data for the trainer: procedural shapes, optional sklearn digits, and a user's folder.

Every data set answers ``get(indices, epochs)`` with a dict of float32 images in [-1, 1]
(N, H, W, 3), caption strings and integer labels, and nothing else: what a training step sees is a
pure function of (seed, step) through :func:`batch_indices`, which is what makes resume bit-exact
(``siglip_reference.md`` section 6.1, item 5).

* :class:`ShapesDataset`: image i is a pure function of (seed, i): shape, colour, size, position,
  count and background drawn from ``numpy.random.default_rng([seed, i])``, then drawn with a little
  jitter; captions come from several templates with synonyms, so they are nearly unique. Unlimited,
  no dependency. Evaluation examples come from a disjoint index range. ``extra_languages=L`` (off by
  default) writes each caption in English or in one of L generated languages (word-for-word
  pseudo-word translations, see :func:`generated_languages`): a vocabulary about L + 1 times larger,
  for the bottlenecked token embedding study.
* ``finegrained`` (:mod:`constellations.siglip.finegrained`): 3,840 procedural classes whose
  captions are one word apart, with a knob (``num_classes``) for the false-negative rate.
* :class:`DigitsDataset`: scikit-learn's bundled 8x8 digits (needs the optional scikit-learn),
  upsampled and captioned from templates.
* :class:`ImageTextFolder`: a folder of images plus ``captions.jsonl`` (``{"image": ..., "caption":
  ...}`` or ``"captions": [...]``, optional ``"label"``) or ``captions.csv`` (columns ``image``,
  ``caption``[, ``label``]). Everything is validated when the folder is opened.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .drawing import COLOURS, EVAL_OFFSET, SHAPES, shape_mask


# ----------------------------------------------------------------------------------------------
# Shapes.

PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses",
           "diamond": "diamonds", "ring": "rings"}
COLOUR_NAMES = tuple(COLOURS)
SIZES = ("small", "large")
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
POSITIONS = ("left", "right", "top", "bottom", "center")
POSITION_PHRASES = {
    "left": ("on the left", "at the left"), "right": ("on the right", "at the right"),
    "top": ("at the top", "near the top"), "bottom": ("at the bottom", "near the bottom"),
    "center": ("in the center", "in the middle"),
}
COUNTS = (1, 2, 3)
COUNT_WORDS = {2: "two", 3: "three"}
BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "gray": (0.45, 0.45, 0.45)}
BACKGROUND_NAMES = tuple(BACKGROUNDS)
_ANCHORS = {"left": (9, 16), "right": (23, 16), "top": (16, 9), "bottom": (16, 23), "center": (16, 16)}
_TEMPLATES = (
    "{obj} {pos} on a {bg} background",
    "a picture of {obj} {pos}",
    "an image of {obj} on a {bg} background",
    "there {be} {obj} {pos}",
    "a drawing of {obj} {pos} on a {bg} background",
    "{obj} {pos}",
)
SHAPE_PROMPTS = ("a picture of a {}", "an image of a {}", "a drawing of a {}", "there is a {}")
ATTRIBUTES = ("shape", "colour", "size", "position", "count", "background")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def shapes_attributes(seed: int, index: int) -> dict:
    """The attributes, jitter and caption of shapes example ``index`` (a pure function of (seed, index))."""
    rng = np.random.default_rng([int(seed), int(index)])
    a = {
        "shape": int(rng.integers(len(SHAPES))), "colour": int(rng.integers(len(COLOURS))),
        "size": int(rng.integers(len(SIZES))), "position": int(rng.integers(len(POSITIONS))),
        "count": int(rng.integers(len(COUNTS))), "background": int(rng.integers(len(BACKGROUNDS))),
    }
    a["jitter"] = rng.uniform(-1.0, 1.0, size=(3, 2))
    a["colour_jitter"] = rng.uniform(-0.08, 0.08, size=3)
    a["noise_seed"] = int(rng.integers(1 << 31))
    shape, colour = SHAPES[a["shape"]], COLOUR_NAMES[a["colour"]]
    count = COUNTS[a["count"]]
    size = SIZE_WORDS[SIZES[a["size"]]][rng.integers(len(SIZE_WORDS[SIZES[a["size"]]]))]
    noun = shape if count == 1 else PLURALS[shape]
    words = [size, colour, noun] if rng.random() < 0.8 else [colour, noun]
    det = _article(words[0]) if count == 1 else COUNT_WORDS[count]
    obj = " ".join([det] + words)
    phrases = POSITION_PHRASES[POSITIONS[a["position"]]]
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    a["caption"] = template.format(obj=obj, pos=phrases[rng.integers(len(phrases))],
                                   bg=BACKGROUND_NAMES[a["background"]], be="is" if count == 1 else "are")
    return a


def render_shapes(attrs: dict, image_size: int = 32) -> np.ndarray:
    """Draw one example as float32 (H, W, 3) in [-1, 1] (geometry scaled from a 32-pixel canvas)."""
    s = image_size / 32.0
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5
    img = np.empty((image_size, image_size, 3), np.float32)
    img[:] = BACKGROUNDS[BACKGROUND_NAMES[attrs["background"]]]
    count = COUNTS[attrs["count"]]
    large = SIZES[attrs["size"]] == "large"
    r = (7.0 if large else 4.0) if count == 1 else (5.0 if large else 3.5)
    ax, ay = _ANCHORS[POSITIONS[attrs["position"]]]
    step = 2 * r + 1
    offsets = (np.arange(count) - (count - 1) / 2) * step
    vertical = POSITIONS[attrs["position"]] in ("left", "right")
    colour = np.clip(np.asarray(COLOURS[COLOUR_NAMES[attrs["colour"]]]) + attrs["colour_jitter"], 0, 1)
    mask = np.zeros((image_size, image_size), bool)
    for k in range(count):
        cx = ax + (0.0 if vertical else offsets[k]) + attrs["jitter"][k, 0]
        cy = ay + (offsets[k] if vertical else 0.0) + attrs["jitter"][k, 1]
        mask |= shape_mask(SHAPES[attrs["shape"]], xx - cx * s, yy - cy * s, r * s)
    img[mask] = colour
    noise = np.random.default_rng(attrs["noise_seed"]).normal(0.0, 0.03, img.shape).astype(np.float32)
    return np.clip(img + noise, 0.0, 1.0) * 2.0 - 1.0


def _english_vocabulary() -> list[str]:
    """Every word a shapes caption or zero-shot prompt can contain (English)."""
    words = set()
    for t in _TEMPLATES + SHAPE_PROMPTS:
        words |= set(t.replace("{obj}", "").replace("{pos}", "").replace("{bg}", "").replace("{be}", "")
                     .replace("{}", "").split())
    for group in (SHAPES, PLURALS.values(), COLOUR_NAMES, BACKGROUND_NAMES, COUNT_WORDS.values(),
                  ("a", "an", "is", "are")):
        words |= set(group)
    for v in list(SIZE_WORDS.values()) + list(POSITION_PHRASES.values()):
        for phrase in v:
            words |= set(phrase.split())
    return sorted(words)


_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
#: Seed of the generated languages: a fixed part of the data set's definition, not of a run.
GENERATED_LANGUAGE_SEED = 8


@functools.lru_cache(maxsize=8)
def generated_languages(n_languages: int) -> tuple[dict, ...]:
    """Word-for-word dictionaries English -> language l for l = 1..n_languages (index l - 1).

    Every English caption word gets, in each language, a pseudo-word of 2 to 4 consonant-vowel
    syllables drawn from ``default_rng([GENERATED_LANGUAGE_SEED, l, k])`` (k: the word's index in the
    sorted English vocabulary), redrawn until it is new: all pseudo-words differ from each other and
    from every English word, so the vocabulary has exactly (n_languages + 1) * |English| words.
    Deterministic and independent of the data seed.
    """
    if isinstance(n_languages, bool) or not isinstance(n_languages, (int, np.integer)) or n_languages < 0:
        raise ValueError(f"the number of generated languages must be an integer >= 0; got {n_languages!r}")
    english = _english_vocabulary()
    taken = set(english)
    tables = []
    for lang in range(1, int(n_languages) + 1):
        table = {}
        for k, word in enumerate(english):
            rng = np.random.default_rng([GENERATED_LANGUAGE_SEED, lang, k])
            while True:
                n_syllables = int(rng.integers(2, 5))
                pseudo = "".join(_CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
                                 for _ in range(n_syllables))
                if pseudo not in taken:
                    break
            taken.add(pseudo)
            table[word] = pseudo
        tables.append(table)
    return tuple(tables)


class ShapesDataset:
    """Procedural shapes: unlimited, deterministic, ~2,900 attribute combinations, templated captions.

    Training indices are 0, 1, 2, ...; ``eval_examples(n)`` draws from a disjoint range. With
    ``extra_languages=L > 0`` the caption of example i is written in language
    ``default_rng([seed, i, 3]).integers(L + 1)`` (0 = English, else a generated language, see
    :func:`generated_languages`); images, attributes and English captions are unchanged, and the
    labels gain a "language" entry. Zero-shot prompts stay English (:meth:`translate` gives the
    other languages').
    """

    name = "shapes"

    def __init__(self, seed: int = 0, image_size: int = 32, num_examples: int | None = None, *,
                 extra_languages: int = 0):
        if image_size < 16:
            raise ValueError(f"shapes images must be at least 16 pixels; got {image_size}")
        if num_examples is not None and int(num_examples) < 2:
            raise ValueError(f"num_examples must be None (unlimited) or >= 2; got {num_examples}")
        self.seed = int(seed)
        self.image_size = int(image_size)
        self.num_examples = None if num_examples is None else int(num_examples)
        self._languages = generated_languages(extra_languages)
        self.extra_languages = int(extra_languages)

    def language_of(self, index: int) -> int:
        """0 (English) or the generated language 1..L that example ``index`` is captioned in."""
        if not self.extra_languages:
            return 0
        return int(np.random.default_rng([self.seed, int(index), 3]).integers(self.extra_languages + 1))

    def translate(self, text: str, language: int) -> str:
        """``text`` (English words of this data set) word for word into ``language`` (0 = unchanged)."""
        if not 0 <= int(language) <= self.extra_languages:
            raise ValueError(f"language must be in [0, {self.extra_languages}]; got {language}")
        if language == 0:
            return text
        table = self._languages[int(language) - 1]
        try:
            return " ".join(table[w] for w in text.split())
        except KeyError as e:
            raise ValueError(f"cannot translate {text!r}: the word {e.args[0]!r} is not in the shapes vocabulary") from None

    def get(self, indices, epochs=None, *, images: bool = True) -> dict:
        indices = np.asarray(indices, np.int64)
        attrs = [shapes_attributes(self.seed, i) for i in indices]
        captions = [a["caption"] for a in attrs]
        languages = None
        if self.extra_languages:
            languages = np.array([self.language_of(i) for i in indices], np.int32)
            captions = [self.translate(c, int(lang)) for c, lang in zip(captions, languages)]
        labels = {k: np.array([a[k] for a in attrs], np.int32) for k in ATTRIBUTES}
        if languages is not None:
            labels["language"] = languages
        if not images:      # captions and labels without drawing (cheap)
            return {"captions": captions, "labels": labels}
        images = np.stack([render_shapes(a, self.image_size) for a in attrs]) if len(attrs) else \
            np.zeros((0, self.image_size, self.image_size, 3), np.float32)
        return {"images": images, "captions": captions, "labels": labels}

    def eval_examples(self, n: int) -> dict:
        out = self.get(EVAL_OFFSET + np.arange(n))
        out["captions"] = [[c] for c in out["captions"]]
        return out

    def vocabulary(self) -> list[str]:
        words = set(_english_vocabulary())
        for table in self._languages:
            words |= set(table.values())
        return sorted(words)

    def zero_shot_tasks(self) -> dict:
        """{task: (label key, class names, prompt templates)}; colour prompts ensemble over shapes."""
        colour_prompts = tuple(f"{{}} {noun}" for shape in SHAPES for noun in (shape, PLURALS[shape]))
        return {
            "shape": ("shape", SHAPES, SHAPE_PROMPTS),
            "colour": ("colour", COLOUR_NAMES, colour_prompts),
        }


# ----------------------------------------------------------------------------------------------
# sklearn digits.

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_TEMPLATES = ("a handwritten digit {w}", "the number {d} written by hand", "an image of a {w}",
                    "a picture of the digit {w}", "a {w} written by hand")
DIGIT_PROMPTS = ("a handwritten digit {}", "an image of a {}", "a picture of the digit {}")


def sklearn_available() -> bool:
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        return False
    return True


class DigitsDataset:
    """scikit-learn's 1,797 bundled 8x8 digits (nothing downloaded), upsampled, 3 channels.

    A fixed permutation (seed 0) puts 1,500 examples in ``split="train"`` and 297 in ``"eval"``.
    """

    name = "digits"

    def __init__(self, seed: int = 0, image_size: int = 32, split: str = "train"):
        if not sklearn_available():
            raise ImportError("the digits data set needs the optional scikit-learn package: pip install scikit-learn")
        from sklearn.datasets import load_digits

        if image_size % 8:
            raise ValueError(f"digits images are 8x8: image_size must be a multiple of 8; got {image_size}")
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval'; got {split!r}")
        d = load_digits()
        order = np.random.default_rng(0).permutation(len(d.target))
        keep = order[:1500] if split == "train" else order[1500:]
        f = image_size // 8
        imgs = d.images[keep].astype(np.float32) / 16.0
        imgs = np.repeat(np.repeat(imgs, f, axis=1), f, axis=2)
        self.images = np.repeat(imgs[..., None], 3, axis=-1) * 2.0 - 1.0
        self.targets = d.target[keep].astype(np.int32)
        self.seed, self.image_size, self.num_examples = int(seed), int(image_size), len(keep)

    def _caption(self, index: int, epoch: int) -> str:
        rng = np.random.default_rng([self.seed, int(index), int(epoch), 7])
        k = int(self.targets[index])
        return _DIGIT_TEMPLATES[rng.integers(len(_DIGIT_TEMPLATES))].format(w=DIGIT_WORDS[k], d=k)

    def get(self, indices, epochs=None, *, images: bool = True) -> dict:
        indices = np.asarray(indices, np.int64)
        epochs = np.zeros_like(indices) if epochs is None else np.asarray(epochs)
        caps = [self._caption(i, e) for i, e in zip(indices, epochs)]
        if not images:
            return {"captions": caps}
        return {"images": self.images[indices], "captions": caps, "labels": {"digit": self.targets[indices]}}

    def eval_examples(self, n: int | None = None) -> dict:
        n = self.num_examples if n is None else min(n, self.num_examples)
        out = self.get(np.arange(n))
        out["captions"] = [[c] for c in out["captions"]]
        return out

    def vocabulary(self) -> list[str]:
        words = set(DIGIT_WORDS) | {str(k) for k in range(10)}
        for t in _DIGIT_TEMPLATES + DIGIT_PROMPTS:
            words |= set(t.replace("{w}", "").replace("{d}", "").replace("{}", "").split())
        return sorted(words)

    def zero_shot_tasks(self) -> dict:
        return {"digit": ("digit", DIGIT_WORDS, DIGIT_PROMPTS)}


# ----------------------------------------------------------------------------------------------
# A user's folder of images and captions.

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _read_records(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        records = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}, line {n}: not valid JSON ({e.msg})") from None
                if not isinstance(rec, dict) or "image" not in rec or not ({"caption", "captions"} & set(rec)):
                    raise ValueError(f"{path}, line {n}: each line must be an object with 'image' and "
                                     "'caption' (or 'captions': [...])")
                records.append(rec)
        return records
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            return []
        if not {"image", "caption"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the CSV header must have the columns 'image' and 'caption'; "
                             f"got {reader.fieldnames}")
        return [dict(row) for row in reader]


class ImageTextFolder:
    """Images in ``root`` with captions in ``root/captions.jsonl`` or ``root/captions.csv``.

    Raises ValueError, before any training, for: no captions file, an empty captions file, a
    record naming a missing or unreadable image, an image whose size is not ``image_size`` (unless
    ``resize=True``), or an empty caption. Several captions per image are allowed (several
    records, or a "captions" list); training rotates through them epoch by epoch.
    """

    name = "folder"

    def __init__(self, root, image_size: int = 32, *, captions_file=None, resize: bool = False):
        from PIL import Image, UnidentifiedImageError

        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"image folder {root} does not exist or is not a directory")
        if captions_file is None:
            found = [root / n for n in ("captions.jsonl", "captions.csv") if (root / n).is_file()]
            if not found:
                n_images = sum(1 for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                raise ValueError(f"image folder {root} ({n_images} images) has no captions: add captions.jsonl "
                                 "(lines {\"image\": \"name.png\", \"caption\": \"...\"}) or captions.csv "
                                 "(columns image,caption)")
            captions_file = found[0]
        captions_file = Path(captions_file)
        if not captions_file.is_file():
            raise ValueError(f"captions file {captions_file} does not exist")
        records = _read_records(captions_file)
        if not records:
            raise ValueError(f"captions file {captions_file} is empty: it must list at least one image and caption")
        by_image: dict[str, list[str]] = {}
        label_of: dict[str, str] = {}
        for n, rec in enumerate(records, 1):
            caps = rec["captions"] if "captions" in rec else [rec["caption"]]
            if isinstance(caps, str) or not caps or any(not isinstance(c, str) or not c.strip() for c in caps):
                raise ValueError(f"{captions_file}, record {n} (image {rec['image']!r}): captions must be non-empty strings")
            by_image.setdefault(str(rec["image"]), []).extend(caps)
            if rec.get("label") not in (None, ""):
                label_of[str(rec["image"])] = str(rec["label"])
        self.files = sorted(by_image)
        self.captions = [by_image[f] for f in self.files]
        images = np.empty((len(self.files), image_size, image_size, 3), np.uint8)
        for i, name in enumerate(self.files):
            path = root / name
            if not path.is_file():
                raise ValueError(f"{captions_file} names image {name!r}, which is not in {root}")
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    if im.size != (image_size, image_size):
                        if not resize:
                            raise ValueError(f"image {path} is {im.size[0]}x{im.size[1]} pixels; expected "
                                             f"{image_size}x{image_size} (set data.image_size, or data.resize=True)")
                        im = im.resize((image_size, image_size), Image.BILINEAR)
                    images[i] = np.asarray(im, np.uint8)
            except (UnidentifiedImageError, OSError) as e:
                raise ValueError(f"cannot read image {path}: {e}") from None
        self.images_uint8 = images
        self.image_size, self.num_examples = int(image_size), len(self.files)
        self.class_names = tuple(sorted(set(label_of.values()))) if len(label_of) == len(self.files) else None
        self.labels = (np.array([self.class_names.index(label_of[f]) for f in self.files], np.int32)
                       if self.class_names else None)
        self.prompts = ("a photo of a {}", "a picture of a {}", "an image of a {}")

    def get(self, indices, epochs=None, *, images: bool = True) -> dict:
        indices = np.asarray(indices, np.int64)
        epochs = np.zeros_like(indices) if epochs is None else np.asarray(epochs)
        caps = [self.captions[i][e % len(self.captions[i])] for i, e in zip(indices, epochs)]
        if not images:
            return {"captions": caps}
        images = self.images_uint8[indices].astype(np.float32) / 127.5 - 1.0
        labels = {"label": self.labels[indices]} if self.labels is not None else {}
        return {"images": images, "captions": caps, "labels": labels}

    def eval_examples(self, n: int | None = None) -> dict:
        n = self.num_examples if n is None else min(n, self.num_examples)
        idx = np.arange(n)
        out = self.get(idx)
        out["captions"] = [list(self.captions[i]) for i in idx]
        return out

    def all_captions(self) -> list[str]:
        return [c for caps in self.captions for c in caps]

    def vocabulary(self):
        return None

    def zero_shot_tasks(self) -> dict:
        return {"label": ("label", self.class_names, self.prompts)} if self.class_names else {}


# ----------------------------------------------------------------------------------------------
# The training stream.


def batch_indices(step: int, global_batch: int, num_examples: int | None, seed: int, *,
                  process_index: int = 0, process_count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(indices, epochs) of this process's slice of the global batch at ``step``: a pure function.

    Position p = step * B + i of the stream is example p for an unlimited data set; for N examples
    it is perm_e[p mod N] with e = p // N and perm_e a permutation drawn from (seed, e). Process k
    of P gets positions [k B / P, (k + 1) B / P) of the batch, so the global batch, in order, is
    the same for any number of processes.
    """
    if global_batch % process_count:
        raise ValueError(f"global batch {global_batch} must be divisible by the {process_count} processes")
    per = global_batch // process_count
    pos = step * global_batch + process_index * per + np.arange(per, dtype=np.int64)
    if num_examples is None:
        return pos, np.zeros_like(pos)
    if global_batch > num_examples:
        raise ValueError(f"global batch {global_batch} is larger than the data set ({num_examples} examples)")
    epochs = pos // num_examples
    out = np.empty_like(pos)
    for e in np.unique(epochs):
        perm = np.random.default_rng([int(seed), int(e), 1]).permutation(num_examples)
        sel = epochs == e
        out[sel] = perm[pos[sel] % num_examples]
    return out, epochs


def _extra_languages(data_cfg) -> int:
    """``data.extra_languages`` (0 when absent, as in configs saved before the option existed)."""
    languages = data_cfg.get("extra_languages", 0) or 0
    if languages and data_cfg["name"] != "shapes":
        raise ValueError(f"data.extra_languages is an option of the shapes data set; got data.name={data_cfg['name']!r}")
    return languages


def _num_classes(data_cfg):
    """``data.num_classes`` (None when absent); only the fine-grained set has it."""
    k = data_cfg.get("num_classes")
    if k is not None and data_cfg["name"] != "finegrained":
        raise ValueError(f"data.num_classes is an option of the finegrained data set; got data.name={data_cfg['name']!r}")
    return k


def make_dataset(data_cfg, *, seed: int):
    """Build the training data set named by ``data_cfg.name``: 'shapes', 'finegrained', 'digits' or 'folder'."""
    name = data_cfg["name"]
    size = int(data_cfg.get("image_size", 32))
    languages = _extra_languages(data_cfg)
    num_classes = _num_classes(data_cfg)
    if name == "shapes":
        return ShapesDataset(seed=seed, image_size=size, num_examples=data_cfg.get("num_examples"),
                             extra_languages=languages)
    if name == "finegrained":
        from .finegrained import FineGrainedDataset

        return FineGrainedDataset(seed=seed, image_size=size, num_examples=data_cfg.get("num_examples"),
                                  num_classes=num_classes)
    if name == "digits":
        return DigitsDataset(seed=seed, image_size=size)
    if name == "folder":
        if not data_cfg.get("root"):
            raise ValueError("data.name='folder' needs data.root (a folder of images with captions.jsonl/.csv)")
        return ImageTextFolder(data_cfg["root"], size, captions_file=data_cfg.get("captions_file"),
                               resize=bool(data_cfg.get("resize", False)))
    raise ValueError(f"data.name must be 'shapes', 'finegrained', 'digits' or 'folder'; got {name!r}")


def make_eval_dataset(data_cfg, *, seed: int):
    """The evaluation set: shapes' and finegrained's disjoint range, digits' held-out split, or ``data.eval_root``."""
    name = data_cfg["name"]
    size = int(data_cfg.get("image_size", 32))
    languages = _extra_languages(data_cfg)
    num_classes = _num_classes(data_cfg)
    if name == "shapes":
        return ShapesDataset(seed=seed, image_size=size, extra_languages=languages)
    if name == "finegrained":
        from .finegrained import FineGrainedDataset

        return FineGrainedDataset(seed=seed, image_size=size, num_classes=num_classes)
    if name == "digits":
        return DigitsDataset(seed=seed, image_size=size, split="eval")
    root = data_cfg.get("eval_root") or data_cfg.get("root")
    return ImageTextFolder(root, size, resize=bool(data_cfg.get("resize", False)))


def texts_for_tokenizer(dataset, limit: int = 5000) -> Sequence[str]:
    """Captions to train a SentencePiece model on: all of a folder's, or the first ``limit`` examples'."""
    if hasattr(dataset, "all_captions"):
        return dataset.all_captions()
    n = limit if dataset.num_examples is None else min(limit, dataset.num_examples)
    return dataset.get(np.arange(n), images=False)["captions"]
