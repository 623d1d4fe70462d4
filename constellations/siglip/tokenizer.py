"""Tokenizers with big_vision's text contract: lower-cased canonical text, sticky EOS, EOS padding.

``encode(texts, max_len)`` returns int32 (N, max_len) ids where a caption of k tokens becomes
``ids[:max_len - 1] + [EOS]`` (the EOS survives truncation: "sticky") followed by EOS up to
``max_len``. Since the text tower has no attention mask and pools the *last* position, that
position must always hold EOS: padding to the full length is what makes last-token pooling work
(``siglip_reference.md`` section 5, item 12).

Ids shared by both tokenizers: 0 = pad (never produced), 1 = EOS (also the pad value), 2 = UNK.

* :class:`WordTokenizer`: a closed word vocabulary, for the templated data sets.
* :class:`SentencePieceTokenizer`: a unigram SentencePiece model trained on the user's captions
  (needs the optional ``sentencepiece`` package).
"""

from __future__ import annotations

import base64
import io as _io
import json
import re
import string
from typing import Iterable, Sequence

import numpy as np

PAD, EOS, UNK = 0, 1, 2
_PUNCT = re.compile("[" + re.escape(string.punctuation) + "]")


def canonicalize_text(text: str) -> str:
    """Lower-case, '_' -> ' ', punctuation removed, whitespace collapsed (big_vision's canonicalization)."""
    if not isinstance(text, str):
        raise ValueError(f"captions must be strings; got {type(text).__name__}")
    text = text.replace("_", " ").lower()
    text = _PUNCT.sub("", text)
    return " ".join(text.split())


def _pack(rows: Sequence[Sequence[int]], max_len: int) -> np.ndarray:
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1; got {max_len}")
    out = np.full((len(rows), max_len), EOS, np.int32)
    for i, ids in enumerate(rows):
        ids = list(ids)[: max_len - 1]
        out[i, : len(ids)] = ids
    return out


class WordTokenizer:
    """Word-level tokenizer over a closed vocabulary (unknown words -> UNK)."""

    kind = "word"

    def __init__(self, words: Iterable[str]):
        words = sorted({canonicalize_text(w) for w in words} - {""})
        for w in words:
            if " " in w:
                raise ValueError(f"vocabulary entries must be single words; got {w!r}")
        self.words = words
        self._index = {w: i + 3 for i, w in enumerate(words)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "WordTokenizer":
        return cls(w for t in texts for w in canonicalize_text(t).split())

    @property
    def vocab_size(self) -> int:
        return len(self.words) + 3

    def tokens(self, text: str) -> list[int]:
        return [self._index.get(w, UNK) for w in canonicalize_text(text).split()]

    def encode(self, texts: Sequence[str], max_len: int) -> np.ndarray:
        """(N, max_len) int32 ids with sticky EOS and EOS padding (see the module docstring)."""
        return _pack([self.tokens(t) for t in texts], max_len)

    def decode(self, ids) -> str:
        inv = {i: w for w, i in self._index.items()}
        return " ".join(inv.get(int(i), "<unk>") for i in ids if int(i) not in (PAD, EOS))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "words": self.words}


class SentencePieceTokenizer:
    """A SentencePiece model (unigram by default) with the ids 0 pad, 1 EOS, 2 UNK."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        spm = _import_sentencepiece()
        self.model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        if self._sp.eos_id() != EOS or self._sp.unk_id() != UNK:
            raise ValueError("SentencePiece model must use eos_id=1 and unk_id=2 (train it with SentencePieceTokenizer.train)")

    @classmethod
    def train(cls, texts: Sequence[str], *, vocab_size: int = 1000, model_type: str = "unigram") -> "SentencePieceTokenizer":
        """Train on canonicalized ``texts``; ``vocab_size`` is an upper limit for small corpora."""
        spm = _import_sentencepiece()
        texts = [canonicalize_text(t) for t in texts]
        texts = [t for t in texts if t]
        if not texts:
            raise ValueError("cannot train a SentencePiece model: every caption is empty")
        buf = _io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=buf, vocab_size=int(vocab_size), model_type=model_type,
            hard_vocab_limit=False, pad_id=PAD, eos_id=EOS, unk_id=UNK, bos_id=-1, character_coverage=1.0,
            minloglevel=2,
        )
        return cls(buf.getvalue())

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def tokens(self, text: str) -> list[int]:
        return list(self._sp.encode(canonicalize_text(text)))

    def encode(self, texts: Sequence[str], max_len: int) -> np.ndarray:
        return _pack([self.tokens(t) for t in texts], max_len)

    def decode(self, ids) -> str:
        return self._sp.decode([int(i) for i in ids if int(i) not in (PAD, EOS)])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": base64.b64encode(self.model_proto).decode("ascii")}


def _import_sentencepiece():
    try:
        import sentencepiece
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the SentencePiece tokenizer needs the optional 'sentencepiece' package: "
                          "pip install sentencepiece (or use tokenizer='word')") from e
    return sentencepiece


def tokenizer_from_dict(d: dict):
    """Rebuild a tokenizer saved with ``to_dict`` (as stored in a workdir's tokenizer.json)."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "word":
        return WordTokenizer(d["words"])
    if kind == "sentencepiece":
        return SentencePieceTokenizer(base64.b64decode(d["model"]))
    raise ValueError(f"unknown tokenizer description (kind {kind!r})")


def tokenizer_to_json(tok) -> str:
    return json.dumps(tok.to_dict())
