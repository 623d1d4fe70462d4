"""Hugging Face SigLIP / SigLIP 2 checkpoints in the package's towers (constellations/siglip/pretrained.py).

Tiny random checkpoints are built offline with transformers' own classes (hidden 32, 2 layers, 32 px
images, patch 8, text length 16), saved with ``save_pretrained`` together with a tokenizer trained on the
fly (SigLIP: a SentencePiece unigram model in ``SiglipTokenizer``; SigLIP 2: a byte-pair model trained
with ``tokenizers`` in ``Siglip2Tokenizer``, set up as transformers' conversion script sets it up), then
loaded by the package and compared with transformers on the same inputs. Every parameter is randomized
(LayerNorm scales around 1, biases non-zero), so a transposed or swapped weight cannot hide.
"""

import io
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from constellations.siglip import pretrained as P  # noqa: E402

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
LENGTH, IMAGE, PATCH = 16, 32, 8
CORPUS = ["a photo of a cat", "a dog on the grass", "two red circles on a white background",
          "the quick brown fox jumps over the lazy dog", "a small blue square", "an apple"] * 10
TEXTS = ["A photo, of a CAT!", "dog", "two red circles", "the_quick brown fox jumps over the lazy dog " * 3]
T_PRIME, BIAS = 2.3, -7.5


def _randomize(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
        model.logit_scale.fill_(T_PRIME)
        model.logit_bias.fill_(BIAS)
    return model.eval()


def _sentencepiece(path):
    import sentencepiece as spm

    buf = io.BytesIO()   # SigLIP's c4_en layout: 0 <pad>, 1 </s> (EOS, also the pad), 2 <unk>
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=buf, vocab_size=60,
                                   model_type="unigram", hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, character_coverage=1.0, minloglevel=2)
    path.write_bytes(buf.getvalue())


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    from transformers import SiglipConfig, SiglipModel, SiglipTokenizer

    d = tmp_path_factory.mktemp("siglip")
    cfg = SiglipConfig(text_config=dict(vocab_size=64, max_position_embeddings=LENGTH, **SMALL),
                       vision_config=dict(image_size=IMAGE, patch_size=PATCH, **SMALL))
    torch.manual_seed(0)
    _randomize(SiglipModel(cfg)).save_pretrained(d)
    _sentencepiece(d / "source.model")
    SiglipTokenizer(str(d / "source.model"), model_max_length=LENGTH).save_pretrained(d)
    (d / "source.model").unlink()
    return d


def _bpe_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import Siglip2Tokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.normalizer = normalizers.Replace(" ", "\u2581")
    bpe.pre_tokenizer = pre_tokenizers.Split(pattern="\u2581", behavior="merged_with_next")
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=60, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"], show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    # as transformers' convert_siglip2_to_hf.py: no BOS, EOS appended, right padding; no maximum length
    return Siglip2Tokenizer(vocab=model["vocab"], merges=merges, add_bos_token=False, add_eos_token=True,
                            padding_side="right", model_input_names=["input_ids"])


@pytest.fixture(scope="module")
def siglip2_dir(tmp_path_factory):
    if not hasattr(transformers, "Siglip2Model"):
        pytest.skip("this transformers has no Siglip2Model")
    from transformers import Siglip2Config, Siglip2Model

    d = tmp_path_factory.mktemp("siglip2")
    cfg = Siglip2Config(text_config=dict(vocab_size=64, max_position_embeddings=LENGTH, **SMALL),
                        vision_config=dict(num_patches=(IMAGE // PATCH) ** 2, patch_size=PATCH, **SMALL))
    torch.manual_seed(1)
    _randomize(Siglip2Model(cfg)).save_pretrained(d)
    _bpe_tokenizer().save_pretrained(d)
    return d


def _images(n=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, IMAGE, IMAGE, 3)).astype(np.float32)


def _rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def _hf_outputs(d, kind, images, ids):
    model = (transformers.SiglipModel if kind == "siglip" else transformers.Siglip2Model).from_pretrained(d).eval()
    ids = torch.tensor(ids, dtype=torch.long)
    with torch.no_grad():
        if kind == "siglip":
            return model(input_ids=ids, pixel_values=torch.tensor(images.transpose(0, 3, 1, 2)))
        g, n = IMAGE // PATCH, len(images)   # NaFlex input: (p, p, C)-flattened patches of a g x g grid
        patches = images.reshape(n, g, PATCH, g, PATCH, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, g * g, -1)
        return model(input_ids=ids, pixel_values=torch.tensor(patches),
                     pixel_attention_mask=torch.ones(n, g * g, dtype=torch.long),
                     spatial_shapes=torch.tensor([[g, g]] * n))


@pytest.mark.parametrize("which", ["siglip", "siglip2"])
def test_embeddings_logits_t_and_b_match_transformers(which, request):
    d = request.getfixturevalue(f"{which}_dir")
    pre = P.load_pretrained(d)
    assert (pre.kind, pre.image_size, pre.max_len, pre.dim) == (which, IMAGE, LENGTH, 32)
    images = _images()
    ids = pre.tokenizer.encode(TEXTS[:3], pre.max_len)
    out = _hf_outputs(d, which, images, ids)
    zimg, ztxt = pre.embed_images(images, batch_size=2), pre.embed_tokens(ids)
    errors = {"image": _rel(zimg, out.image_embeds.numpy()), "text": _rel(ztxt, out.text_embeds.numpy()),
              "logits": _rel(pre.logits(zimg, ztxt), out.logits_per_image.numpy())}
    assert max(errors.values()) < 1e-5, errors
    assert pre.temperature == pytest.approx(np.exp(T_PRIME), rel=1e-6)
    assert pre.bias == pytest.approx(BIAS, rel=1e-6)
    np.testing.assert_allclose(np.linalg.norm(zimg, axis=1), 1, atol=1e-6)


@pytest.mark.parametrize("which", ["siglip", "siglip2"])
def test_tokenizer_matches_transformers_at_full_length(which, request):
    """Same ids as transformers' tokenizer with padding="max_length", max_length = the text length."""
    d = request.getfixturevalue(f"{which}_dir")
    pre = P.load_pretrained(d)
    hf = transformers.AutoTokenizer.from_pretrained(d)
    want = hf(TEXTS, padding="max_length", max_length=LENGTH, truncation=True)["input_ids"]
    got = pre.tokenizer.encode(TEXTS, pre.max_len)
    np.testing.assert_array_equal(got, np.asarray(want))
    assert got.shape == (len(TEXTS), LENGTH)
    eos = pre.tokenizer.eos_id
    assert np.all(got[:, -1] == (eos if which == "siglip" else got[:, -1]))   # SigLIP: EOS is the pad
    assert got[3, -1] == eos                                                   # sticky EOS after truncation


def test_siglip_towers_with_the_gemma_tokenizer_follow_the_tokenizer(siglip_dir, siglip2_dir, tmp_path):
    """SigLIP 2's fixed-resolution checkpoints are SiglipModel towers with SigLIP 2's Gemma tokenizer: the
    text contract (lower-casing only, <eos> then <pad>) follows the tokenizer files, not the tower."""
    d = _copy(siglip_dir, tmp_path / "siglip2-fixed")
    for f in ("spiece.model", "tokenizer_config.json"):
        (d / f).unlink()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(siglip2_dir / f, d / f)
    pre = P.load_pretrained(d)
    hf = transformers.AutoTokenizer.from_pretrained(d)
    want = hf(TEXTS, padding="max_length", max_length=LENGTH, truncation=True)["input_ids"]
    np.testing.assert_array_equal(pre.tokenizer.encode(TEXTS, LENGTH), np.asarray(want))
    assert pre.tokenizer.pad_id != pre.tokenizer.eos_id


def test_siglip2_without_a_maximum_length_does_not_pad_and_pools_a_real_token(siglip2_dir):
    """The pitfall: SigLIP 2's tokenizer config names no maximum length, so padding="max_length" without
    max_length does nothing; the last position is then EOS of each text instead of a pad, and the text
    embeddings change. The package always tokenizes to max_position_embeddings and refuses other lengths."""
    hf_tok = transformers.AutoTokenizer.from_pretrained(siglip2_dir)
    assert hf_tok.model_max_length > 10**6
    short = hf_tok(TEXTS[:3], padding="max_length")["input_ids"]
    assert max(len(r) for r in short) < LENGTH                              # silently not padded
    pre = P.load_pretrained(siglip2_dir)
    full = pre.tokenizer.encode(TEXTS[:3], pre.max_len)
    assert [list(r[:len(s)]) for r, s in zip(full, short)] == [list(s) for s in short]
    model = transformers.Siglip2Model.from_pretrained(siglip2_dir).eval()
    with torch.no_grad():
        z_short = [model.get_text_features(input_ids=torch.tensor([s])).pooler_output[0].numpy() for s in short]
    z_short = np.stack([z / np.linalg.norm(z) for z in z_short])
    z_full = pre.embed_tokens(full)
    cos = np.sum(z_short * z_full, axis=1)
    assert np.all(cos < 0.99), cos                                          # a different embedding per text
    with pytest.raises(ValueError, match="pad every text to the full length"):
        pre.embed_tokens(np.asarray([short[1]]))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        P.load_pretrained(siglip2_dir, max_len=64)


def test_hub_cache_layout(siglip_dir, tmp_path):
    repo = tmp_path / "models--google--siglip-tiny"
    shutil.copytree(siglip_dir, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    pre = P.load_pretrained(repo)
    assert pre.path == repo / "snapshots" / "0123abcd"
    assert P.load_pretrained(repo / "snapshots" / "0123abcd").kind == "siglip"


def test_safetensors_reader_matches_the_reference(siglip_dir, tmp_path):
    from safetensors.numpy import load_file
    from safetensors.torch import save_file

    ours, ref = P.read_safetensors(siglip_dir / "model.safetensors"), load_file(siglip_dir / "model.safetensors")
    assert ours.keys() == ref.keys()
    for k in ref:
        np.testing.assert_array_equal(ours[k], ref[k])
    x = torch.randn(3, 5)
    save_file({"w": x.to(torch.bfloat16)}, str(tmp_path / "bf16.safetensors"))
    np.testing.assert_array_equal(P.read_safetensors(tmp_path / "bf16.safetensors")["w"],
                                  x.to(torch.bfloat16).float().numpy())


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_bad_folders_say_what_is_wrong(siglip_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    with pytest.raises(ValueError, match="no such folder"):
        P.load_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        P.load_pretrained(tmp_path / "empty")

    d = _copy(siglip_dir, tmp_path / "clip")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "architectures": ["CLIPModel"], "model_type": "clip"}))
    with pytest.raises(ValueError, match="unknown architecture"):
        P.load_pretrained(d)

    d = _copy(siglip_dir, tmp_path / "missing")
    state = load_file(d / "model.safetensors")
    del state["text_model.encoder.layers.1.mlp.fc2.bias"]
    save_file(state, d / "model.safetensors")
    with pytest.raises(ValueError, match=r"text_model\.encoder\.layers\.1\.mlp\.fc2\.bias is missing"):
        P.load_pretrained(d)

    d = _copy(siglip_dir, tmp_path / "extra")
    state = load_file(d / "model.safetensors")
    state["vision_model.encoder.layers.2.layer_norm1.weight"] = np.ones(32, np.float32)
    save_file(state, d / "model.safetensors")
    with pytest.raises(ValueError, match=r"not used.*layers\.2\.layer_norm1"):
        P.load_pretrained(d)

    d = _copy(siglip_dir, tmp_path / "shape")
    cfg["vision_config"]["intermediate_size"] = 48
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"img/.*MlpBlock_0/Dense_0/bias has shape \(64,\); the config implies \(48,\)"):
        P.load_pretrained(d)

    d = _copy(siglip_dir, tmp_path / "notok")
    (d / "spiece.model").unlink()
    with pytest.raises(ValueError, match="no tokenizer"):
        P.load_pretrained(d)

    d = _copy(siglip_dir, tmp_path / "noweights")
    (d / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="no model.safetensors"):
        P.load_pretrained(d)


def _write_pngs(folder, n, seed):
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8)).save(folder / f"img{i}.png")


def test_embed_command_to_analysis_and_report(siglip_dir, tmp_path, capsys):
    """`embed --pretrained` -> `python -m constellations analyze` -> `report`, on a few generated PNGs."""
    from constellations.__main__ import main as analyze_main
    from constellations.siglip.__main__ import main

    val = tmp_path / "val"
    for c, wnid in enumerate(["n001", "n002", "n003"]):
        _write_pngs(val / wnid, 2, seed=c)
    names = tmp_path / "names.txt"
    names.write_text("n002\tgolden retriever\nn001\ttench\nn003\tred circle\n")
    out = tmp_path / "emb.npz"
    assert main(["embed", "--pretrained", str(siglip_dir), "--images", str(val), "--class-names", str(names),
                 "--out", str(out), "--batch-size", "4", "--no-progress"]) == 0
    with np.load(out) as z:
        assert z["image"].shape == (6, 32) and z["text"].shape == (3, 32)
        assert list(z["labels"]) == [0, 0, 1, 1, 2, 2] and list(z["texts"]) == ["golden retriever", "tench", "red circle"]
        image, text = z["image"], z["text"]
    # the same numbers as transformers' processor and model on those files
    from PIL import Image

    pre = P.load_pretrained(siglip_dir)
    files = [val / "n002" / "img0.png", val / "n001" / "img1.png"]
    pixels = transformers.SiglipImageProcessor(size={"height": IMAGE, "width": IMAGE})(
        [Image.open(f) for f in files], return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(pre.load_images(files), pixels.transpose(0, 2, 3, 1), atol=1e-6)
    hf = _hf_outputs(siglip_dir, "siglip", pixels.transpose(0, 2, 3, 1), pre.tokenizer.encode(["tench"], LENGTH))
    assert _rel(image[[0, 3]], hf.image_embeds.numpy()) < 1e-5
    assert _rel(text[[1]], hf.text_embeds.numpy()) < 1e-5
    capsys.readouterr()

    assert analyze_main(["analyze", str(out), str(out), "--image-key", "image", "--text-key", "text",
                         "--labels", str(out), "--labels-key", "labels", "--json", "-"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["layout"] == "labelled" and stats["n_images"] == 6

    caps = tmp_path / "caps.tsv"
    caps.write_text("n001/img0.png\ta tench\nn003/img1.png\ta red circle\nn002/img1.png\ta dog\n")
    out2 = tmp_path / "emb2.npz"
    assert main(["embed", "--pretrained", str(siglip_dir), "--images", str(val), "--captions", str(caps),
                 "--out", str(out2), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), str(out2), "--names", "tiny-classes", "tiny-captions",
                 "--out", str(tmp_path / "table.md")]) == 0
    table = (tmp_path / "table.md").read_text()
    assert capsys.readouterr().out == table
    lines = table.splitlines()
    assert lines[0].startswith("| checkpoint | d |") and "trimmed margin" in lines[0] and "xi" in lines[0]
    assert len(lines) == 4 and lines[2].startswith("| tiny-classes | 32 | 6 x 3 |")
    assert f"{stats['mean_margin']:.4f}" in lines[2] and f"{stats['xi']:.3f}" in lines[2]
    assert f"{np.exp(T_PRIME):.2f}" in lines[2]


def test_embed_command_errors(siglip_dir, tmp_path, capsys):
    from constellations.siglip.__main__ import main

    _write_pngs(tmp_path / "val" / "a", 1, 0)
    (tmp_path / "names.txt").write_text("one\ntwo\n")
    assert main(["embed", "--pretrained", str(siglip_dir), "--images", str(tmp_path / "val"),
                 "--class-names", str(tmp_path / "names.txt"), "--out", str(tmp_path / "e.npz")]) == 2
    assert "2 names for 1 subfolders" in capsys.readouterr().err
    assert main(["embed", "--pretrained", str(siglip_dir), "--out", str(tmp_path / "e.npz")]) == 2
    assert "needs --images" in capsys.readouterr().err


def _train_config(siglip_dir, **updates):
    from constellations.siglip.config import default_config, merge

    base = dict(total_steps=1, batch_size=8, log_steps=1, checkpoint_steps=100, progress=False,
                data=dict(name="shapes", image_size=IMAGE, max_len=LENGTH), model=dict(init_from=str(siglip_dir)),
                eval=dict(every_steps=0, num_examples=16, batch_size=16))
    return merge(merge(default_config(), base), updates)


def _same(a, b):
    import jax

    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_lit_from_a_checkpoint(siglip_dir, tmp_path):
    """model.init_from: the run starts from the checkpoint's towers, t, b and tokenizer; LiT keeps its image
    tower bit-identical; the relative-bias parameterization starts at b_rel = -b/t; sizes must match."""
    from constellations.siglip.train import build, init_params, train

    pre = P.load_pretrained(siglip_dir)
    lit = train(_train_config(siglip_dir, lit=dict(enabled=True)), tmp_path / "lit")
    assert _same(lit.params["img"], pre.params["img"]) and not _same(lit.params["txt"], pre.params["txt"])
    start = init_params(build(_train_config(siglip_dir, loss=dict(parameterization="relative_bias"))))
    assert float(start["loss"]["b_rel"]) == pytest.approx(-BIAS / np.exp(T_PRIME), rel=1e-6)
    assert _same(start["txt"], pre.params["txt"])
    with pytest.raises(ValueError, match="set data.image_size=32 data.max_len=16"):
        build(_train_config(siglip_dir, data=dict(image_size=16)))


@pytest.mark.slow
def test_fine_tune_from_a_checkpoint_then_evaluate(siglip_dir, tmp_path):
    from constellations.siglip.train import evaluate_checkpoint, train

    pre = P.load_pretrained(siglip_dir)
    tuned = train(_train_config(siglip_dir, total_steps=2), tmp_path / "ft")
    assert not _same(tuned.params["img"], pre.params["img"]) and not _same(tuned.params["txt"], pre.params["txt"])
    res = evaluate_checkpoint(tmp_path / "ft")
    assert res["step"] == 2 and 0 <= res["zeroshot/shape"] <= 1
