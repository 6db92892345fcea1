"""The ``hf`` backend: any transformers causal LM, batched, with its own small sampling loop.

Why a loop of our own rather than ``model.generate``: the probe samples thousands of questions
M times, and three things matter that ``generate`` does not give together —

* each prompt is prefilled once and its KV cache copied to its ``n`` sample rows;
* every row draws its randomness from its own stream, seeded from (seed, prompt, sample index)
  (``base.row_seed``), so a completion does not depend on its batch mates, on the batch size, or
  on which batches a resumed run skipped — and global RNG state is never touched;
* the per-step work is a few tensor ops on the whole batch (no per-row Python); rows that have
  finished leave the batch (their cache rows dropped), and the loop ends when every row has.

Prompts are left-padded and sorted by length; position ids come from the attention mask exactly
as in ``generate``. Where the chat template puts at least ``SHARED_PREFIX_MIN`` tokens before
every user message (a system prompt: ``template_prefix``), they run once per batch on one row and
their KV cache is copied to every row; the rest of each prompt is left-padded after them
(``_prefix_pad``). Greedy output then equals ``model.generate(do_sample=False)`` up to float
rounding, and exactly where the template's prefix is shorter. On out-of-memory
a batch is halved and retried; a single row that still does not fit becomes an error completion.
"""

from __future__ import annotations

import inspect
import os
import random
from typing import Any, Sequence

import torch

from knowbound.backends.base import check_params, cut_at_stop, error_completions, row_seed
from knowbound.errors import KnowboundError
from knowbound.types import Completion, SamplingParams

# Sequences per forward pass. A 1-3M parameter model on CPU runs fastest with about 1,000 rows.
DEFAULT_MAX_BATCH_SIZE = 1024
# With stop strings, active rows are decoded every this many steps to end them early. The text is
# always cut exactly afterwards, so this only trades Python work against wasted steps.
STOP_CHECK_EVERY = 4
# Finished rows leave the batch once they are a quarter of it (and at least this many): answers of
# very different lengths then cost what they generate, not the longest one's length.
COMPACT_MIN_ROWS = 8
# logprobs_of materialises [rows, length, vocab] logits; keep one batch below this many floats.
LOGIT_BUDGET = 2**27
# The tokens a chat template puts before every user message (its system prompt) run once, on one
# row, when there are at least this many.
SHARED_PREFIX_MIN = 8


def _cache_of(output) -> Any:
    """The KV cache a forward pass returns (``cache`` in recent transformers, ``past_key_values`` in older)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def band_layers(n_layers: int) -> tuple[int, int]:
    """The middle band of a model's layers, as (first, last) indices into ``hidden_states`` (0 is
    the embeddings): from 30% to 70% of the depth, where probes of truthfulness find the most
    signal (the semantic-entropy-probe work reads the middle layers). For 30 layers: 9 to 21."""
    low = max(1, round(0.3 * n_layers))
    return low, max(low, round(0.7 * n_layers))


def pick_device(device: str | None = None) -> torch.device:
    """The given device, else cuda, then mps, then cpu."""
    if device and device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The given dtype, else bf16 on a cuda device that supports it, fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype and dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class HFBackend:
    """A transformers causal LM as a backend (``get_backend("hf", model=PATH_OR_NAME, ...)``).

    ``model`` is a Hub name or local path (or an already loaded model, then pass ``tokenizer`` as an
    object too); ``adapter`` a PEFT adapter path merged into the weights; ``prompt_format='chat'``
    wraps each prompt as a user message with the tokenizer's chat template when it has one;
    ``threads`` sets torch's (process-wide) CPU thread count.
    """

    name = "hf"

    def __init__(
        self,
        model: Any,
        *,
        tokenizer: Any = None,
        adapter: str | None = None,
        prompt_format: str = "chat",
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        threads: int | None = None,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if prompt_format not in ("chat", "plain"):
            raise KnowboundError(f"prompt_format must be 'chat' or 'plain', got '{prompt_format}'")
        if max_batch_size < 1:
            raise KnowboundError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if threads:
            # Process-wide, by request only: on a CPU shared with other work, fewer threads than
            # cores avoids threads waiting on each other at every small op.
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        if isinstance(model, str):
            self.model_name = model
            model = os.path.expanduser(model)
            if model.startswith(("/", "./", "../")) and not os.path.exists(model):
                # a local path, not a Hub name: say so, not the Hub's "Repo id must be in the form ..."
                raise KnowboundError(f"cannot load model '{model}': no such file or directory")
            try:
                model = AutoModelForCausalLM.from_pretrained(model, dtype=self.dtype)
            except OSError as exc:
                raise KnowboundError(f"cannot load model '{model}': {exc}") from exc
        else:
            self.model_name = getattr(model, "name_or_path", type(model).__name__)
        if adapter:
            from knowbound.errors import require

            peft = require("peft", "train")
            # Merged once here, so sampling runs at the base model's speed.
            model = peft.PeftModel.from_pretrained(model, adapter).merge_and_unload()
        self.model = model.to(self.device).eval()
        # The KV cache's keyword: `cache` in recent transformers (where `past_key_values` is
        # deprecated, to be removed in 5.40), `past_key_values` in older ones.
        self._cache_kw = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        if tokenizer is None or isinstance(tokenizer, str):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer or self.model_name)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.chat = prompt_format == "chat" and bool(getattr(tokenizer, "chat_template", None))
        self.max_batch_size = max_batch_size
        self._static_cache = True  # turned off for models whose cache cannot be preallocated
        self._template_ids: list[int] | None = None  # template_prefix(), computed once
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
        self.eos_ids = torch.tensor(sorted(e for e in eos if e is not None), device=self.device)

    # -- prompts ---------------------------------------------------------------------------------

    def format_prompt(self, prompt: str) -> str:
        """The text the model sees: the chat template around a user message, or the prompt itself."""
        if not self.chat:
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each formatted prompt (the chat template brings its own special tokens)."""
        texts = [self.format_prompt(p) for p in prompts]
        return self.tokenizer(texts, add_special_tokens=not self.chat)["input_ids"]

    def _left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            if s:
                ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
                mask[r, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    def template_prefix(self) -> list[int]:
        """The tokens the chat template puts before every user message (its system prompt, the
        user turn's opening): the common prefix of a few different messages' encodings. Empty
        without a chat template."""
        if self._template_ids is None:
            probes = self.encode_prompts(["Q", "a", "1", " x", "?", "What"]) if self.chat else []
            self._template_ids = list(os.path.commonprefix(probes)) if probes else []
        return self._template_ids

    def _prefix_pad(self, seqs: Sequence[Sequence[int]], keep: int | Sequence[int] = 1):
        """The chat template's prefix split off ``seqs``, and the rest left-padded after it.

        Returns ``(prefix, ids, mask, positions)``: ``prefix`` a [1, p] tensor of the template's
        prefix (``template_prefix``), or None where it is shorter than ``SHARED_PREFIX_MIN`` or a
        row does not begin with it or keeps fewer than ``keep`` tokens (per row, or one number for
        all) after it; ``ids`` and ``positions`` [rows, width] for the rest, positions counting on
        from p; ``mask`` [rows, p + width], the prefix's columns included.

        The prefix depends on the tokenizer alone, never on the batch: a prefix that only one
        batch's prompts share would move the split, and with it every row's rounding, with the
        batch mates."""
        prefix_ids = self.template_prefix()
        p = len(prefix_ids)
        keeps = [keep] * len(seqs) if isinstance(keep, int) else list(keep)
        if p < SHARED_PREFIX_MIN or any(len(s) - k < p or list(s[:p]) != prefix_ids for s, k in zip(seqs, keeps)):
            ids, mask = self._left_pad(seqs)
            return None, ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask = self._left_pad([s[p:] for s in seqs])
        positions = (mask.cumsum(-1) - 1).clamp(min=0) + p
        prefix = torch.tensor([prefix_ids], dtype=torch.long, device=self.device)
        ones = torch.ones((len(seqs), p), dtype=mask.dtype, device=self.device)
        return prefix, ids, torch.cat([ones, mask], dim=1), positions

    def _run_prefix(self, prefix: torch.Tensor, rows: int, cache: Any = None, total: int | None = None) -> Any:
        """The shared prefix's KV cache, run on one row and copied to ``rows`` rows. ``cache``: a
        preallocated static cache of ``total`` positions to fill, or None for the model's own."""
        p = prefix.shape[1]
        mask = torch.zeros((1, total or p), dtype=torch.long, device=self.device)
        mask[:, :p] = 1
        extra = {self._cache_kw: cache} if cache is not None else {}
        out = self.model(input_ids=prefix, attention_mask=mask, position_ids=torch.arange(p, device=self.device)[None],
                         use_cache=True, logits_to_keep=1, **extra)
        cache = _cache_of(out)
        cache.reorder_cache(torch.zeros(rows, dtype=torch.long, device=self.device))
        return cache

    # -- generation ------------------------------------------------------------------------------

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per prompt; see the module docstring for batching and seeds."""
        check_params(params)
        if not prompts:
            return []
        encoded = self.encode_prompts(prompts)
        # No seed: fresh entropy from the OS, still without touching torch's global generator.
        seed = params.seed if params.seed is not None else random.SystemRandom().getrandbits(63)
        # One row per (prompt, sample); rows of a prompt stay adjacent so it is prefilled once.
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        rows = [(i, j) for i in order for j in range(params.n)]
        out: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        for start in range(0, len(rows), self.max_batch_size):
            chunk = rows[start:start + self.max_batch_size]
            for (i, j), completion in zip(chunk, self._run_halving(chunk, prompts, encoded, params, seed)):
                out[i][j] = completion
        return out  # type: ignore[return-value]

    def _run_halving(self, rows, prompts, encoded, params, seed) -> list[Completion]:
        try:
            return self._run_rows(rows, prompts, encoded, params, seed)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled here
            if not _is_oom(exc):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(rows) == 1:
                return error_completions(f"out of memory: {exc}".splitlines()[0], 1)
            half = len(rows) // 2
            # Later batches start at the size that fits instead of failing first every time.
            self.max_batch_size = min(self.max_batch_size, half)
            return (self._run_halving(rows[:half], prompts, encoded, params, seed)
                    + self._run_halving(rows[half:], prompts, encoded, params, seed))

    def _uniforms(self, rows, prompts, params, seed) -> torch.Tensor:
        """One uniform number per (row, step), from the row's own generator."""
        draws = []
        for i, j in rows:
            g = torch.Generator()
            g.manual_seed(row_seed(seed, prompts[i], params.first_index + j))
            draws.append(torch.rand(params.max_new_tokens, generator=g))
        return torch.stack(draws).to(self.device)

    def _new_cache(self, max_len: int):
        """A preallocated KV cache: decoding then writes in place instead of concatenating the
        whole cache every step. ``None`` (the model's own dynamic cache) where unsupported."""
        if not self._static_cache:
            return None
        from transformers import StaticCache

        try:
            return StaticCache(config=self.model.config, max_cache_len=max_len)
        except Exception:  # noqa: BLE001 - any model the static cache cannot describe
            self._static_cache = False
            return None

    def _prefill(self, seqs, steps):
        """Run the prompts once; returns (cache, last logits, whether the cache is static, the
        attention mask over the prompts' columns, the prompts' position ids)."""
        prefix, ids, mask, positions = self._prefix_pad(seqs)
        width = mask.shape[1]
        total = width + steps
        cache = self._new_cache(total)
        if cache is not None:
            full = torch.zeros((ids.shape[0], total), dtype=mask.dtype, device=self.device)
            full[:, :width] = mask
            try:
                if prefix is not None:
                    cache = self._run_prefix(prefix, ids.shape[0], cache, total)
                out = self.model(input_ids=ids, attention_mask=full, position_ids=positions,
                                 **{self._cache_kw: cache}, use_cache=True, logits_to_keep=1)
                return _cache_of(out), out.logits[:, -1, :], True, mask, positions
            except Exception as exc:  # noqa: BLE001 - fall back to the dynamic cache below
                if _is_oom(exc):
                    raise
                self._static_cache = False
        extra = {self._cache_kw: self._run_prefix(prefix, ids.shape[0])} if prefix is not None else {}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1, **extra)
        return _cache_of(out), out.logits[:, -1, :], False, mask, positions

    @torch.inference_mode()
    def _run_rows(self, rows, prompts, encoded, params, seed) -> list[Completion]:
        unique = list(dict.fromkeys(i for i, _ in rows))
        slot = {i: u for u, i in enumerate(unique)}
        steps, batch = params.max_new_tokens, len(rows)
        cache, logits, static, mask, positions = self._prefill([encoded[i] for i in unique], steps)
        width = mask.shape[1]
        expand = torch.tensor([slot[i] for i, _ in rows], device=self.device)
        if len(rows) != len(unique):
            cache.reorder_cache(expand)  # index_select: copies each prompt's cache to its rows
            logits = logits[expand]
        full_mask = torch.zeros((batch, width + steps), dtype=mask.dtype, device=self.device)
        full_mask[:, :width] = mask[expand]
        next_pos = positions[expand, -1] + 1
        uniforms = None if params.greedy else self._uniforms(rows, prompts, params, seed)

        tokens = torch.full((batch, steps), self.tokenizer.pad_token_id, dtype=torch.long, device=self.device)
        logps = torch.zeros((batch, steps), dtype=torch.float32, device=self.device)
        done = torch.zeros(batch, dtype=torch.bool, device=self.device)
        hit_eos = torch.zeros(batch, dtype=torch.bool, device=self.device)
        n_gen = torch.zeros(batch, dtype=torch.long, device=self.device)  # tokens incl. the end token
        live = torch.arange(batch, device=self.device)  # the rows still in the model's batch
        for t in range(steps):
            scores = logits.float()
            tok = self._choose(scores, None if uniforms is None else uniforms[live, t], params)
            lp = scores.gather(1, tok[:, None]).squeeze(1) - scores.logsumexp(-1)
            finished = done[live]
            tokens[live, t] = tok.masked_fill(finished, self.tokenizer.pad_token_id)
            logps[live, t] = lp.masked_fill(finished, 0.0)
            n_gen[live] += (~finished).long()
            eos_now = torch.isin(tok, self.eos_ids) & ~finished
            hit_eos[live] |= eos_now
            done[live] |= eos_now
            if params.stop and (t + 1) % STOP_CHECK_EVERY == 0:
                done |= self._stopped(tokens[:, : t + 1], n_gen, done, params.stop)
            if t + 1 == steps or bool(done.all()):
                break
            finished = done[live]
            if int(finished.sum()) >= max(COMPACT_MIN_ROWS, len(live) // 4):
                # Drop finished rows from the batch: the rest no longer pay for them.
                keep = (~finished).nonzero().squeeze(1)
                cache.reorder_cache(keep)
                live, tok, full_mask, next_pos = live[keep], tok[keep], full_mask[keep], next_pos[keep]
            full_mask[:, width + t] = 1
            step_mask = full_mask if static else full_mask[:, : width + t + 1]
            out = self.model(input_ids=tok[:, None], attention_mask=step_mask,
                             position_ids=next_pos[:, None], **{self._cache_kw: cache}, use_cache=True)
            logits = out.logits[:, -1, :]
            next_pos = next_pos + 1
        return self._finish(tokens.cpu(), logps.cpu(), n_gen.cpu(), hit_eos.cpu(), params)

    @staticmethod
    def _choose(scores: torch.Tensor, u: torch.Tensor | None, params: SamplingParams) -> torch.Tensor:
        """Next token per row: argmax, or inverse-CDF sampling with the row's uniform ``u``."""
        if u is None:
            return scores.argmax(-1)
        logits = scores / params.temperature
        if params.top_p < 1.0:
            logits, index = logits.sort(-1, descending=True)
            probs = logits.softmax(-1)
            # Keep the smallest head of the sorted distribution whose mass reaches top_p.
            probs = probs.masked_fill(probs.cumsum(-1) - probs >= params.top_p, 0.0)
        else:
            index, probs = None, logits.softmax(-1)
        cdf = probs.cumsum(-1)
        pick = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)
        pick = pick.clamp(max=cdf.shape[-1] - 1)
        return (pick if index is None else index.gather(1, pick)).squeeze(1)

    def _stopped(self, tokens, n_gen, done, stop: tuple[str, ...]) -> torch.Tensor:
        """Rows (not yet done) whose text so far contains a stop string."""
        active = (~done).nonzero().squeeze(1).tolist()
        lengths = n_gen.tolist()
        seqs = [row[: lengths[r]] for r, row in zip(active, tokens[active].tolist())]
        texts = self.tokenizer.batch_decode(seqs, skip_special_tokens=True)
        hit = [False] * len(done)
        for r, text in zip(active, texts):
            hit[r] = cut_at_stop(text, stop)[1]
        return torch.tensor(hit, device=done.device)

    def _finish(self, tokens, logps, n_gen, hit_eos, params: SamplingParams) -> list[Completion]:
        lengths, ended = n_gen.tolist(), hit_eos.tolist()
        # The answer is what came before the end token (which is counted in n_gen when hit).
        seqs = [row[: lengths[r] - int(ended[r])] for r, row in enumerate(tokens.tolist())]
        texts = self.tokenizer.batch_decode(seqs, skip_special_tokens=True)
        result = []
        for r, text in enumerate(texts):
            n_tokens = lengths[r]  # the log-prob includes the end token when there is one
            text, stopped = cut_at_stop(text, params.stop)
            if stopped:
                n_tokens = self._tokens_to_stop(seqs[r], params.stop)
            reason = "stop" if stopped or ended[r] else "length"
            result.append(Completion(text=text, finish_reason=reason, logprob=float(logps[r, :n_tokens].sum())))
        return result

    def _tokens_to_stop(self, seq: list[int], stop: tuple[str, ...]) -> int:
        """How many tokens it took for a stop string to appear (the log-prob covers those)."""
        for k in range(1, len(seq) + 1):
            if cut_at_stop(self.tokenizer.decode(seq[:k], skip_special_tokens=True), stop)[1]:
                return k
        return len(seq)

    # -- scoring ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def logprobs_of(self, prompts: list[str], continuations: list[list[str]]) -> list[list[float]]:
        """Sum log-prob of each continuation after its chat-formatted prompt, batched."""
        if len(prompts) != len(continuations):
            raise KnowboundError("logprobs_of needs one list of continuations per prompt")
        contexts = self.encode_prompts(prompts)
        items = []  # (prompt index, continuation index, context ids, continuation ids)
        for i, conts in enumerate(continuations):
            text = self.format_prompt(prompts[i])
            for c, cont in enumerate(conts):
                items.append((i, c, contexts[i], self._continuation_ids(text, contexts[i], cont)))
        vocab = self.model.get_output_embeddings().weight.shape[0]
        items.sort(key=lambda it: len(it[2]) + len(it[3]))
        out = [[0.0] * len(conts) for conts in continuations]
        start = 0
        while start < len(items):
            # Grow the batch while its (sorted, so growing) padded logits stay within the budget.
            size = 1
            while start + size < len(items) and size < self.max_batch_size:
                longest = len(items[start + size][2]) + len(items[start + size][3])
                if (size + 1) * longest * vocab > LOGIT_BUDGET:
                    break
                size += 1
            batch = items[start:start + size]
            for (i, c, _, _), value in zip(batch, self._score_batch(batch)):
                out[i][c] = value
            start += size
        return out

    @torch.inference_mode()
    def answer_states(self, prompts: list[str], answers: list[str], progress: bool = False,
                      share_prompts: bool = True) -> list[dict[str, Any]]:
        """What the model computes over each (prompt, answer): the answer's token log-probs and
        hidden states.

        Returns one dict per pair: ``token_logprobs`` (a list of floats, empty for an empty answer)
        and ``hidden``, a float32 tensor [5, hidden size]:

        0-3. the middle and the last layer at the last prompt token (prompt-middle, prompt-last)
             and at the last answer token (answer-middle, answer-last);
        4. answer-band: the mean over the answer's tokens and over the middle band of layers
           (``band_layers``), the last prompt token's for an empty answer.

        The features of ``knowbound.pik``. ``progress``: a progress bar on stderr.

        ``share_prompts`` (the default): each distinct prompt runs once, and its distinct answers
        run on its KV cache, so the probe's M samples of a question (mostly prompt tokens, often
        the same answer) cost little more than one. False: one full forward pass per pair (the
        reference the shared pass is tested and benchmarked against).
        """
        from knowbound.sampling import _progress

        if len(prompts) != len(answers):
            raise KnowboundError("answer_states needs one answer per prompt")
        if not prompts:
            return []
        contexts = self.encode_prompts(prompts)
        conts = [self._continuation_ids(self.format_prompt(prompts[i]), contexts[i], a) if a else []
                 for i, a in enumerate(answers)]
        out: list[dict[str, Any]] = [{} for _ in prompts]
        bar = _progress(len(prompts), progress)
        if share_prompts:
            self._shared_states(contexts, conts, out, bar)
        else:
            self._flat_states(contexts, conts, out, bar)
        bar.close()
        return out

    def _offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and character offsets of ``text`` (a formatted prompt, perhaps with an answer
        after it); the entity features need a fast tokenizer for the offsets."""
        if not getattr(self.tokenizer, "is_fast", False):
            raise KnowboundError(f"{self.model_name}: the entity features need a fast tokenizer (character offsets)")
        enc = self.tokenizer(text, add_special_tokens=not self.chat, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def _span_logprobs(self, seqs: list[list[int]], spans: list[list[int]], progress: bool = False) -> list[list[float]]:
        """For each token sequence, the log-probability of each token at the positions ``spans``
        names (each > 0), from left-padded batches of ascending length within the logit budget."""
        from knowbound.sampling import _progress

        out: list[list[float]] = [[] for _ in seqs]
        order = sorted(range(len(seqs)), key=lambda k: len(seqs[k]))
        vocab = self.model.get_output_embeddings().weight.shape[0]
        bar = _progress(len(seqs), progress)
        done = 0
        while done < len(order):
            size = 1  # ascending lengths: the batch's last row is its widest
            while (done + size < len(order) and size < self.max_batch_size
                   and (size + 1) * len(seqs[order[done + size]]) * vocab <= LOGIT_BUDGET):
                size += 1
            batch = order[done:done + size]
            done += size
            ids, mask = self._left_pad([seqs[k] for k in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            width = ids.shape[1]
            for r, k in enumerate(batch):
                at = torch.tensor([width - len(seqs[k]) + i - 1 for i in spans[k]], device=logits.device)
                out[k] = logits[r, at].float().log_softmax(-1).gather(1, ids[r, at + 1][:, None]).squeeze(1).tolist()
            bar.update(len(batch))
        bar.close()
        return out

    @torch.inference_mode()
    def entity_logprobs(self, prompts: list[str], entities: list[str],
                        progress: bool = False) -> list[tuple[float, float]]:
        """The model's surprise at the entity each prompt names: (the summed log-probability of the
        entity's tokens after its first, the log-probability of its first token) in the formatted
        prompt, one pass per distinct pair (batched, left-padded). The entity's tokens are those
        whose characters overlap its last occurrence in the prompt (a token may run past it, as
        "'?" after "Homyel'"). The entity features of ``knowbound.pik`` (``build.pik_entity``).
        Needs a fast tokenizer (character offsets)."""
        if len(prompts) != len(entities):
            raise KnowboundError("entity_logprobs needs one entity per prompt")
        pairs = list(dict.fromkeys(zip(prompts, entities)))
        seqs, spans = [], []
        for prompt, entity in pairs:
            text = self.format_prompt(prompt)
            at = text.rfind(entity) if entity else -1
            if at < 0:
                raise KnowboundError(f"the entity {entity!r} does not occur in its prompt {prompt!r}")
            ids, offsets = self._offsets(text)
            span = [i for i, (a, b) in enumerate(offsets) if a < at + len(entity) and b > at and b > a]
            if not span or span[0] == 0:
                raise KnowboundError(f"the entity {entity!r} has no token, or opens the prompt, in {prompt!r}")
            seqs.append(ids)
            spans.append(span)
        found = {pair: (float(sum(lp[1:])), float(lp[0]))
                 for pair, lp in zip(pairs, self._span_logprobs(seqs, spans, progress))}
        return [found[pair] for pair in zip(prompts, entities)]

    @torch.inference_mode()
    def answer_logprobs_after(self, prompts: list[str], heads: list[str], tails: list[str],
                              progress: bool = False) -> list[float]:
        """The summed log-probability of each ``tail`` after the formatted prompt and ``head``: an
        answer split where it stops naming the entity (``knowbound.pik.entity_contrast``), how
        sure the model is of what it says about it. The tail's tokens are those that end past the
        split (a token that takes the split's space with it counts). One pass per distinct triple,
        batched and left-padded; 0 for an empty tail."""
        if not len(prompts) == len(heads) == len(tails):
            raise KnowboundError("answer_logprobs_after needs one answer head and tail per prompt")
        found: dict[tuple[str, str, str], float] = {}
        keys, seqs, spans = [], [], []
        for key in dict.fromkeys(zip(prompts, heads, tails)):
            prompt, head, tail = key
            text = self.format_prompt(prompt) + head
            ids, offsets = self._offsets(text + tail)
            span = [i for i, (a, b) in enumerate(offsets) if b > len(text) and b > a and i > 0]
            if not tail.strip() or not span:
                found[key] = 0.0
                continue
            keys.append(key)
            seqs.append(ids)
            spans.append(span)
        found.update({key: float(sum(lp)) for key, lp in zip(keys, self._span_logprobs(seqs, spans, progress))})
        return [found[key] for key in zip(prompts, heads, tails)]

    def _flat_states(self, contexts, conts, out, bar) -> None:
        items = [(i, contexts[i], cont) for i, cont in enumerate(conts)]
        order = sorted(range(len(items)), key=lambda k: len(items[k][1]) + len(items[k][2]))
        vocab = self.model.get_output_embeddings().weight.shape[0]
        start = 0
        while start < len(order):
            size = 1
            while start + size < len(order) and size < self.max_batch_size:
                it = items[order[start + size]]
                if (size + 1) * (len(it[1]) + len(it[2])) * vocab > LOGIT_BUDGET:
                    break
                size += 1
            batch = [items[k] for k in order[start:start + size]]
            ids, mask = self._left_pad([ctx + cont for _, ctx, cont in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            result = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                output_hidden_states=True)
            logp = result.logits[:, :-1].float().log_softmax(-1).gather(2, ids[:, 1:, None]).squeeze(2)
            states = result.hidden_states
            middle, last = states[len(states) // 2], states[-1]
            low, high = band_layers(len(states) - 1)
            band = torch.stack(states[low:high + 1]).float().mean(0)  # [batch, width, hidden]
            width = ids.shape[1]
            for r, (i, _, cont) in enumerate(batch):
                prompt_end = width - len(cont) - 1
                tokens = logp[r, width - 1 - len(cont):].tolist() if cont else []
                answer_band = band[r, prompt_end + 1:].mean(0) if cont else band[r, prompt_end]
                out[i] = {"token_logprobs": tokens,
                          "hidden": torch.stack([middle[r, prompt_end].float(), last[r, prompt_end].float(),
                                                 middle[r, -1].float(), last[r, -1].float(), answer_band]).cpu()}
            start += size
            bar.update(size)

    def _shared_states(self, contexts, conts, out, bar) -> None:
        # Units of work: a distinct prompt with up to max_batch_size of its distinct non-empty
        # answers, each answer with the pairs that share it.
        by_prompt: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = {}
        for i, (ctx, cont) in enumerate(zip(contexts, conts)):
            by_prompt.setdefault(tuple(ctx), {}).setdefault(tuple(cont), []).append(i)
        units: list[tuple[list[int], list[tuple[list[int], list[int]]], list[int]]] = []
        for ctx, answers in by_prompt.items():
            empty = answers.pop((), [])
            spoken = [(list(cont), rows) for cont, rows in answers.items()]
            chunks = [spoken[k:k + self.max_batch_size] for k in range(0, len(spoken), self.max_batch_size)] or [[]]
            units += [(list(ctx), chunk, empty if k == 0 else []) for k, chunk in enumerate(chunks)]
        units.sort(key=lambda u: len(u[0]))
        vocab = self.model.get_output_embeddings().weight.shape[0]
        config = self.model.config
        per_token = config.hidden_size * (config.num_hidden_layers + 1)  # the hidden states kept
        start = 0
        while start < len(units):
            # Grow the batch while its answer rows, their logits and the prompts' states fit.
            size, rows, longest = 1, len(units[start][1]), max((len(c) for c, _ in units[start][1]), default=0)
            while start + size < len(units):
                unit = units[start + size]
                more, long = rows + len(unit[1]), max([longest] + [len(c) for c, _ in unit[1]])
                if (more > self.max_batch_size or more * long * vocab > LOGIT_BUDGET
                        or (size + 1) * len(unit[0]) * per_token > LOGIT_BUDGET):
                    break
                size, rows, longest = size + 1, more, long
            batch = units[start:start + size]
            self._shared_batch(batch, out)
            start += size
            bar.update(sum(len(r) for u in batch for _, r in u[1]) + sum(len(u[2]) for u in batch))

    def _shared_batch(self, batch, out) -> None:
        prefix, ids, mask, positions = self._prefix_pad([ctx for ctx, _, _ in batch])
        extra = {self._cache_kw: self._run_prefix(prefix, ids.shape[0])} if prefix is not None else {}
        first = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                           output_hidden_states=True, logits_to_keep=1, **extra)
        states = first.hidden_states
        low, high = band_layers(len(states) - 1)
        p_middle, p_last = states[len(states) // 2][:, -1].float(), states[-1][:, -1].float()
        p_band = torch.stack([s[:, -1] for s in states[low:high + 1]]).float().mean(0)
        p_logp = first.logits[:, -1].float().log_softmax(-1)
        for u, (_, _, empty) in enumerate(batch):
            for i in empty:
                out[i] = {"token_logprobs": [],
                          "hidden": torch.stack([p_middle[u], p_last[u], p_middle[u], p_last[u], p_band[u]]).cpu()}
        answers = [(u, cont, rows) for u, (_, spoken, _) in enumerate(batch) for cont, rows in spoken]
        if not answers:
            return
        # The answers, right-padded, on their prompt's cache rows.
        width = max(len(cont) for _, cont, _ in answers)
        a_ids = torch.full((len(answers), width), self.tokenizer.pad_token_id, dtype=torch.long)
        a_mask = torch.zeros((len(answers), width), dtype=torch.long)
        for r, (_, cont, _) in enumerate(answers):
            a_ids[r, :len(cont)] = torch.tensor(cont, dtype=torch.long)
            a_mask[r, :len(cont)] = 1
        unit = torch.tensor([u for u, _, _ in answers], device=self.device)
        cache = _cache_of(first)
        cache.reorder_cache(unit)
        a_ids, a_mask = a_ids.to(self.device), a_mask.to(self.device)
        a_positions = (mask.sum(-1)[unit, None] + torch.arange(width, device=self.device)[None, :])
        result = self.model(input_ids=a_ids, attention_mask=torch.cat([mask[unit], a_mask], dim=1),
                            position_ids=a_positions, **{self._cache_kw: cache}, output_hidden_states=True)
        logp = result.logits[:, :-1].float().log_softmax(-1).gather(2, a_ids[:, 1:, None]).squeeze(2)
        first_logp = p_logp[unit].gather(1, a_ids[:, :1]).squeeze(1)
        a_states = result.hidden_states
        middle, last = a_states[len(a_states) // 2], a_states[-1]
        band = torch.stack(a_states[low:high + 1]).float().mean(0)  # [answers, width, hidden]
        for r, (u, cont, rows) in enumerate(answers):
            n = len(cont)
            state = {"token_logprobs": [float(first_logp[r])] + logp[r, :n - 1].tolist(),
                     "hidden": torch.stack([p_middle[u], p_last[u], middle[r, n - 1].float(), last[r, n - 1].float(),
                                            band[r, :n].mean(0)]).cpu()}
            for i in rows:
                out[i] = state if i == rows[0] else {"token_logprobs": list(state["token_logprobs"]),
                                                     "hidden": state["hidden"].clone()}

    def _continuation_ids(self, text: str, context: list[int], continuation: str) -> list[int]:
        # Encode context+continuation together where the split is clean (as lm-eval-harness does),
        # so that merges across the boundary are scored the way the model would write them.
        whole = self.tokenizer(text + continuation, add_special_tokens=not self.chat)["input_ids"]
        if whole[: len(context)] == context:
            return whole[len(context):]
        return self.tokenizer(continuation, add_special_tokens=False)["input_ids"]

    def _score_batch(self, batch) -> list[float]:
        # The template's prefix must stop before each row's last context token, whose logits score
        # the continuation's first token.
        longest = max(len(cont) for _, _, _, cont in batch)
        prefix, ids, mask, positions = self._prefix_pad([ctx + cont for _, _, ctx, cont in batch],
                                                        keep=[len(cont) + 1 for _, _, _, cont in batch])
        extra = {self._cache_kw: self._run_prefix(prefix, ids.shape[0])} if prefix is not None else {}
        # Left-padded, so every continuation ends the row: logits for the last (longest + 1)
        # positions are all it needs, not the vocabulary at every prompt token.
        keep = min(ids.shape[1], longest + 1)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep,
                            **extra).logits
        logp = logits[:, :-1].float().log_softmax(-1).gather(2, ids[:, ids.shape[1] - keep + 1:, None]).squeeze(2)
        values = []
        for r, (_, _, _, cont) in enumerate(batch):
            values.append(float(logp[r, logp.shape[1] - len(cont):].sum()) if cont else 0.0)
        return values
