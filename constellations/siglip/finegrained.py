"""A procedural fine-grained image-caption set: thousands of classes, near-duplicate captions, and a
knob for the false-negative rate.

A class is a combination of five attributes, each drawn clearly enough at 32 x 32 pixels that a
small frozen tower can read all of them (unlike the shapes set's small, repeated objects):

* shape (6: circle, square, triangle, cross, diamond, ring), one object of radius 8.5 to 10 pixels (large: its outline spans several 8-pixel patches);
* colour (8 bright colours);
* pattern (4: plain; striped = horizontal stripes; barred = vertical bars; checkered), drawn in
  the object with a darker shade of its colour, period 4 pixels;
* position (4: the object's centre sits 5 pixels left, right, above or below the canvas centre);
* background (5: black, light gray, navy, maroon, brown).

That is 6 x 8 x 4 x 4 x 5 = 3,840 classes (:data:`NUM_CLASSES`). The caption of a class is the
single template ``"a {pattern} {colour} {shape} at the {position} on a {background} background"``
(every pattern word starts with a consonant, so the article never changes). One template, so
**the caption is the class**: two examples share a caption exactly when they share a class, and
two classes that differ in one attribute have captions that differ in exactly one word (each
class has 5 + 7 + 3 + 3 + 4 = 22 such near-duplicate neighbours: the hard negatives).

**The false-negative knob** is ``num_classes`` = K: the classes in use are K distinct classes of
the 3,840 (all of them for K = None or 3,840, else a subset drawn once from ``default_rng([seed,
K, 11])``), and every example's class is uniform over them. Since the caption is the class, two
examples of a batch share a caption (a false negative for both the sigmoid and the softmax loss)
with probability exactly 1/K, independently of the batch size; a batch of B then holds on average
(B - 1)/K false negatives per image. :func:`false_negative_rate` measures the realised rate of
given batches. The knob trades off against nothing else in the images: an example is still drawn
the same way given its class. It does change the task: fewer classes in use means each is seen
more often, and a random subset of K classes holds fewer one-word neighbours of each class
(22 (K - 1)/3839 on average), which is why the hard-negative zero-shot
(:meth:`FineGrainedDataset.hard_negative_candidates`) always scores a class against all 22 of its
neighbours, used or not.

Everything else follows :mod:`constellations.siglip.data`: example i is a pure function of (seed,
i) (class, jitter of position, size and colour, pixel noise from ``default_rng([seed, i])``),
training indices are 0, 1, ..., evaluation indices start at ``EVAL_OFFSET``, images are float32
(N, 32, 32, 3) in [-1, 1], and ``get`` returns images, captions and integer labels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .drawing import COLOURS, EVAL_OFFSET, SHAPES, shape_mask

COLOUR_NAMES = tuple(COLOURS)
PATTERNS = ("plain", "striped", "barred", "checkered")
POSITIONS = ("left", "right", "top", "bottom")
#: Four dark backgrounds and a light one, each far enough (>= 0.15 in some channel) from every object
#: colour and from every colour's dark pattern shade 0.45 c + 0.05 that the silhouette stays whole.
BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "gray": (0.72, 0.72, 0.72), "navy": (0.02, 0.04, 0.3),
               "maroon": (0.3, 0.02, 0.06), "brown": (0.3, 0.17, 0.05)}
BACKGROUND_NAMES = tuple(BACKGROUNDS)
#: Attribute -> its values, in the order that defines class ids (mixed radix, last varies fastest).
VALUES = {"shape": SHAPES, "colour": COLOUR_NAMES, "pattern": PATTERNS, "position": POSITIONS,
          "background": BACKGROUND_NAMES}
ATTRIBUTES = tuple(VALUES)
ATTRIBUTE_CLASSES = {a: len(v) for a, v in VALUES.items()}
NUM_CLASSES = int(np.prod([len(v) for v in VALUES.values()]))
TEMPLATE = "a {pattern} {colour} {shape} at the {position} on a {background} background"
#: How many filled-in caption templates each attribute's zero-shot prompt ensemble averages over.
PROMPTS_PER_ATTRIBUTE = 16
_ANCHORS = {"left": (11.0, 16.0), "right": (21.0, 16.0), "top": (16.0, 11.0), "bottom": (16.0, 21.0)}
_RADIX = np.array([len(v) for v in VALUES.values()])


def class_attributes(class_id) -> dict:
    """{attribute: value index} of global class id(s) in [0, NUM_CLASSES) (arrays broadcast)."""
    c = np.asarray(class_id, np.int64)
    if np.any((c < 0) | (c >= NUM_CLASSES)):
        raise ValueError(f"class ids must be in [0, {NUM_CLASSES}); got {class_id!r}")
    out = {}
    for a, n in zip(reversed(ATTRIBUTES), reversed(_RADIX)):
        out[a] = c % n
        c = c // n
    return {a: out[a] for a in ATTRIBUTES}


def class_id(attributes: dict) -> np.ndarray:
    """The global class id of {attribute: value index} (inverse of :func:`class_attributes`)."""
    c = np.zeros_like(np.asarray(attributes[ATTRIBUTES[0]], np.int64))
    for a, n in zip(ATTRIBUTES, _RADIX):
        c = c * n + np.asarray(attributes[a], np.int64)
    return c


def caption(class_id_: int) -> str:
    """The caption of a global class: :data:`TEMPLATE` with its five attribute words."""
    a = class_attributes(int(class_id_))
    return TEMPLATE.format(**{k: VALUES[k][int(v)] for k, v in a.items()})


def neighbours(class_id_: int) -> np.ndarray:
    """The 22 global class ids that differ from ``class_id_`` in exactly one attribute (sorted)."""
    a = {k: int(v) for k, v in class_attributes(int(class_id_)).items()}
    out = []
    for k in ATTRIBUTES:
        for v in range(ATTRIBUTE_CLASSES[k]):
            if v != a[k]:
                out.append(int(class_id({**a, k: v})))
    return np.array(sorted(out), np.int64)


def false_negative_rate(class_ids: np.ndarray) -> float:
    """The fraction of ordered off-diagonal pairs (i, j), i != j, of each batch with the same class.

    ``class_ids``: (steps, B) or (B,) integer classes of the examples of each batch. Each such pair
    is a false negative of the contrastive loss (same caption, counted as a non-match). Its
    expectation for K classes in use is 1/K (:class:`FineGrainedDataset`).
    """
    c = np.atleast_2d(np.asarray(class_ids))
    if c.ndim != 2 or c.shape[1] < 2:
        raise ValueError(f"class_ids must be (steps, B) or (B,) with B >= 2; got shape {np.shape(class_ids)}")
    same = 0
    for row in c:
        _, counts = np.unique(row, return_counts=True)
        same += int(np.sum(counts * (counts - 1)))
    return same / (c.shape[0] * c.shape[1] * (c.shape[1] - 1))


def _check_num_classes(num_classes) -> int:
    if num_classes is None:
        return NUM_CLASSES
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or not 2 <= num_classes <= NUM_CLASSES:
        raise ValueError(f"num_classes must be None (all {NUM_CLASSES}) or an integer in [2, {NUM_CLASSES}]; "
                         f"got {num_classes!r}")
    return int(num_classes)


def dark_shade(colour) -> np.ndarray:
    """The second tone of a patterned object of RGB ``colour`` in [0, 1]: 0.45 colour + 0.05."""
    return 0.45 * np.asarray(colour) + 0.05


def render(attrs: dict, image_size: int = 32) -> np.ndarray:
    """Draw one example (:meth:`FineGrainedDataset.attributes`) as float32 (H, W, 3) in [-1, 1].

    Geometry is in 32-pixel canvas units scaled to ``image_size``; the pattern's period (4 canvas
    pixels) and phase are fixed to the canvas so a stripe is always two pixels wide at 32 pixels.
    """
    s = image_size / 32.0
    yy, xx = (np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5) / s
    img = np.empty((image_size, image_size, 3), np.float32)
    img[:] = BACKGROUNDS[BACKGROUND_NAMES[attrs["background"]]]
    ax, ay = _ANCHORS[POSITIONS[attrs["position"]]]
    cx, cy = ax + attrs["jitter"][0], ay + attrs["jitter"][1]
    mask = shape_mask(SHAPES[attrs["shape"]], xx - cx, yy - cy, attrs["radius"])
    colour = np.clip(np.asarray(COLOURS[COLOUR_NAMES[attrs["colour"]]]) + attrs["colour_jitter"], 0.0, 1.0)
    pattern = PATTERNS[attrs["pattern"]]
    band_x, band_y = (np.floor(xx / 2) % 2 == 1), (np.floor(yy / 2) % 2 == 1)
    dark = {"plain": np.zeros_like(mask), "striped": band_y, "barred": band_x, "checkered": band_x ^ band_y}[pattern]
    img[mask & ~dark] = colour
    img[mask & dark] = dark_shade(colour)
    noise = np.random.default_rng(attrs["noise_seed"]).normal(0.0, 0.03, img.shape).astype(np.float32)
    return np.clip(img + noise, 0.0, 1.0) * 2.0 - 1.0


class FineGrainedDataset:
    """Procedural fine-grained classes with one-word-apart captions (see the module docstring).

    Args:
      seed: the data seed (classes in use, every example).
      image_size: image side in pixels (>= 16).
      num_examples: None (unlimited) or the size of a finite training set (>= 2).
      num_classes: K, the number of classes in use (None: all 3,840): the false-negative knob,
        P(two examples share a caption) = 1/K.
    """

    name = "finegrained"

    def __init__(self, seed: int = 0, image_size: int = 32, num_examples: int | None = None, *,
                 num_classes: int | None = None):
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 16:
            raise ValueError(f"image_size must be an integer >= 16; got {image_size!r}")
        if num_examples is not None and (isinstance(num_examples, bool) or int(num_examples) < 2):
            raise ValueError(f"num_examples must be None (unlimited) or >= 2; got {num_examples!r}")
        self.seed = int(seed)
        self.image_size = int(image_size)
        self.num_examples = None if num_examples is None else int(num_examples)
        self.num_classes = _check_num_classes(num_classes)
        if self.num_classes == NUM_CLASSES:
            self.classes = np.arange(NUM_CLASSES, dtype=np.int64)
        else:
            rng = np.random.default_rng([self.seed, self.num_classes, 11])
            self.classes = np.sort(rng.choice(NUM_CLASSES, self.num_classes, replace=False)).astype(np.int64)
        self._position = {int(c): k for k, c in enumerate(self.classes)}

    @property
    def expected_false_negative_rate(self) -> float:
        """P(two distinct examples share a caption) = 1/K."""
        return 1.0 / self.num_classes

    def attributes(self, index: int) -> dict:
        """Class (position k in the classes in use, and global id), attributes and nuisances of example ``index``."""
        rng = np.random.default_rng([self.seed, int(index)])
        k = int(rng.integers(self.num_classes))
        cid = int(self.classes[k])
        a = {name: int(v) for name, v in class_attributes(cid).items()}
        a.update({"class": k, "class_id": cid, "jitter": rng.uniform(-1.0, 1.0, size=2),
                  "radius": float(rng.uniform(8.5, 10.0)), "colour_jitter": rng.uniform(-0.06, 0.06, size=3),
                  "noise_seed": int(rng.integers(1 << 31))})
        return a

    def get(self, indices, epochs=None, *, images: bool = True) -> dict:
        """{"images": (N, H, W, 3) float32 in [-1, 1], "captions": N strings, "labels": {name: (N,) int32}}.

        Labels: the five attributes, "class" (position in the classes in use, 0..K-1: the fine-grained
        zero-shot label) and "class_id" (global id, 0..3839). ``images=False`` skips drawing.
        """
        indices = np.asarray(indices, np.int64)
        attrs = [self.attributes(i) for i in indices]
        captions = [caption(a["class_id"]) for a in attrs]
        labels = {k: np.array([a[k] for a in attrs], np.int32) for k in (*ATTRIBUTES, "class", "class_id")}
        if not images:
            return {"captions": captions, "labels": labels}
        images_ = np.stack([render(a, self.image_size) for a in attrs]) if attrs else \
            np.zeros((0, self.image_size, self.image_size, 3), np.float32)
        return {"images": images_, "captions": captions, "labels": labels}

    def eval_examples(self, n: int) -> dict:
        out = self.get(EVAL_OFFSET + np.arange(n))
        out["captions"] = [[c] for c in out["captions"]]
        return out

    def vocabulary(self) -> list[str]:
        """Every word of every class's caption (the same for every K, so towers and tokens do not depend on it)."""
        words = set(TEMPLATE.format(**{a: "" for a in VALUES}).split())
        for v in VALUES.values():
            words |= set(v)
        return sorted(words)

    def class_captions(self) -> list[str]:
        """The captions of the K classes in use, in the order of the "class" label."""
        return [caption(c) for c in self.classes]

    def zero_shot_tasks(self) -> dict:
        """{task: (label key, class names, prompt templates)}.

        One task per attribute, prompts = the caption template with that attribute open and the
        others filled from :data:`PROMPTS_PER_ATTRIBUTE` fixed classes (an ensemble, as big_vision's
        templates); and "class": the K captions in use, each its own prompt (chance 1/K).
        """
        tasks = {}
        rng = np.random.default_rng(12)     # fixed: part of the data set's definition, not of a run
        for attr, values in VALUES.items():
            prompts = []
            for c in rng.choice(NUM_CLASSES, PROMPTS_PER_ATTRIBUTE, replace=False):
                words = {k: VALUES[k][int(v)] for k, v in class_attributes(int(c)).items()}
                words[attr] = "{}"
                prompts.append(TEMPLATE.format(**words))
            tasks[attr] = (attr, values, tuple(prompts))
        tasks["class"] = ("class", tuple(self.class_captions()), ("{}",))
        return tasks

    def hard_negative_candidates(self, class_ids: Sequence[int]) -> np.ndarray:
        """(N, 23) global class ids: each class followed by its 22 one-word neighbours (column 0 is right)."""
        return np.stack([np.concatenate([[int(c)], neighbours(int(c))]) for c in class_ids])
