"""The run config: typed dataclasses with documented defaults, one YAML file, CLI overrides.

``load_config(path, overrides=["probe.m=5", ...])`` reads YAML, applies ``key=value``
overrides (values parsed as YAML), checks every key against the dataclasses — an unknown or
mistyped key is an error naming the file and the key — and returns a ``RunConfig``. The resolved
config is saved with every run (``config.yaml``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowbound.errors import DataError, KnowboundError
from knowbound.baselines import BASELINES
from knowbound.methods import DEFAULT_METHOD_NAMES

DEFAULT_METHODS = DEFAULT_METHOD_NAMES  # every registered method but the opt-in ones (GRPO), in registry order
DEFAULT_BASELINES = tuple(BASELINES)


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapter settings; ``target_modules='all-linear'`` finds every linear layer but the head."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "all-linear"


@dataclass(frozen=True)
class TrainConfig:
    """How to fine-tune. Defaults suit the knowledge world's tiny models."""

    kind: str = "sft"  # sft | dpo | grpo
    epochs: float = 3.0
    lr: float = 5e-4
    batch_size: int = 32
    grad_accum: int = 1
    warmup_ratio: float = 0.05
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_length: int = 256
    seed: int = 0
    lora: LoraSpec | None = None
    qlora: bool = False  # 4-bit base weights; needs CUDA and bitsandbytes
    dpo_beta: float = 0.1
    sft_weight: float = 0.0  # DPO only: add this much SFT loss on the chosen answer (RPO)
    # GRPO only (methods grpo, grpo-confidence): completions sampled per prompt (batch_size counts
    # completions and must be a multiple), their token budget, the KL weight to the starting model
    # (0: no reference model, TRL's default), and where RL starts: "warm" from the trained model
    # of the method's warm-start method (which must be in the run), "unaligned" from the unaligned model.
    grpo_generations: int = 8
    grpo_max_new_tokens: int = 48
    grpo_beta: float = 0.0
    grpo_init: str = field(default="warm", metadata={"choices": ("warm", "unaligned")})
    # The three-way reward's break-even: a wrong answer costs t / (1 - t), so answering pays when a
    # sampled answer is right with probability > t. 0.5 is TruthRL's (-1 for a wrong answer).
    grpo_threshold: float = 0.5
    # Keep the token embeddings fixed. Full fine-tuning otherwise moves the embeddings of the
    # training questions' names only, so training and test names stop looking alike.
    freeze_embeddings: bool = False
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    logging_steps: int = 50
    extra: dict[str, Any] = field(default_factory=dict)  # passed to SFTConfig/DPOConfig/GRPOConfig as is (use_vllm ...)




@dataclass(frozen=True)
class ModelSection:
    """The unaligned model: a knowledge-world preset, or a Hub name / local path."""

    world: str | None = None  # tiny | small | micro: build (or reuse) that world and use its chat model
    world_seed: int = 0
    world_dir: str | None = None  # cache directory for worlds (default ~/.cache/knowbound/worlds)
    # Hub name, local path, a GGUF file (path ending in .gguf), or a named real model (smollm2-135m);
    # ignored when `world` is set. GGUF files are converted once to safetensors in the cache.
    path: str | None = None
    gguf_file: str | None = None  # a GGUF file inside the directory `path`
    # Stop strings for the unaligned model's answers (probe, samples, its eval), e.g. ["\n"]: a chat
    # model that rambles past its answer costs every sample the full token budget. Trained models
    # stop where their training answers ended.
    stop: tuple[str, ...] = ()
    backend: str = "hf"  # hf | openai (training and eval of trained models always use hf)
    base_url: str | None = None  # openai backend only
    api_key_env: str = "OPENAI_API_KEY"
    # openai backend only: fields added to every request, e.g. {top_k: 0, min_p: 0.0, repeat_penalty:
    # 1.0} for llama.cpp's server, which otherwise samples with its own top-k, min-p and penalty.
    extra_body: dict[str, Any] = field(default_factory=dict)
    prompt_format: str = "chat"  # chat | plain
    dtype: str = "auto"
    device: str | None = None
    max_batch_size: int = 1024
    threads: int | None = None


@dataclass(frozen=True)
class SetSection:
    """A question set: ``world:<set>`` for the knowledge world, or a path / Hub dataset name."""

    source: str
    adapter: str | None = None
    split: str | None = None
    limit: int | None = None
    # What the set tests, for the report's summary: in-domain | ood | unanswerable (only a refusal
    # is right, like PUQA) | known (refusing is wrong, like PKQA). None: from the adapter or source.
    role: str | None = field(default=None, metadata={"choices": ("in-domain", "ood", "unanswerable", "known")})


@dataclass(frozen=True)
class DataSection:
    train: SetSection = field(default_factory=lambda: SetSection("world:train"))
    eval: dict[str, SetSection] = field(default_factory=lambda: {
        s: SetSection(f"world:{s}") for s in ("test", "paraphrase", "fictional", "popular")})


@dataclass(frozen=True)
class ProbeSection:
    m: int = 10  # sampled answers per question (the paper: 10)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48
    batch_size: int = 256  # questions per chunk (resume granularity)
    prompt_variants: tuple[str, ...] = ()  # extra prompts for SliCK's greedy-over-prompts
    # Adaptive probing (knowbound.adaptive, docs/adaptive-probing.md): draw the m samples in rounds
    # of round_size and stop a question once its known/unknown label at build.tau (and its SliCK
    # category) is settled -- for certain, or with posterior-predictive probability >= confidence
    # of matching the label all m samples would give. For ABSOLUTE, DPO and P(IK); the CONFIDENCE
    # methods, MULTISAMPLE and the self-consistency baseline then see fewer samples. Off: all m.
    adaptive: bool = False
    round_size: int = 2
    confidence: float = 0.98


@dataclass(frozen=True)
class BuildSection:
    tau: float = 0.1  # known if expected accuracy >= tau (the paper's: 1 of 10 samples correct)
    # official: known if the greedy answer is correct or expected accuracy >= tau (the official
    # code's ABSOLUTE and DPO); samples: expected accuracy >= tau only.
    known_rule: str = field(default="official", metadata={"choices": ("official", "samples")})
    # The confidence the CONFIDENCE methods are trained to state for k correct samples of M:
    # greedy: P(greedy answer correct | k), measured on the probe (what the stated confidence is
    # scored against at eval, where answers are greedy); samples: k / M (the paper's).
    confidence_target: str = field(default="greedy", metadata={"choices": ("greedy", "samples")})
    select: int | None = None  # keep this many training questions ...
    balance: bool = False  # ... half greedy-correct, half not (the paper's TriviaQA setup)
    # A question meta key (e.g. kind): within each of its values keep as many known questions (the
    # ABSOLUTE rule at tau and known_rule) as unknown ones, dropping the majority's surplus (seeded),
    # so the key alone tells a method nothing about what is known.
    balance_within: str | None = None
    multisample_max: int | None = None  # cap on multisample rows per question
    # The P(IK) head also learns from the probe's sampled answers, not only the greedy ones: ten
    # times the rows, a forward pass each in the train stage (see knowbound.pik).
    pik_samples: bool = False
    # A question meta key naming the entity each question asks about ("name" on the knowledge
    # world, "entity" on GeoNames): the P(IK) head may also read the model's surprise at that name
    # in the question, two more numbers from a pass over the prompt (see knowbound.pik). None: not.
    pik_entity: str | None = None
    # With pik_entity: how many other entities' tails (their words after the first) the head swaps
    # in to measure how specific the answer is to the asked one (knowbound.pik.entity_contrast);
    # each costs a pass over every answer in the train and eval stages. 0: not.
    pik_swaps: int = field(default=0, metadata={"minimum": 0})


@dataclass(frozen=True)
class EvalSection:
    max_new_tokens: int = 64
    bootstrap: int = 1000  # resamples; by person on the knowledge world (meta.person), else by question
    ece_bins: int = 15
    # Baselines scored beside the methods (knowbound.baselines): always-abstain, oracle,
    # exposure-rule (knowledge world only), self-consistency.
    baselines: tuple[str, ...] = field(default=DEFAULT_BASELINES, metadata={"choices": DEFAULT_BASELINES})
    # k of self-consistency, sampled like the probe's answers (None: the probe's M; at most M, since
    # its threshold is fitted on the probe's samples).
    consistency_samples: int | None = None
    # Every refusal threshold fitted on `train` (R-Tuning's, the P(IK) head's, the baselines')
    # maximises honesty there; with this set, only among thresholds that withhold at most this
    # share of the training questions' right answers (an accuracy budget, e.g. 0.03).
    max_accuracy_drop: float | None = None
    # With max_accuracy_drop: the confidence at which the budget must hold for new questions, not
    # only on `train` (its upper confidence bound over people, knowledge world, or questions;
    # knowbound.baselines.fit_threshold). None: fitted at the budget, which new questions then
    # exceed about half the time.
    budget_confidence: float | None = field(default=None, metadata={"minimum": 0.5, "below": 1.0})


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    seed: int = 0
    runs_dir: str = "runs"
    prompt: str = "typical"  # prompt template for probing, training and eval (knowbound.prompts)
    grading: str = "default"  # default | paper
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    probe: ProbeSection = field(default_factory=ProbeSection)
    build: BuildSection = field(default_factory=BuildSection)
    methods: tuple[str, ...] = DEFAULT_METHODS
    train: TrainConfig = field(default_factory=TrainConfig)  # defaults for every trained method
    method_train: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method overrides of `train`
    eval: EvalSection = field(default_factory=EvalSection)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


def to_dict(obj: Any) -> Any:
    """A config as plain data (tuples as lists), for YAML and hashing."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def config_hash(obj: Any) -> str:
    """Short stable hash of any config-like object."""
    return hashlib.sha256(json.dumps(to_dict(obj), sort_keys=True).encode()).hexdigest()[:12]


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(tp: Any, value: Any, where: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where, path)
            except KnowboundError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise DataError(path, f"expected a mapping, got {type(value).__name__}", field=where)
        return _build(tp, value, where, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise DataError(path, f"expected a mapping, got {type(value).__name__}", field=where)
        return {str(k): _coerce(args[1], v, f"{where}.{k}", path) for k, v in value.items()}
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise DataError(path, f"expected a list, got {type(value).__name__}", field=where)
        return tuple(_coerce(args[0], v, f"{where}[{i}]", path) for i, v in enumerate(value))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 (PyYAML) reads 1e-3 as a string: it wants 1.0e-3
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise DataError(path, f"expected {tp.__name__}, got {value!r}", field=where)
        return value
    return value


def _build(cls: type, data: dict, where: str, path: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise DataError(path, f"unknown key (known: {', '.join(sorted(names))})", field=prefix + unknown[0])
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k, path) for k, v in data.items()}
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        if choices and f.name in kwargs:
            value = kwargs[f.name]
            for item in value if isinstance(value, tuple) else (value,):
                if item is not None and item not in choices:
                    raise DataError(path, f"unknown value {item!r} (known: {', '.join(choices)})",
                                    field=f"{where}.{f.name}" if where else f.name)
        minimum, below = f.metadata.get("minimum"), f.metadata.get("below")
        value = kwargs.get(f.name)
        if minimum is not None and value is not None and value < minimum:
            raise DataError(path, f"must be at least {minimum}, got {value!r}",
                            field=f"{where}.{f.name}" if where else f.name)
        if below is not None and value is not None and value >= below:
            raise DataError(path, f"must be below {below}, got {value!r}",
                            field=f"{where}.{f.name}" if where else f.name)
    return cls(**kwargs)


def build_section(cls: type, data: dict, where: str) -> Any:
    """A config dataclass from plain data, checked like a config file (errors name ``where``)."""
    return _build(cls, data, where, "<config>")


def _check_method_train(cfg: RunConfig, path: str) -> None:
    """Each ``method_train`` entry's keys and values, checked when the config is read rather than
    when its method trains, stages later (the train stage merges them into ``train`` again)."""
    for method, keys in cfg.method_train.items():
        if not isinstance(keys, dict):
            raise DataError(path, f"expected a mapping of train keys, got {type(keys).__name__}",
                            field=f"method_train.{method}")
        _build(TrainConfig, {**to_dict(TrainConfig()), **keys}, f"method_train.{method}", path)


def _set_path(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise KnowboundError(f"override '{dotted}': '{k}' is not a section")
    node[keys[-1]] = value


def parse_config(data: dict, path: str = "<config>", overrides: list[str] = ()) -> RunConfig:
    """A ``RunConfig`` from plain data plus ``key=value`` overrides."""
    import yaml

    data = json.loads(json.dumps(data or {}))  # deep copy
    set_by: dict[str, str] = {}  # dotted key -> the override that set it (the last one wins)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise KnowboundError(f"override '{item}' is not key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise DataError(f"--set {item}", f"invalid YAML value: {getattr(exc, 'problem', exc)}",
                            field=key.strip()) from None
        _set_path(data, key.strip(), value)
        set_by[key.strip()] = item
    if "train" in data and isinstance(data["train"], dict) and isinstance(data["train"].get("lora"), dict):
        data["train"]["lora"] = dict(data["train"]["lora"])
    try:
        cfg = _build(RunConfig, data, "", path)
        _check_method_train(cfg, path)
        return cfg
    except DataError as exc:
        # A bad value or key that came from an override is the override's fault, not the file's.
        field = exc.field or ""
        owner = next((item for key, item in reversed(set_by.items())
                      if field == key or field.startswith((key + ".", key + "["))), None)
        if owner is None:
            raise
        raise DataError(f"--set {owner}", exc.message, field=exc.field) from None


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML run config (see ``RunConfig`` for every key and its default)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise DataError(str(path), "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(str(path), f"invalid YAML: {getattr(exc, 'problem', exc)}",
                        line=None if mark is None else mark.line + 1) from None
    if data is not None and not isinstance(data, dict):
        raise DataError(str(path), "the config must be a mapping")
    try:
        return parse_config(data or {}, str(path), overrides)
    except DataError as exc:
        line = _key_lines(path.read_text(encoding="utf-8")).get(exc.field or "")
        if line is None or exc.line is not None or exc.path != str(path):
            raise
        raise DataError(exc.path, exc.message, line=line, field=exc.field) from None


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of every key in a YAML mapping, by dotted path ("probe.m")."""
    import yaml

    out: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = f"{prefix}{key.value}"
                out[path] = key.start_mark.line + 1
                walk(value, path + ".")
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[f"{prefix[:-1]}[{i}]"] = item.start_mark.line + 1
                walk(item, f"{prefix[:-1]}[{i}].")

    walk(yaml.compose(text), "")
    return out


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML."""
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


__all__ = ["RunConfig", "ModelSection", "SetSection", "DataSection", "ProbeSection", "BuildSection",
           "EvalSection", "TrainConfig", "LoraSpec", "load_config", "parse_config", "dump_config",
           "to_dict", "config_hash", "DEFAULT_METHODS"]
