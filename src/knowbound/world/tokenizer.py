"""A word-level tokenizer trained locally with `tokenizers`, with a chat template.

Every word of the training texts becomes one token, so a name is one token per name word and
decoding restores the text exactly (spaces are kept as a leading "▁" as in SentencePiece). The
result is a ``PreTrainedTokenizerFast`` saved with ``save_pretrained``: the rest of knowbound
loads it exactly like a tokenizer from the Hub.
"""

from __future__ import annotations

from typing import Iterable

# Special tokens. The chat template wraps turns in role markers and ends an assistant turn with
# END, which is also the tokenizer's eos token so that generation stops there.
UNK, PAD, BOS, END = "<unk>", "<pad>", "<s>", "<|end|>"
USER, ASSISTANT, SYSTEM = "<|user|>", "<|assistant|>", "<|system|>"
SPECIAL_TOKENS = [UNK, PAD, BOS, END, USER, ASSISTANT, SYSTEM]

# Jinja chat template in the form transformers expects (`apply_chat_template`). The assistant
# turn is wrapped in {% generation %} so TRL can mask everything else when training on
# completions only.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}" + SYSTEM + "{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}" + ASSISTANT +
    "{% generation %}{{ message['content'] }}" + END + "{% endgeneration %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)


def _pre_tokenizer():
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(r"\n"), behavior="isolated"),
            pre_tokenizers.Punctuation(behavior="isolated"),
        ]
    )


def train_word_tokenizer(texts: Iterable[str], min_frequency: int = 1):
    """Train a word-level ``PreTrainedTokenizerFast`` on ``texts``, with the chat template set.

    Words never seen in ``texts`` become ``<unk>``: pass every text the model must be able to
    write (prompts, refusals, confidence phrases) along with the corpus.
    """
    from tokenizers import Tokenizer, decoders, models, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = _pre_tokenizer()
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=min_frequency)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=END,
        additional_special_tokens=[USER, ASSISTANT, SYSTEM],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
