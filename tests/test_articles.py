"""Article files of the collected corpus: header parsing, near-duplicates in both scripts."""

import opencc
import pytest

from mineral_stance.articles import (
    ArticleFileError,
    build_manifest,
    containment,
    doc_id_for_source,
    near_duplicate_pairs,
    read_article_file,
    read_manifest,
    shingles,
    story_groups,
    write_manifest,
)
from mineral_stance.corpus import read_article, seed_paths

HEADER = (
    "source: https://news.example.tw/a/1\noutlet: 自由時報\ndate: 2025-10-12\n"
    "script: traditional\nperspective: taiwan\ntitle: 稀土\n---\n"
)
# a real passage of the Traditional seed (CSIS digest) and one of the Simplified CASS article
TRADITIONAL = (
    "這並非中國首次實施出口管制或威脅限制獲取其國家資源,也不會是中國最後一次訴諸經濟脅迫。"
    "美國及其志同道合的國家應攜手合作,確保供應鏈安全,減少對中國的依賴。"
)
OTHER = "为打压中国发展势头,美国不断调整双多边合作手段,加紧构建关键矿产安全联盟,企图主导全球关键矿产供应链。"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_header_and_text(tmp_path):
    article = read_article_file(write(tmp_path, "taiwan-1.txt", HEADER + TRADITIONAL + "\n"))
    assert article.meta.doc_id == "taiwan-1"
    assert (article.meta.outlet, article.meta.script, article.meta.perspective) == (
        "自由時報", "traditional", "taiwan")
    assert article.text == TRADITIONAL


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("source: https://a.b/c\nauthor: x\n---\n", ":2: expected 'field: value'"),
        ("source: https://a.b/c\noutlet: x\ntitle: (no body follows)\n", "no '---' line ends"),
        (HEADER.replace("traditional", "cantonese"), "script 'cantonese' is not one of"),
        (HEADER.replace("perspective: taiwan", "perspective: tw"), "perspective 'tw'"),
        (HEADER.replace("2025-10-12", "12 Oct"), "date '12 Oct'"),
        (HEADER.replace("outlet: 自由時報\n", ""), "missing field 'outlet'"),
        (HEADER.replace("https://news.example.tw/a/1", "news.example.tw"), "not a web address"),
        (HEADER.replace("---", "title: again\n---"), ":7: field 'title' given twice"),
    ],
)
def test_malformed_headers_are_refused_naming_file_and_problem(tmp_path, header, message):
    path = write(tmp_path, "bad.txt", header + (TRADITIONAL if "---" in header else ""))
    with pytest.raises(ArticleFileError, match="bad.txt") as error:
        read_article_file(path)
    assert message in str(error.value)


def test_an_empty_article_is_refused(tmp_path):
    with pytest.raises(ArticleFileError, match="no text below the header"):
        read_article_file(write(tmp_path, "empty.txt", HEADER + "\n\n"))


def test_corpus_files_are_read_without_their_header_by_the_batch_reader(tmp_path):
    path = write(tmp_path, "taiwan-1.txt", HEADER + TRADITIONAL)
    article = read_article(path)
    assert article.doc_id == "taiwan-1" and article.text == TRADITIONAL
    plain = write(tmp_path, "plain.txt", "source: a note that is no header\n" + TRADITIONAL)
    assert read_article(plain).text.startswith("source: a note")


def test_the_same_story_in_the_other_script_is_a_near_duplicate():
    simplified = opencc.OpenCC("t2s").convert(TRADITIONAL)
    assert simplified != TRADITIONAL
    assert containment(shingles(TRADITIONAL), shingles(simplified)) == 1.0
    # a reprint that adds a sentence of its own still contains the story
    reprint = "據報道，" + simplified + "分析人士對此表示關注。"
    pairs = near_duplicate_pairs({"a": TRADITIONAL, "b": reprint, "c": OTHER})
    assert [(a, b) for a, b, _ in pairs] == [("a", "b")]


def test_unrelated_seed_articles_are_not_near_duplicates():
    texts = {path.name: read_article(path).text for path in seed_paths()}
    assert near_duplicate_pairs(texts) == []


def test_story_groups_are_transitive():
    pairs = [("b", "c", 0.9), ("c", "d", 0.7)]
    assert story_groups(["a", "b", "c", "d"], pairs) == {"a": "a", "b": "b", "c": "b", "d": "b"}


def test_doc_ids_are_stable_and_readable():
    first = doc_id_for_source("hong_kong", "https://www.hk01.com/x")
    assert first == doc_id_for_source("hong_kong", " https://www.hk01.com/x ")
    assert first.startswith("hong-kong-") and len(first) == len("hong-kong-") + 10


def test_manifest_round_trip_keeps_story_of_copies(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    simplified_header = HEADER.replace("traditional", "simplified").replace("/a/1", "/a/2")
    paths = [
        write(folder, "taiwan-a.txt", HEADER + TRADITIONAL),
        write(folder, "taiwan-b.txt", simplified_header + opencc.OpenCC("t2s").convert(TRADITIONAL)),
        write(folder, "taiwan-c.txt", HEADER.replace("/a/1", "/a/3") + OTHER),
    ]
    rows = build_manifest([read_article_file(p) for p in paths])
    write_manifest(rows, folder / "manifest.csv")
    read_back = read_manifest(folder / "manifest.csv")
    assert [r["doc_id"] for r in read_back] == ["taiwan-a", "taiwan-b", "taiwan-c"]
    assert [r["story"] for r in read_back] == ["taiwan-a", "taiwan-a", "taiwan-c"]
    assert read_back[0]["source"] == "https://news.example.tw/a/1"
