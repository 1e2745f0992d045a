"""``assistant_only_loss`` with a base model whose chat template TRL cannot mask: one line, before any run starts."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from governance.errors import ConfigError
from pipelines.base_model import CHAT_TEMPLATE
from pipelines.train_sft import require_assistant_mask

#: ChatML as SmolLM2 and many instruct models ship it: no {% generation %} markers, not a template TRL patches
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _tokenizer(template: str) -> PreTrainedTokenizerFast:
    words = Tokenizer(models.WordLevel({"<unk>": 0, "hi": 1}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>", eos_token="<unk>")
    tokenizer.chat_template = template
    return tokenizer


def test_a_template_without_generation_markers_is_refused_only_when_the_mask_is_asked_for():
    with pytest.raises(ConfigError) as err:
        require_assistant_mask(_tokenizer(CHATML), True, "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert str(err.value) == (
        "params.yaml: train_sft.trl.assistant_only_loss: true, but the chat template of "
        "models/SmolLM2-135M-Instruct.Q4_1.gguf has no {% generation %} markers and TRL cannot add them; set it to "
        "false (loss on every token) or give the model a template with {% generation %}...{% endgeneration %} "
        "around assistant output"
    )
    require_assistant_mask(_tokenizer(CHATML), False, "any")  # loss on every token: any template does


def test_the_built_in_template_carries_the_markers():
    require_assistant_mask(_tokenizer(CHAT_TEMPLATE), True, "builtin:tiny")
