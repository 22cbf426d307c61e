"""The system prompt a chat template injects (helpers.lm.loading.template_system_prompt), read off formatted prompts."""

from __future__ import annotations

import pytest
from tiny_models import QWEN3_CHAT_TEMPLATE, _tokenizer

from helpers import lm as L

SMOLLM2_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# a template that injects its own default, in another layout than ChatML
INJECTING = (
    "{% if messages[0]['role'] != 'system' %}[SYS] Be brief and kind. [/SYS]{% endif %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}[SYS] {{ m['content'] }} [/SYS]"
    "{% else %}<|user|> {{ m['content'] }} {% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# Gemma-3-it style: a system message is merged into the first user turn, and none is added
GEMMA_IT_STYLE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
    "{% set rest = messages[1:] %}{% else %}{% set prefix = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}<start_of_turn>{{ m['role'] }}\n{{ prefix if loop.first else '' }}{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
# a template that refuses a system message outright
REFUSING = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
    "<|user|> {{ m['content'] }} {% endfor %}"
)


def _tok(template: str | None):
    tok = _tokenizer(chat=template is not None)
    if template is not None:
        tok.chat_template = template
    return tok


def test_injected_default_is_read_off_the_formatted_prompt():
    tok = _tok(INJECTING)
    assert L.template_system_prompt(tok) == "Be brief and kind."
    prompt = tok.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True)
    assert "Be brief and kind." in prompt  # the text reported is what every prompt carries


@pytest.mark.parametrize("template", [None, "tiny", QWEN3_CHAT_TEMPLATE, GEMMA_IT_STYLE, REFUSING])
def test_templates_that_add_no_system_prompt(template):
    from tiny_models import CHAT_TEMPLATE

    tok = _tok(CHAT_TEMPLATE if template == "tiny" else template)
    assert L.template_system_prompt(tok) is None
    if template is QWEN3_CHAT_TEMPLATE:
        assert L.template_system_prompt(tok, enable_thinking=False) is None


def test_notes_name_the_template_and_its_absence(llms):
    assert "adds no system prompt" in L.system_prompt_note(llms["qwen3"])
    assert "no chat template" in L.system_prompt_note(llms["llama"])


@pytest.mark.slow
def test_real_smollm2_tokenizer_injects_its_default_system_prompt():
    from transformers import AutoTokenizer

    from helpers.lm.loading import _resolve_source

    tok = AutoTokenizer.from_pretrained(
        _resolve_source(L.EMBEDDED_DEFAULT, enable_thinking=False, models_dir=None).location
    )
    assert L.template_system_prompt(tok) == SMOLLM2_DEFAULT
    with_own = tok.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], tokenize=False
    )
    assert "SmolLM" not in with_own  # the default appears only when no system message is given
