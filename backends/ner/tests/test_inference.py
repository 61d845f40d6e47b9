"""Windows over long texts, and batched inference that gives every word one set of probabilities."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from transformers import AutoTokenizer

from prelabel_ner.inference import tag_texts, windows
from prelabel_ner.models import prepare
from prelabel_ner.synthetic import corpus

# Building and training the test models takes seconds alone, minutes on a busy shared machine.
pytestmark = pytest.mark.timeout(900)


@given(st.integers(0, 400), st.integers(2, 64), st.integers(0, 80))
def test_windows_keep_every_token_once_with_context(length, size, overlap):
    cuts = windows(0, length, size, overlap)
    kept = [i for w in cuts for i in range(w.keep_from, w.keep_to)]
    assert kept == list(range(length))
    shared = min(overlap, size // 2)
    for w in cuts:
        assert 0 <= w.start <= w.keep_from <= w.keep_to <= w.end <= length
        assert w.end - w.start <= size
        # A kept token sits at least half the overlap from any cut that is not the text's edge.
        if w.start > 0:
            assert w.keep_from - w.start >= shared // 2
        if w.end < length:
            assert w.end - w.keep_to >= shared // 2


class ContextFree(torch.nn.Module):
    """A "model" whose logits depend on each token alone: windows must not change them."""

    def __init__(self, vocab: int, tags: list[str]) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = torch.nn.Embedding(vocab, len(tags))
        self.config = SimpleNamespace(max_position_embeddings=None, id2label=dict(enumerate(tags)))

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.table(input_ids) * attention_mask.unsqueeze(-1))


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    return AutoTokenizer.from_pretrained(tiny_dir)


def loaded(tokenizer, max_length):
    fake = ContextFree(len(tokenizer.get_vocab()), ["O", "B-PER", "I-PER"])
    return prepare("fake", tokenizer, fake, max_length=max_length, device="cpu")


def test_windowed_probabilities_equal_a_single_pass(tokenizer):
    texts = [text for text, _ in corpus(5, 3, sentences=9)] + ["short", "", "Anna 🎉 東京"]
    whole = tag_texts(loaded(tokenizer, 100_000), texts, batch_size=4, overlap=0)
    small = loaded(tokenizer, 12)
    assert small.window == 10  # [CLS] and [SEP] take two of the twelve
    cut = tag_texts(small, texts, batch_size=3, overlap=4)
    assert max(t.tokens for t in cut) > 5 * small.window  # several windows per long text
    for one, other in zip(whole, cut, strict=True):
        assert one.starts.tolist() == other.starts.tolist()
        assert one.ends.tolist() == other.ends.tolist()
        np.testing.assert_allclose(one.probabilities, other.probabilities, rtol=1e-6)


def test_words_span_their_tokens_in_code_points(tokenizer):
    text = "Cyberdyne 🤖 hired Zoë and Ma\u0301ria in 東京 ."
    (tagged,) = tag_texts(loaded(tokenizer, 64), [text], batch_size=1, overlap=0)
    words = [text[s:e] for s, e in zip(tagged.starts, tagged.ends, strict=True)]
    assert words == ["Cyberdyne", "🤖", "hired", "Zoë", "and", "Ma\u0301ria", "in", "東", "京", "."]
    assert tagged.probabilities.shape == (len(words), 3)


def test_padding_does_not_leak_into_shorter_texts(tiny_dir):
    from prelabel_ner.models import open_model

    model = open_model(str(tiny_dir), max_length=64, device="cpu")
    texts = [text for text, _ in corpus(9, 6)]
    batched = tag_texts(model, texts, batch_size=6, overlap=8)
    for text, together in zip(texts, batched, strict=True):
        (alone,) = tag_texts(model, [text], batch_size=1, overlap=8)
        np.testing.assert_allclose(together.probabilities, alone.probabilities, atol=1e-5)
