"""Shared test helpers: the theory instance zoo, hypothesis strategies, a tiny local LM, the
docs' Markdown renderer."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Costs spanning nine orders of magnitude, drawn log-uniformly.
log10_costs = st.floats(min_value=-3.0, max_value=6.0, allow_nan=False)
# Gradient norms from near-zero to large, plus exact zeros and ties via sampled_from.
gradient_values = st.one_of(
    st.floats(min_value=1e-8, max_value=1e4, allow_nan=False),
    st.sampled_from([0.0, 1.0, 1e-6]),
)


@st.composite
def instances(draw, min_n=1, max_n=40, positive_G=False):
    """(G, c) float64 arrays: G >= 0 not all zero (or > 0), c > 0."""
    n = draw(st.integers(min_n, max_n))
    g_elems = st.floats(min_value=1e-6, max_value=1e4) if positive_G else gradient_values
    G = draw(hnp.arrays(np.float64, n, elements=g_elems))
    if not np.any(G > 0):
        G[draw(st.integers(0, n - 1))] = 1.0
    c = 10.0 ** draw(hnp.arrays(np.float64, n, elements=log10_costs))
    return G, c


def dirichlet(rng: np.random.Generator, n: int, concentration: float = 1.0) -> np.ndarray:
    """A random point of the simplex with full support."""
    p = rng.dirichlet(np.full(n, concentration))
    p = np.maximum(p, 1e-300)
    return p / p.sum()


ZOO = {
    "paper_4_4": lambda: _paper_4_4(),
    "equal_costs": lambda: (np.array([1.0, 2.0, 3.0, 4.0]), np.full(4, 7.0)),
    "G_prop_sqrt_c": lambda: (np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 9.0])),
    "negatively_correlated": lambda: (
        np.array([4.0, 3.0, 2.0, 1.0]),
        np.array([1.0, 10.0, 100.0, 1000.0]),
    ),
    "positively_correlated": lambda: (
        np.array([1.0, 1.0, 1.0, 10.0]),
        np.array([1.0, 1.0, 1.0, 1000.0]),
    ),
    "zero_gradient_component": lambda: (np.array([0.0, 1.0, 2.0]), np.array([5.0, 1.0, 3.0])),
}


def _paper_4_4():
    from costsgd import least_squares

    prob = least_squares(rng=0)
    return prob.G, prob.c


def char_tokenizer(chars: str = "abcdefghij "):
    """A local tokenizer with one token per character: ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2.

    Built in code (no download), for TRL and torch tests and benchmarks.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )


def tiny_llama(
    vocab_size: int,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 64,
    seed: int = 0,
    special_tokens: bool = True,
):
    """A randomly initialised ``LlamaForCausalLM`` (``torch.manual_seed(seed)`` first).

    ``special_tokens`` sets pad/eos/bos ids 0/1/2, as :func:`char_tokenizer` numbers them.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    ids = {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2} if special_tokens else {}
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        **ids,
    )
    return LlamaForCausalLM(cfg)


def rendered_markdown(text: str):
    """``text`` as the docs render it (Python-Markdown with tables), parsed: an
    ``xml.etree`` element whose children are the rendered blocks."""
    import xml.etree.ElementTree as ET

    import markdown

    return ET.fromstring(f"<root>{markdown.markdown(text, extensions=['tables'])}</root>")
