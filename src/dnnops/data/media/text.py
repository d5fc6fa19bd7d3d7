"""A tokenizer trained on the training split, stored with the version, and the one
function that turns text into the model's token ids.

Hugging Face ``tokenizers`` (WordPiece or BPE) learns the vocabulary; the whole
tokenizer is one JSON document, so it travels inside the version's preprocessing and
loads without pickle. Ids 0, 1 and 2 are ``[PAD]``, ``[UNK]`` and ``[CLS]``: every
sequence starts with ``[CLS]`` and is padded with zeros to ``max_length``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dnnops.errors import DataError

PAD, UNK, CLS = 0, 1, 2
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]"]
TokenizerKind = Literal["wordpiece", "bpe"]


class TextError(DataError):
    """A text that cannot be used, with the rule it broke."""

    def __init__(self, rule: Literal["empty", "too_long", "not_text"], message: str) -> None:
        super().__init__(message)
        self.rule = rule


def train_tokenizer(
    texts: Iterable[str], *, kind: TokenizerKind, vocab_size: int, lowercase: bool
) -> str:
    """A tokenizer learned from ``texts``, as its JSON document."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer: Tokenizer
    trainer: trainers.Trainer
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
        )
    else:
        tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
        )
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    if [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] != [PAD, UNK, CLS]:
        raise DataError("the tokenizer did not reserve [PAD], [UNK], [CLS] as ids 0, 1, 2")
    document: str = tokenizer.to_str()
    return document


@dataclass(frozen=True)
class Tokens:
    """Token ids ``(N, max_length)`` and, per text, its tokens before truncation and how
    many of them were unknown (monitoring's descriptors)."""

    ids: np.ndarray
    lengths: np.ndarray
    unknown: np.ndarray


class TextEncoder:
    """A stored tokenizer, applied the same way in training, serving and batch."""

    def __init__(self, document: str, max_length: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_str(document)
        except Exception as exc:  # tokenizers raises its own Exception type
            raise DataError(f"the stored tokenizer cannot be read: {exc}") from None
        self.max_length = max_length
        self.vocab_size = self._tokenizer.get_vocab_size()

    def encode(self, texts: Sequence[str]) -> Tokens:
        """``[CLS]`` and the first ``max_length - 1`` tokens of each text, zero-padded."""
        count = len(texts)
        ids = np.zeros((count, self.max_length), dtype=np.int64)
        lengths = np.zeros(count, dtype=np.int64)
        unknown = np.zeros(count, dtype=np.int64)
        if not count:
            return Tokens(ids, lengths, unknown)
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        room = self.max_length - 1
        for row, encoding in enumerate(encoded):
            tokens = np.asarray(encoding.ids, dtype=np.int64)
            lengths[row] = len(tokens)
            unknown[row] = int(np.count_nonzero(tokens == UNK))
            kept = tokens[:room]
            ids[row, 0] = CLS
            ids[row, 1 : 1 + len(kept)] = kept
        return Tokens(ids, lengths, unknown)

    def text_of(self, ids: np.ndarray) -> str:
        """The text these ids read back to, special tokens left out."""
        return str(self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=True))

    def names_of(self, ids: np.ndarray) -> list[str]:
        """The tokens these ids stand for (token attributions name them)."""
        return [self._tokenizer.id_to_token(int(i)) or "[UNK]" for i in ids]
