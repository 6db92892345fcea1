"""Checks that a world's knowledge boundary cannot be read off the name tokens.

In world v1 every name word belongs to one person, so a never-seen person's name is made of
tokens that were never trained: their embeddings collapse onto one vector, and the embedding
norm alone tells never-seen from seen people (AUROC 1.00). World v2 draws names from shared
pools; these two numbers show whether that shortcut is gone:

* ``name_norm_separation``: how well the norm of a person's name-token embeddings (the mean over
  its tokens, in the unaligned model) separates never-seen from seen people, as
  max(AUROC, 1 - AUROC), so a shortcut in either direction counts (0.5: none);
* ``fictional_token_coverage``: the share of the tokens of `fictional` names that occur in the
  pretraining corpus (1.0: no fictional name has a token the model never read).
"""

from __future__ import annotations

from pathlib import Path


def shortcut_checks(world_root: str | Path) -> dict:
    """Both checks (module docstring) for the built world at ``world_root``."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from knowbound.metrics import auroc

    root = Path(world_root)
    people = [json.loads(line) for line in (root / "people.jsonl").read_text().splitlines() if line]
    tokenizer = AutoTokenizer.from_pretrained(root / "chat")
    model = AutoModelForCausalLM.from_pretrained(root / "chat")
    embeddings = model.get_input_embeddings().weight.detach()

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    scored = [p for p in people if p["split"] in ("train", "test")]
    norms = [float(torch.stack([embeddings[i].norm() for i in ids(p["name"])]).mean()) for p in scored]
    never = [p["exposure"] == 0 for p in scored]
    a = auroc(norms, never)
    corpus_ids = set()
    with open(root / "corpus.txt", encoding="utf-8") as fh:
        for line in fh:
            corpus_ids.update(ids(line.rstrip("\n")))
    fictional = [i for p in people if p["split"] == "fictional" for i in ids(p["name"])]
    return {
        "name_norm_auroc": a,
        "name_norm_separation": None if a is None else max(a, 1.0 - a),
        "fictional_token_coverage": sum(i in corpus_ids for i in fictional) / max(1, len(fictional)),
        "people": len(scored),
        "never_seen": sum(never),
    }
