"""Tests of the trainer's data, tokenizers and towers: purity, the sticky-EOS contract, bad folders."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from constellations.siglip import data
from constellations.siglip.models import TwoTowers, decode_variant, init_towers, tower_configs
from constellations.siglip.tokenizer import EOS, UNK, WordTokenizer, canonicalize_text, tokenizer_from_dict


# ---------------------------------------------------------------------------------------------
# Shapes and the training stream.


def test_shapes_images_are_a_pure_function_of_seed_and_index():
    a = data.ShapesDataset(seed=3).get([5, 17, 40])
    b = data.ShapesDataset(seed=3).get([40, 5])
    np.testing.assert_array_equal(a["images"][0], b["images"][1])
    np.testing.assert_array_equal(a["images"][2], b["images"][0])
    assert a["captions"][0] == b["captions"][1]
    c = data.ShapesDataset(seed=4).get([5])
    assert not np.array_equal(a["images"][0], c["images"][0])
    assert a["images"].dtype == np.float32 and a["images"].min() >= -1 and a["images"].max() <= 1


def test_shapes_captions_name_the_attributes_and_are_nearly_unique():
    ds = data.ShapesDataset(seed=0)
    out = ds.get(np.arange(300))
    assert len(set(out["captions"])) >= 290
    tok = WordTokenizer(ds.vocabulary())
    for cap, shape, colour in zip(out["captions"], out["labels"]["shape"], out["labels"]["colour"]):
        words = cap.split()
        assert data.COLOUR_NAMES[colour] in words
        assert data.SHAPES[shape] in words or data.PLURALS[data.SHAPES[shape]] in words
        assert UNK not in tok.tokens(cap)                      # the closed vocabulary covers every caption
    for task, (key, names, templates) in ds.zero_shot_tasks().items():
        for name in names:
            assert all(UNK not in tok.tokens(t.format(name)) for t in templates), (task, name)


def test_shapes_colour_and_shape_are_visible():
    """The drawn pixels carry the attributes: the object's colour is the caption's, shapes differ in area."""
    ds = data.ShapesDataset(seed=1)
    out = ds.get(np.arange(60))
    for img, colour, bg in zip(out["images"], out["labels"]["colour"], out["labels"]["background"]):
        rgb = (img + 1) / 2
        background = np.asarray(data.BACKGROUNDS[data.BACKGROUND_NAMES[bg]])
        fg = np.abs(rgb - background).max(axis=-1) > 0.25
        assert fg.sum() > 5
        mean = rgb[fg].mean(axis=0)
        nearest = min(data.COLOURS, key=lambda k: np.sum((np.asarray(data.COLOURS[k]) - mean) ** 2))
        assert nearest == data.COLOUR_NAMES[colour]


def test_batch_indices_are_pure_and_split_over_processes():
    """The global batch at a step is the same for any number of processes; finite sets are permuted by epoch."""
    whole, _ = data.batch_indices(7, 8, None, 0)
    np.testing.assert_array_equal(whole, np.arange(56, 64))
    parts = [data.batch_indices(3, 12, 30, 5, process_index=k, process_count=3) for k in range(3)]
    full = data.batch_indices(3, 12, 30, 5)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), full[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), full[1])
    epoch0 = np.concatenate([data.batch_indices(s, 10, 30, 5)[0] for s in range(3)])
    assert sorted(epoch0) == list(range(30))                      # one epoch visits each example once
    with pytest.raises(ValueError, match="larger than the data set"):
        data.batch_indices(0, 64, 30, 0)
    with pytest.raises(ValueError, match="divisible"):
        data.batch_indices(0, 10, None, 0, process_count=3)


@pytest.mark.skipif(not data.sklearn_available(), reason="scikit-learn is not installed (digits are optional)")
def test_digits_dataset():
    ds = data.DigitsDataset(image_size=16)
    out = ds.get([0, 1, 2])
    assert out["images"].shape == (3, 16, 16, 3) and ds.num_examples == 1500
    k = int(out["labels"]["digit"][0])
    assert data.DIGIT_WORDS[k] in out["captions"][0] or str(k) in out["captions"][0]
    assert data.DigitsDataset(split="eval").num_examples == 297


def test_digits_without_sklearn_raise_a_clear_error(monkeypatch):
    monkeypatch.setattr(data, "sklearn_available", lambda: False)
    with pytest.raises(ImportError, match="scikit-learn"):
        data.DigitsDataset()


# ---------------------------------------------------------------------------------------------
# Tokenizers.


def test_word_tokenizer_sticky_eos_and_eos_padding():
    """big_vision's contract: ids[:L-1] + [EOS], padded with EOS; the last position is always EOS."""
    tok = WordTokenizer(["a", "red", "circle", "on", "the", "left"])
    ids = tok.encode(["A red circle!", "a red circle on the left a red circle", "", "a blue circle"], 5)
    assert ids.shape == (4, 5) and ids.dtype == np.int32
    assert (ids[:, -1] == EOS).all()
    assert list(ids[0]) == tok.tokens("a red circle") + [EOS, EOS]
    assert list(ids[1]) == tok.tokens("a red circle on") + [EOS]           # truncated, EOS kept
    assert list(ids[2]) == [EOS] * 5
    assert ids[3, 1] == UNK
    assert tok.decode(ids[0]) == "a red circle"
    assert tokenizer_from_dict(json.loads(json.dumps(tok.to_dict()))).encode(["red circle"], 4).tolist() == \
        tok.encode(["red circle"], 4).tolist()
    assert canonicalize_text("  The_Red, CIRCLE. ") == "the red circle"


def test_sentencepiece_tokenizer_on_user_captions():
    pytest.importorskip("sentencepiece")
    from constellations.siglip.tokenizer import SentencePieceTokenizer

    caps = [f"a photo of {c} {n}" for c in ("red", "green", "blue", "black") for n in ("cats", "dogs", "birds")] * 5
    tok = SentencePieceTokenizer.train(caps, vocab_size=60)
    ids = tok.encode(["a photo of red cats", "a photo of green dogs and blue birds and red cats"], 32)
    assert (ids[:, -1] == EOS).all() and ids.shape == (2, 32)
    assert tok.decode(ids[0]) == "a photo of red cats"
    short = tok.encode(["a photo of green dogs and blue birds and red cats"], 6)
    assert list(short[0]) == tok.tokens("a photo of green dogs and blue birds")[:5] + [EOS]
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    np.testing.assert_array_equal(again.encode(["a photo of red cats"], 32), ids[:1])
    with pytest.raises(ValueError, match="empty"):
        SentencePieceTokenizer.train(["", "  ..."])


# ---------------------------------------------------------------------------------------------
# Towers.


def test_towers_normalize_and_pool_the_last_token():
    """L2-normalized outputs; no mask, so every token (pads included) reaches the pooled last position."""
    image, text = tower_configs({"image_variant": "mu/4"}, vocab_size=20, image_size=16, max_len=8)
    assert text["out_dim"] == image["width"] == 32
    model = TwoTowers(image, text)
    params = init_towers(model, jax.random.key(0), image_size=16, max_len=8)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    tokens = np.full((3, 8), EOS, np.int32)
    tokens[:, :3] = [[5, 6, 7], [5, 6, 8], [5, 6, 7]]
    tokens[2, 4] = 9                                     # a change before the pooled position
    apply = jax.jit(model.apply)
    zimg, ztxt, out = apply({"params": params}, images, tokens)
    np.testing.assert_allclose(np.linalg.norm(zimg, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ztxt, axis=1), 1, atol=1e-5)
    assert out["img/norm"].shape == (3,) and (np.asarray(out["img/norm"]) > 0).all()
    assert not np.allclose(ztxt[0], ztxt[1]) and not np.allclose(ztxt[0], ztxt[2])
    assert decode_variant("B/16") == {"width": 768, "depth": 12, "mlp_dim": 3072, "num_heads": 12, "patch_size": (16, 16)}
    with pytest.raises(ValueError, match="unknown variant"):
        decode_variant("XXL")
    with pytest.raises(ValueError, match="multiple of the patch"):
        tower_configs({"image_variant": "mu/5"}, vocab_size=20, image_size=16, max_len=8)


# ---------------------------------------------------------------------------------------------
# A user's folder: every bad input gets a clear error.


def _folder(tmp_path, n=3, size=16):
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 40 * i, np.uint8)).save(tmp_path / f"img{i}.png")
    return tmp_path


def test_folder_with_jsonl_and_csv_captions(tmp_path):
    root = _folder(tmp_path)
    with open(root / "captions.jsonl", "w") as f:
        f.write(json.dumps({"image": "img0.png", "captions": ["a dark square", "black"], "label": "dark"}) + "\n")
        f.write(json.dumps({"image": "img1.png", "caption": "a grey square", "label": "grey"}) + "\n\n")
        f.write(json.dumps({"image": "img2.png", "caption": "a light square", "label": "grey"}) + "\n")
    ds = data.ImageTextFolder(root, 16)
    assert ds.num_examples == 3 and ds.class_names == ("dark", "grey")
    out = ds.get([0, 0], epochs=[0, 1])
    assert out["captions"] == ["a dark square", "black"]          # captions rotate by epoch
    np.testing.assert_allclose(out["images"][0], -1.0)
    assert ds.eval_examples()["captions"][0] == ["a dark square", "black"]
    (root / "captions.jsonl").unlink()
    (root / "captions.csv").write_text("image,caption\nimg0.png,zero\nimg1.png,one\nimg2.png,two\n")
    assert data.ImageTextFolder(root, 16).get([2])["captions"] == ["two"]


@pytest.mark.parametrize("problem, match", [
    ("no_captions", "has no captions"),
    ("empty_jsonl", "is empty"),
    ("empty_csv", "is empty"),
    ("header_only_csv", "is empty"),
    ("wrong_size", "expected 16x16"),
    ("missing_image", "not in"),
    ("corrupt_image", "cannot read image"),
    ("empty_caption", "non-empty strings"),
    ("bad_json", "not valid JSON"),
    ("bad_columns", "columns"),
])
def test_folder_bad_input_is_a_clear_error(tmp_path, problem, match):
    root = _folder(tmp_path)
    good = "".join(json.dumps({"image": f"img{i}.png", "caption": f"image {i}"}) + "\n" for i in range(3))
    files = {
        "no_captions": {},
        "empty_jsonl": {"captions.jsonl": ""},
        "empty_csv": {"captions.csv": ""},
        "header_only_csv": {"captions.csv": "image,caption\n"},
        "wrong_size": {"captions.jsonl": good},
        "missing_image": {"captions.jsonl": good + json.dumps({"image": "nope.png", "caption": "x"}) + "\n"},
        "corrupt_image": {"captions.jsonl": good},
        "empty_caption": {"captions.jsonl": json.dumps({"image": "img0.png", "caption": "  "}) + "\n"},
        "bad_json": {"captions.jsonl": "{not json\n"},
        "bad_columns": {"captions.csv": "file,text\nimg0.png,x\n"},
    }[problem]
    for name, text in files.items():
        (root / name).write_text(text)
    if problem == "wrong_size":
        Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(root / "img1.png")
    if problem == "corrupt_image":
        (root / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=match):
        data.ImageTextFolder(root, 16)


def test_folder_resize_option(tmp_path):
    root = _folder(tmp_path, size=24)
    (root / "captions.csv").write_text("image,caption\nimg0.png,a\nimg1.png,b\nimg2.png,c\n")
    assert data.ImageTextFolder(root, 16, resize=True).get([1])["images"].shape == (1, 16, 16, 3)
