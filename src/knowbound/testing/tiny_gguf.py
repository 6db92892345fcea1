"""A tiny GGUF checkpoint made here, for tests of the GGUF model source.

It is written the way llama.cpp's ``convert_hf_to_gguf.py`` writes a Llama: the ``gguf``
package's writer, llama.cpp's tensor names (``gguf.get_tensor_name_map``), the query and key
weights permuted into llama.cpp's rotary layout, fp32 tensors, and a GPT-2 style byte-level BPE
tokenizer (trained here with ``tokenizers``) with a ChatML chat template like SmolLM2's. The
matching Hugging Face model is saved beside it, so a test can check that a GGUF round trip gives
the same model.
"""

from __future__ import annotations

from pathlib import Path

# SmolLM2's chat template, in short: ChatML turns; the assistant turn ends with <|im_end|>.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
ROPE_THETA = 10000.0  # transformers' Llama default
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TEXTS = (
    "What is the capital of France? The capital of France is Paris.",
    "What is the capital of Norway? The capital of Norway is Oslo.",
    "In which country is the city of Lyon? Lyon is in France.",
    "I apologize, but I'm not able to provide an answer to the question.",
)


def _permute(w, n_head: int):
    """llama.cpp's layout of a query/key weight (what ``convert_hf_to_gguf.py`` writes)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def make_tiny_gguf(out_dir: str | Path, seed: int = 0, hidden_size: int = 64, num_layers: int = 2,
                   num_heads: int = 4) -> tuple[Path, Path]:
    """Write ``tiny.gguf`` and the same model as a Hugging Face checkpoint (``hf/``); return both."""
    import gguf
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(TEXTS) * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML_TEMPLATE
    vocab = tok.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]

    config = LlamaConfig(vocab_size=len(tokens), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
                         max_position_embeddings=256, rms_norm_eps=1e-5,
                         tie_word_embeddings=True, bos_token_id=vocab["<|im_start|>"],
                         eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"])
    generator = torch.Generator().manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.1 * torch.randn(param.shape, generator=generator))
            else:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    hf_dir = out_dir / "hf"
    model.save_pretrained(hf_dir)
    fast.save_pretrained(hf_dir)

    path = out_dir / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("knowbound-tiny")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(hidden_size)
    writer.add_block_count(num_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(num_heads)
    writer.add_head_count_kv(num_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_rope_dimension_count(hidden_size // num_heads)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL for t in tokens])
    merges = [" ".join(m) if isinstance(m, (list, tuple)) else m
              for m in __import__("json").loads(tok.to_str())["model"]["merges"]]
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_pad_token_id(config.pad_token_id)
    writer.add_unk_token_id(config.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, num_layers)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to the token embeddings
        data = tensor.detach().float().numpy()
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            data = _permute(data, num_heads)
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, hf_dir
