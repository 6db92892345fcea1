import json

import pytest

from knowbound.datasets import ADAPTERS, load_questions, read_questions, write_questions
from knowbound.errors import DataError, KnowboundError
from knowbound.types import Question

# One row of each published format, as released.
TRIVIAQA = {"question_id": "tc_1", "question": "Which planet is red?", "question_source": "x",
            "answer": {"value": "Mars", "aliases": ["Mars", "Red Planet"], "normalized_aliases": ["mars", "red planet"]}}
NONAMBIG = {"question_id": "-77", "question": "When does DNA double?", "answers": ["cell division", "Interphase"],
            "gold_answer": "cell division"}
PUQA = {"title": "Flow Matching", "year": "2023", "authors": ["Y. Lipman"],
        "question": "Who wrote the paper \"Flow Matching\"?", "label": "unknown"}
PKQA = {"topic": "Music", "question": "Who composed \"Eroica\"?", "answer": "Ludwig van Beethoven", "label": "known"}
MMLU = {"question": "2 + 2 =", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}
SELFAWARE = {"question_id": 7, "question": "What is the meaning of life?", "answer": None, "answerable": False,
             "source": "quora"}
KNOWBOUND = Question(id="k1", question="Capital of France?", answers=("Paris",), meta={"set": "demo"}).to_dict()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "row, adapter, expected",
    [
        (TRIVIAQA, "triviaqa", Question("tc_1", "Which planet is red?", ("Mars", "Red Planet"), meta={"value": "Mars"})),
        (NONAMBIG, "nonambigqa", Question("-77", "When does DNA double?", ("cell division", "Interphase"),
                                          meta={"gold_answer": "cell division"})),
        (PUQA, "puqa", Question("1", PUQA["question"], (), meta={"title": "Flow Matching", "authors": ["Y. Lipman"],
                                                                 "year": "2023", "label": "unknown"})),
        (PKQA, "pkqa", Question("1", PKQA["question"], ("Ludwig van Beethoven",), meta={"topic": "Music", "label": "known"})),
        (MMLU, "mmlu", Question("1", "2 + 2 =", ("4",), "choice", ("3", "4", "5", "6"), 1, {"subject": "math"})),
        (SELFAWARE, "selfaware", Question("7", SELFAWARE["question"], (), meta={"answerable": False, "source": "quora"})),
        (KNOWBOUND, "knowbound", Question("k1", "Capital of France?", ("Paris",), meta={"set": "demo"})),
    ],
)
def test_each_published_format_is_detected_and_read(tmp_path, row, adapter, expected):
    result = load_questions(write_jsonl(tmp_path / "set.jsonl", [row]))
    assert result.adapter == adapter
    assert result.questions == [expected]
    assert load_questions(tmp_path / "set.jsonl", adapter).questions == [expected]


def test_official_mmlu_file_with_target_and_formatted_question(tmp_path):
    row = {"mmlu_question": "2 + 2 =", "subject": "math", "choices": ["3", "4", "5", "6"], "target": 1,
           "question": "2 + 2 =\nA) 3\nB) 4\nC) 5\nD) 6"}
    (q,) = load_questions(write_jsonl(tmp_path / "mmlu.jsonl", [row])).questions
    assert (q.question, q.kind, q.answer_index, q.answers) == ("2 + 2 =", "choice", 1, ("4",))


def test_adapters_are_registered_by_name():
    assert set(ADAPTERS.names()) >= {"triviaqa", "nonambigqa", "puqa", "pkqa", "mmlu", "selfaware", "knowbound"}
    with pytest.raises(KnowboundError, match="unknown dataset adapter 'squad'"):
        load_questions("whatever.jsonl", "squad")


def test_json_list_and_data_object(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([NONAMBIG, {**NONAMBIG, "question_id": "2"}]))
    (tmp_path / "b.json").write_text(json.dumps({"data": [NONAMBIG]}))
    assert [q.id for q in load_questions(tmp_path / "a.json").questions] == ["-77", "2"]
    assert [q.id for q in load_questions(tmp_path / "b.json").questions] == ["-77"]


def test_csv_with_list_cells(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('id,question,answers\n1,"Capital, of France?","[""Paris"", ""City of Light""]"\n2,Red planet?,Mars\n')
    qs = load_questions(p).questions
    assert [(q.id, q.question, q.answers) for q in qs] == [
        ("1", "Capital, of France?", ("Paris", "City of Light")), ("2", "Red planet?", ("Mars",))]


def test_csv_with_list_cells_written_by_pandas(tmp_path):
    """pandas' to_csv writes a list cell as Python's repr, not JSON; text in brackets stays text."""
    pd = pytest.importorskip("pandas")
    p = tmp_path / "q.csv"
    pd.DataFrame([{"id": "1", "question": "Who won the 2013 IPL?", "answers": ["Mumbai", "Mumbai Indians"]},
                  {"id": "2", "question": "Which note?", "answers": "[citation needed]"}]).to_csv(p, index=False)
    assert "['Mumbai', 'Mumbai Indians']" in p.read_text()
    assert [(q.id, q.answers) for q in load_questions(p).questions] == [
        ("1", ("Mumbai", "Mumbai Indians")), ("2", ("[citation needed]",))]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([MMLU, {**MMLU, "answer": 3}]), tmp_path / "m.parquet")
    qs = load_questions(tmp_path / "m.parquet").questions
    assert [(q.id, q.answer_index, q.answers) for q in qs] == [("1", 1, ("4",)), ("2", 3, ("6",))]


def test_limit_and_round_trip(tmp_path):
    rows = [{**NONAMBIG, "question_id": str(i)} for i in range(5)]
    result = load_questions(write_jsonl(tmp_path / "s.jsonl", rows), limit=3)
    assert [q.id for q in result.questions] == ["0", "1", "2"]
    write_questions(tmp_path / "run" / "questions" / "s.jsonl", result.questions)
    assert read_questions(tmp_path / "run" / "questions" / "s.jsonl") == result.questions


# --- Hugging Face datasets: the real load_dataset / load_from_disk paths, on local data ----------


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    return datasets


def test_dataset_saved_to_disk(tmp_path, hf_cache):
    hf_cache.Dataset.from_list([TRIVIAQA, {**TRIVIAQA, "question_id": "tc_2"}]).save_to_disk(str(tmp_path / "ds"))
    result = load_questions(str(tmp_path / "ds"))
    assert result.adapter == "triviaqa"
    assert [(q.id, q.answers) for q in result.questions] == [("tc_1", ("Mars", "Red Planet")), ("tc_2", ("Mars", "Red Planet"))]
    assert result.source == str(tmp_path / "ds")


def test_dataset_dict_saved_to_disk_needs_a_split(tmp_path, hf_cache):
    d = hf_cache.DatasetDict({"dev": hf_cache.Dataset.from_list([MMLU]), "test": hf_cache.Dataset.from_list([MMLU, MMLU])})
    d.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(KnowboundError, match="has splits dev, test; choose one with --split"):
        load_questions(str(tmp_path / "dd"))
    assert len(load_questions(str(tmp_path / "dd"), split="test").questions) == 2


def test_local_directory_through_load_dataset(tmp_path, hf_cache):
    folder = tmp_path / "nonambig"
    folder.mkdir()
    write_jsonl(folder / "validation.jsonl", [NONAMBIG, {**NONAMBIG, "question_id": "-78"}])
    result = load_questions(str(folder), split="validation")
    assert [q.id for q in result.questions] == ["-77", "-78"]
    assert result.source == f"{folder}[validation]"


def test_bad_row_in_a_dataset_names_its_row(tmp_path, hf_cache):
    hf_cache.Dataset.from_list([NONAMBIG, {**NONAMBIG, "question_id": "x", "answers": []}]).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError) as exc:
        load_questions(str(tmp_path / "ds"))
    assert str(exc.value) == f"{tmp_path / 'ds'}:2: field 'answers': no gold answer"


def test_unreachable_hub_dataset_is_one_line(hf_cache, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'no/such' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(hf_cache, "load_dataset", offline)
    with pytest.raises(KnowboundError) as exc:
        load_questions("no/such:cfg", split="test")
    assert str(exc.value) == "cannot load dataset 'no/such:cfg': Couldn't reach 'no/such' on the Hub (LocalEntryNotFoundError)"


# --- bad input: one error naming file, line and field -------------------------------------------


@pytest.mark.parametrize(
    "content, line, field, message",
    [
        (json.dumps(NONAMBIG) + '\n{"question_id": "2", "question": "Q', 2, None, "invalid JSON"),
        (json.dumps(NONAMBIG) + "\n" + json.dumps({"question_id": "2", "answers": ["a"], "gold_answer": "a"}), 2,
         "question", "missing"),
        (json.dumps({**NONAMBIG, "question": 5}), 1, "question", "expected a string, got int"),
        (json.dumps(NONAMBIG) + "\n" + json.dumps({**NONAMBIG, "question_id": "2", "question": " "}), 2,
         "question", "empty question"),
        (json.dumps(NONAMBIG) + "\n" + json.dumps(NONAMBIG), 2, "id", "duplicate id '-77' (first at row 1)"),
        (json.dumps({**NONAMBIG, "answers": [], "gold_answer": None}), 1, "answers", "no gold answer"),
        (json.dumps({**MMLU, "answer": 7}), 1, "answer", "index 7 out of range for 4 choices"),
    ],
)
def test_bad_jsonl_rows(tmp_path, content, line, field, message):
    p = tmp_path / "bad.jsonl"
    p.write_text(content + "\n")
    with pytest.raises(DataError) as exc:
        load_questions(p)
    assert (exc.value.path, exc.value.line, exc.value.field) == (str(p), line, field)
    assert message in exc.value.message


def test_empty_and_non_utf8_files(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_questions(tmp_path / "e.jsonl")
    (tmp_path / "b.csv").write_bytes(b"id,question,answers\n1,ok,a\n2,caf\xe9,b\n")
    with pytest.raises(DataError) as exc:
        load_questions(tmp_path / "b.csv")
    assert (exc.value.line, "UTF-8" in exc.value.message) == (3, True)


def test_csv_errors_cite_file_lines(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text("question_id,question,answers,gold_answer\n1,A?,x,x\n2,B?,,\n")
    with pytest.raises(DataError) as exc:
        load_questions(p)
    assert str(exc.value) == f"{p}:3: field 'answers': no gold answer"


def test_skip_bad_counts_and_keeps_the_rest(tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_text(json.dumps(NONAMBIG) + "\n{oops\n" + json.dumps({**NONAMBIG, "question": None}) + "\n"
                 + json.dumps({**NONAMBIG, "question_id": "ok2"}) + "\n")
    result = load_questions(p, skip_bad=True)
    assert [q.id for q in result.questions] == ["-77", "ok2"]
    assert (result.skipped, [e.line for e in result.errors]) == (2, [2, 3])
    assert result.counts == {"rows": 4, "questions": 2, "open": 2, "choice": 0, "with_answers": 2,
                             "without_answers": 0, "skipped": 2}


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_questions(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown file type '.txt'"):
        load_questions(tmp_path / "x.txt")


def test_mixed_formats_name_both_and_generic_reads_them(tmp_path):
    p = write_jsonl(tmp_path / "mixed.jsonl", [NONAMBIG, {"question_id": "2", "question": "2 + 2 =",
                                                          "choices": ["3", "4"], "target": 1}])
    with pytest.raises(DataError) as exc:
        load_questions(p)
    assert exc.value.line == 2
    assert "this row looks like 'mmlu' but the first like 'nonambigqa'" in exc.value.message
    assert [q.kind for q in load_questions(p, "generic").questions] == ["open", "choice"]
