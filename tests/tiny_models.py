"""Tiny random-weight causal LMs built in-process (offline), shared by the tests.

A word-level tokenizer over a fixed vocabulary, with or without a chat template, and
Qwen3 / Llama configs of 3 layers x 32 hidden units. ``save_tiny_llm(dir, kind, chat)``
writes one as a Hugging Face folder that :func:`helpers.lm.load_llm` loads like any model.
"""

from __future__ import annotations

import torch

SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
WORDS = ["hello", "world", "imagine", "see", "a", "red", "apple", "cat", "dog", "sound", "look"] + [
    f"w{i}" for i in range(69)
]
VOCAB = {t: i for i, t in enumerate(SPECIAL + WORDS)}
PAD, UNK, BOS, EOS = 0, 1, 2, 3
CHAT_TEMPLATE = "{% for m in messages %}<|user|> {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
PROMPTS = [
    "hello world",
    "imagine a red apple w1 w2 w3 w4 w5",
    "see",
    "a cat and a dog w7 w8 w9 w10 w11 w12 w13 w14 w15 w16",
    "look a sound",
]


def _tokenizer(chat: bool):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(WordLevel(VOCAB, unk_token="<unk>"))
    tk.pre_tokenizer = WhitespaceSplit()
    tk.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", BOS)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def _model(kind: str):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    common = dict(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        head_dim=8,
        max_position_embeddings=128,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        tie_word_embeddings=False,
        initializer_range=0.3,  # peaky logits: greedy choices are far from ties
    )
    cfg = Qwen3Config(**common) if kind == "qwen3" else LlamaConfig(**common)
    torch.manual_seed({"qwen3": 1, "llama": 2}[kind])
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)


def save_tiny_llm(directory, kind: str = "qwen3", chat: bool = True):
    """Save a tiny ``kind`` ("qwen3" or "llama") model and its tokenizer into ``directory``."""
    _model(kind).save_pretrained(directory)
    _tokenizer(chat).save_pretrained(directory)
    return directory


#: The generation-prompt logic of Qwen3's real chat template (user turns and the assistant
#: opening; with ``enable_thinking=False`` an empty think block is pre-filled).
QWEN3_CHAT_TEMPLATE = (
    "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
QWEN3_SPECIAL = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]


def save_tiny_qwen3_thinking(directory, seed: int = 3, hidden_size: int = 32, layers: int = 3):
    """A tiny random Qwen3 whose tokenizer carries a Qwen3-style template with ``enable_thinking``."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    tok = _tokenizer(chat=False)
    tok.add_tokens(QWEN3_SPECIAL, special_tokens=True)
    tok.chat_template = QWEN3_CHAT_TEMPLATE
    cfg = Qwen3Config(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=2 * hidden_size,
        head_dim=8,
        max_position_embeddings=256,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        tie_word_embeddings=False,
        initializer_range=0.3,
    )
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
