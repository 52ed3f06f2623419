"""Discovering and reading batch inputs: every format, every encoding, every failure."""

import io
import json
from pathlib import Path

import pytest

from mineral_stance.corpus import Article, InputError, decode_bytes
from mineral_stance.inputs import InputProblem, discover, file_keys, iter_articles

SIMPLIFIED = "美国应与盟友合作，确保关键矿产供应链安全。中国控制全球大部分稀土加工。"
# "着" is not in plain Big5 (Big5 has 著); Hong Kong Big5 (HKSCS) has it.
TRADITIONAL_HK = "中國控制並加工着全球大部分關鍵礦產。美國應與盟友合作。"
TRADITIONAL = TRADITIONAL_HK.replace("着", "著")
ENGLISH = "The United States should work with allies to secure critical mineral supply chains."


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def read(paths, **kwargs) -> tuple[list[Article], list[InputProblem]]:
    results = list(iter_articles([str(p) for p in paths], **kwargs))
    articles = [r for r in results if isinstance(r, Article)]
    problems = [r for r in results if isinstance(r, InputProblem)]
    assert len(articles) + len(problems) == len(results)
    return articles, problems


# --- Encodings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (SIMPLIFIED, "utf-8"),
        (SIMPLIFIED, "utf-8-sig"),
        (TRADITIONAL, "utf-8-sig"),
        (SIMPLIFIED, "gb18030"),
        (SIMPLIFIED, "gbk"),
        (TRADITIONAL, "big5"),
        (TRADITIONAL, "cp950"),
        (TRADITIONAL_HK, "big5hkscs"),
        (TRADITIONAL, "gb18030"),  # Traditional characters in a GB file
        (SIMPLIFIED, "utf-16"),  # Windows Notepad's "Unicode" (with BOM)
        (ENGLISH, "ascii"),
    ],
)
def test_txt_decodes_to_the_exact_original_text(tmp_path, text, encoding):
    path = write(tmp_path / "article.txt", text, encoding)
    articles, problems = read([path])
    assert problems == []
    assert [(a.doc_id, a.text, a.source) for a in articles] == [("article", text, str(path))]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("中國控制", "big5"),
        ("美國", "big5"),
        ("中國", "big5"),
        ("中国控制", "gbk"),
        ("稀土", "gbk"),
        ("id,text\n1,中國控制\n", "big5"),
        ("id,text\n1,美国\n2,中国\n", "gbk"),
    ],
)
def test_short_big5_and_gbk_are_not_mistaken_for_each_other(text, encoding):
    # "中國控制" in Big5 is valid GB18030 too ("い瓣北" + a private-use character).
    assert decode_bytes(text.encode(encoding), "short.txt") == text


def test_english_with_gbk_curly_quotes_decodes():
    text = "He said “critical minerals” — twice."
    assert decode_bytes(text.encode("gb18030"), "quotes.txt") == text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the file is empty"),
        (b"  \n\t\n", "the file is empty"),
        (b"\xef\xbb\xbf\n", "the file is empty"),  # a BOM and nothing else
        (b"PK\x03\x04\x00\x00binary", "binary file"),
        (bytes(range(0x80, 0x100)) * 4, "undecodable bytes"),
        (b"\xef\xbb\xbfok\nok\n\xff\xfe\n", "invalid utf-8 at line 3"),
    ],
)
def test_decode_bytes_refuses_bad_input_naming_the_file(data, expected):
    with pytest.raises(InputError) as caught:
        decode_bytes(data, "dir/bad.txt")
    assert str(caught.value).startswith("dir/bad.txt: ")
    assert expected in str(caught.value)


# --- Discovery -------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    write(root / "b.txt", SIMPLIFIED)
    write(root / "a.md", ENGLISH)
    write(root / "z" / "deep" / "c.html", f"<p>{TRADITIONAL}</p>")
    write(root / "m" / "d.jsonl", json.dumps({"text": SIMPLIFIED}, ensure_ascii=False) + "\n")
    write(root / "m" / "e.csv", f"text\n{ENGLISH}\n")
    write(root / "m" / "notes.pdf", b"%PDF-1.4\x00")
    write(root / "m" / "image.png", b"\x89PNG\x00")
    write(root / ".hidden.txt", "hidden")
    write(root / ".git" / "f.txt", "inside a hidden folder")
    return root


def test_directory_is_walked_recursively_in_sorted_order(tree):
    found = discover([str(tree)])
    assert [p.relative_to(tree).as_posix() for p in found] == [
        "a.md",
        "b.txt",
        "m/d.jsonl",
        "m/e.csv",
        "z/deep/c.html",
    ]


def test_directory_without_recursion_lists_only_its_own_files(tree):
    found = discover([str(tree)], recursive=False)
    assert [p.name for p in found] == ["a.md", "b.txt"]


def test_directory_tree_reads_every_format(tree):
    articles, problems = read([tree])
    assert problems == []
    assert [(a.doc_id, a.text) for a in articles] == [
        ("a", ENGLISH),
        ("b", SIMPLIFIED),
        ("m__d:1", SIMPLIFIED),
        ("m__e:1", ENGLISH),
        ("z__deep__c", TRADITIONAL),
    ]


def test_glob_pattern_is_expanded_sorted(tree):
    found = discover([str(tree / "**" / "*.*l")])
    assert [p.name for p in found] == ["d.jsonl", "c.html"]
    assert [p.name for p in discover([str(tree / "*.txt")])] == ["b.txt"]


def test_glob_match_with_unsupported_extension_is_read_as_text(tree):
    path = write(tree / "notes.log", ENGLISH)
    articles, problems = read([tree / "*.log"])
    assert problems == []
    assert [(a.doc_id, a.text, a.source) for a in articles] == [("notes", ENGLISH, str(path))]


def test_paths_that_match_nothing_are_problems_not_exceptions(tmp_path, tree):
    missing = tmp_path / "missing.txt"
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    found = discover(
        [str(missing), str(tmp_path / "*.nothing"), str(empty_dir), str(tree / "a.md")]
    )
    assert [str(item) for item in found[:3]] == [
        f"{missing}: no such file or directory",
        f"{tmp_path / '*.nothing'}: no files match this pattern",
        f"{empty_dir}: no .csv/.htm/.html/.jsonl/.markdown/.md/.txt files here",
    ]
    assert found[3] == tree / "a.md"
    articles, problems = read([missing, tree / "a.md"])
    assert [a.doc_id for a in articles] == ["a"]
    assert [(p.source, p.line) for p in problems] == [(str(missing), None)]


def test_file_reached_twice_is_read_once(tree):
    found = discover([str(tree / "b.txt"), str(tree), str(tree / "*.txt")])
    assert [p.name for p in found] == ["b.txt", "a.md", "d.jsonl", "e.csv", "c.html"]


def test_file_with_glob_characters_in_its_name_is_taken_literally(tmp_path):
    path = write(tmp_path / "report [draft].txt", ENGLISH)
    assert discover([str(path)]) == [path]


# --- Standard input --------------------------------------------------------------


def test_dash_reads_standard_input(tree):
    articles, problems = read(["-", tree / "a.md"], stdin=io.StringIO(SIMPLIFIED + "\n"))
    assert problems == []
    assert [(a.doc_id, a.text, a.source) for a in articles] == [
        ("stdin", SIMPLIFIED + "\n", "<stdin>"),
        ("a", ENGLISH, str(tree / "a.md")),
    ]


def test_binary_standard_input_is_decoded_from_its_bytes():
    class Stdin(io.StringIO):
        buffer = io.BytesIO(TRADITIONAL.encode("big5"))

    articles, problems = read(["-"], stdin=Stdin())
    assert problems == []
    assert [a.text for a in articles] == [TRADITIONAL]


def test_empty_standard_input_is_a_problem():
    articles, problems = read(["-"], stdin=io.StringIO(""))
    assert articles == []
    assert [str(p) for p in problems] == ["<stdin>: the file is empty"]


# --- HTML ------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>Page title</title><style>p { color: red }</style>
<script>var tracking = "不要这个";</script></head>
<body>
<nav><a href="/">首页</a> | <a href="/news">新闻</a></nav>
<h1>关键矿产</h1>
<div class="body">
<p>美国应与盟友合作，
确保关键矿产供应链安全。</p>
<p>中国控制全球大部分<b>稀土</b>加工。<br>第二行。</p>
<ul><li>锂</li><li>钴</li></ul>
<script>alert("x")</script>
</div>
<!-- a comment -->
<footer>版权所有</footer>
</body></html>
"""


def test_html_keeps_visible_text_one_line_per_block(tmp_path):
    path = write(tmp_path / "page.html", PAGE)
    articles, problems = read([path])
    assert problems == []
    assert articles[0].doc_id == "page"
    assert articles[0].text.split("\n") == [
        "关键矿产",
        "美国应与盟友合作， 确保关键矿产供应链安全。",  # source wrapping is a space
        "中国控制全球大部分稀土加工。",
        "第二行。",
        "锂",
        "钴",
    ]


@pytest.mark.parametrize(
    ("meta", "encoding", "body"),
    [
        ('<meta charset="big5">', "big5", "“Critical minerals”"),
        ("<meta charset='gbk'>", "gbk", "材料替代"),
    ],
)
def test_html_meta_charset_is_honoured(tmp_path, meta, encoding, body):
    page = f"<html><head>{meta}</head><body><p>{body}</p></body></html>"
    # Too short for detection alone: without the label these bytes decode wrongly.
    bare = f"<p>{body}</p>".encode(encoding)
    assert decode_bytes(bare, "bare.html") != f"<p>{body}</p>"
    path = write(tmp_path / "labelled.htm", page, encoding)
    articles, problems = read([path])
    assert problems == []
    assert articles[0].text == body


def test_html_http_equiv_gb2312_label_and_utf8_bytes_with_stale_label(tmp_path):
    content = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
    gbk = write(tmp_path / "gbk.html", f"{content}<p>{SIMPLIFIED}</p>", "gbk")
    # Re-saved as UTF-8 but still labelled gb2312, as scraped pages often are.
    resaved = write(tmp_path / "resaved.html", f"{content}<p>{SIMPLIFIED}</p>", "utf-8")
    articles, problems = read([gbk, resaved])
    assert problems == []
    assert [a.text for a in articles] == [SIMPLIFIED, SIMPLIFIED]


def test_html_without_visible_text_is_a_problem(tmp_path):
    path = write(tmp_path / "blank.html", "<html><script>x()</script><p> </p></html>")
    articles, problems = read([path])
    assert articles == []
    assert [str(p) for p in problems] == [f"{path}: no visible text in this page"]


# --- JSON Lines ------------------------------------------------------------------


def test_jsonl_malformed_line_is_a_problem_and_later_lines_are_read(tmp_path):
    lines = [
        json.dumps({"text": SIMPLIFIED}, ensure_ascii=False),
        '{"text": "broken", }',
        json.dumps({"text": TRADITIONAL}, ensure_ascii=False),
        "",
        json.dumps({"text": ENGLISH}),
    ]
    path = write(tmp_path / "batch.jsonl", "\n".join(lines) + "\n")
    articles, problems = read([path])
    assert [(a.doc_id, a.text) for a in articles] == [
        ("batch:1", SIMPLIFIED),
        ("batch:3", TRADITIONAL),
        ("batch:5", ENGLISH),
    ]
    assert len(problems) == 1
    assert (problems[0].source, problems[0].line) == (str(path), 2)
    assert str(problems[0]).startswith(f"{path}:2: invalid JSON:")


def test_jsonl_bad_records_each_name_their_line(tmp_path):
    lines = [
        '["not", "an object"]',
        '{"body": "wrong field", "id": 1}',
        '{"text": "   "}',
        '{"text": 42}',
        '{"text": "good"}',
    ]
    path = write(tmp_path / "records.jsonl", "\n".join(lines))
    articles, problems = read([path])
    assert [(a.doc_id, a.text) for a in articles] == [("records:5", "good")]
    assert [str(p) for p in problems] == [
        f"{path}:1: expected a JSON object, got list",
        f"{path}:2: no field 'text' (fields: body, id)",
        f"{path}:3: field 'text' is empty",
        f"{path}:4: field 'text' is a int, not a string",
    ]


def test_jsonl_custom_text_and_id_fields(tmp_path):
    lines = [
        {"content": SIMPLIFIED, "slug": "cn-1"},
        {"content": TRADITIONAL},  # no id: falls back to the line number
        {"content": ENGLISH, "slug": 7},
        {"content": ENGLISH, "slug": "cn-1"},  # repeated id is made unique
    ]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    path = write(tmp_path / "custom.jsonl", text)
    articles, problems = read([path], text_field="content", id_field="slug")
    assert problems == []
    assert [(a.doc_id, a.text) for a in articles] == [
        ("cn-1", SIMPLIFIED),
        ("custom:2", TRADITIONAL),
        ("7", ENGLISH),
        ("cn-1~2", ENGLISH),
    ]


def test_jsonl_line_that_is_not_utf8_costs_only_that_line(tmp_path):
    good = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in (SIMPLIFIED, TRADITIONAL)]
    bad = json.dumps({"text": SIMPLIFIED}, ensure_ascii=False).encode("gbk")
    path = write(tmp_path / "mixed.jsonl", b"\n".join([good[0], bad, good[1]]))
    articles, problems = read([path])
    assert [(a.doc_id, a.text) for a in articles] == [
        ("mixed:1", SIMPLIFIED),
        ("mixed:3", TRADITIONAL),
    ]
    assert [(p.line, p.message) for p in problems] == [
        (2, "not valid UTF-8 (the rest of the file is)")
    ]


def test_jsonl_in_gbk_is_decoded_as_a_whole(tmp_path):
    text = "\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in ("稀土加工", SIMPLIFIED))
    path = write(tmp_path / "gbk.jsonl", text, "gbk")
    articles, problems = read([path])
    assert problems == []
    assert [a.text for a in articles] == ["稀土加工", SIMPLIFIED]


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path):
    text = json.dumps({"text": "第一段\u2028第二段"}, ensure_ascii=False)
    path = write(tmp_path / "sep.jsonl", text + "\n" + json.dumps({"text": "x"}))
    articles, problems = read([path])
    assert problems == []
    assert [a.text for a in articles] == ["第一段\u2028第二段", "x"]


# --- CSV -------------------------------------------------------------------------


def test_csv_custom_column_and_id_column(tmp_path):
    rows = f'id,body,outlet\nus-1,"{ENGLISH}",CSIS\ncn-1,"{SIMPLIFIED}",IPP\n'
    path = write(tmp_path / "articles.csv", rows)
    articles, problems = read([path], text_column="body", id_field="id")
    assert problems == []
    assert [(a.doc_id, a.text, a.source) for a in articles] == [
        ("us-1", ENGLISH, str(path)),
        ("cn-1", SIMPLIFIED, str(path)),
    ]


def test_csv_without_id_uses_row_numbers_and_keeps_multiline_cells(tmp_path):
    path = write(tmp_path / "rows.csv", f'text\n"{SIMPLIFIED}\n{TRADITIONAL}"\n{ENGLISH}\n')
    articles, problems = read([path])
    assert problems == []
    assert [(a.doc_id, a.text) for a in articles] == [
        ("rows:1", f"{SIMPLIFIED}\n{TRADITIONAL}"),
        ("rows:2", ENGLISH),
    ]


def test_csv_missing_column_is_one_problem_listing_the_columns(tmp_path):
    path = write(tmp_path / "wrong.csv", "id,title,body\n1,a,b\n2,c,d\n3,e,f\n")
    articles, problems = read([path], text_column="text")
    assert articles == []
    assert [str(p) for p in problems] == [
        f"{path}:1: no column 'text' (columns: 'id', 'title', 'body')"
    ]


def test_csv_empty_cells_are_problems_with_their_line(tmp_path):
    # Line 2-3 is one record (a quoted newline), so the empty cell is on line 4.
    content = f'id,text\n1,"{SIMPLIFIED}\n{TRADITIONAL}"\n2,\n3,{ENGLISH}\n4\n'
    path = write(tmp_path / "gaps.csv", content)
    articles, problems = read([path])
    assert [a.doc_id for a in articles] == ["gaps:1", "gaps:3"]
    assert [str(p) for p in problems] == [
        f"{path}:4: column 'text' is empty",
        f"{path}:6: column 'text' is empty",  # a short row
    ]


@pytest.mark.parametrize(
    ("encoding", "text", "note"),
    [("gbk", SIMPLIFIED, "备注"), ("big5", TRADITIONAL, "備註"), ("utf-8-sig", SIMPLIFIED, "备注")],
)
def test_csv_in_legacy_encodings_and_with_bom(tmp_path, encoding, text, note):
    path = write(tmp_path / "legacy.csv", f"text,note\n{text},{note}\n", encoding)
    articles, problems = read([path])
    assert problems == []
    assert [(a.doc_id, a.text) for a in articles] == [("legacy:1", text)]


def test_csv_with_header_only_is_a_problem(tmp_path):
    path = write(tmp_path / "header.csv", "id,text\n")
    articles, problems = read([path])
    assert articles == []
    assert [str(p) for p in problems] == [f"{path}: no rows after the header"]


def test_csv_cell_longer_than_the_csv_module_default_limit(tmp_path):
    long_text = SIMPLIFIED * 5000  # ~ 175,000 characters
    path = write(tmp_path / "long.csv", f'text\n"{long_text}"\n')
    articles, problems = read([path])
    assert problems == []
    assert articles[0].text == long_text


# --- Bad files in a batch ------------------------------------------------------


def test_bad_files_are_problems_and_the_batch_goes_on(tmp_path):
    good_before = write(tmp_path / "a_good.txt", SIMPLIFIED)
    empty = write(tmp_path / "b_empty.txt", b"")
    binary = write(tmp_path / "c_binary.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00")
    large = write(tmp_path / "d_large.txt", ENGLISH * 3)
    undecodable = write(tmp_path / "e_undecodable.txt", bytes(range(0x80, 0x100)))
    good_after = write(tmp_path / "f_good.csv", f"text\n{TRADITIONAL}\n", "big5")
    articles, problems = read([tmp_path], max_bytes=len(ENGLISH) * 2)
    assert [(a.source, a.text) for a in articles] == [
        (str(good_before), SIMPLIFIED),
        (str(good_after), TRADITIONAL),
    ]
    messages = {p.source: p.message for p in problems}
    assert list(messages) == [str(empty), str(binary), str(large), str(undecodable)]
    assert messages[str(empty)] == "the file is empty"
    assert "binary file" in messages[str(binary)]
    assert (
        messages[str(large)]
        == f"too large: {len(ENGLISH) * 3} bytes > limit {len(ENGLISH) * 2} bytes"
    )
    assert "undecodable bytes" in messages[str(undecodable)]
    assert all(str(p).startswith(f"{p.source}: ") for p in problems)


def test_too_large_is_reported_in_megabytes(tmp_path):
    path = write(tmp_path / "big.txt", "x" * 300_000)
    _, problems = read([path], max_bytes=200_000)
    assert [p.message for p in problems] == ["too large: 0.3 MB > limit 0.2 MB"]


def test_unreadable_path_is_a_problem(tmp_path):
    link = tmp_path / "dangling.txt"
    link.symlink_to(tmp_path / "gone.txt")
    assert discover([str(link)])[0].message == "no such file or directory"


# --- Document identifiers --------------------------------------------------------


def test_duplicate_stems_get_unique_doc_ids(tmp_path):
    write(tmp_path / "us" / "report.txt", ENGLISH)
    write(tmp_path / "cn" / "2024" / "report.md", SIMPLIFIED)
    write(tmp_path / "cn" / "other.txt", TRADITIONAL)
    write(tmp_path / "cn" / "notes.jsonl", '{"text": "a"}')
    write(tmp_path / "us" / "notes.csv", "text\nb\n")
    articles, problems = read([tmp_path])
    assert problems == []
    assert [a.doc_id for a in articles] == [
        "cn__2024__report",
        "cn__notes:1",
        "cn__other",
        "us__notes:1",
        "us__report",
    ]


def test_same_stem_in_one_folder_keeps_the_extension():
    keys = file_keys([Path("x/a.txt"), Path("x/a.md"), Path("x/b.txt")])
    assert keys == {Path("x/a.txt"): "a.txt", Path("x/a.md"): "a.md", Path("x/b.txt"): "b"}


def test_doc_ids_are_unique_across_sources(tmp_path):
    path = write(tmp_path / "stdin.txt", ENGLISH)
    articles, _ = read(["-", path], stdin=io.StringIO("from a pipe"))
    assert [a.doc_id for a in articles] == ["stdin", "stdin~2"]


def test_input_problem_formats_with_and_without_a_line():
    assert str(InputProblem("a.jsonl", 3, "invalid JSON")) == "a.jsonl:3: invalid JSON"
    assert str(InputProblem("a.txt", None, "the file is empty")) == "a.txt: the file is empty"


# --- 6. doc_ids do not depend on the other files of the run -----------------------


def test_adding_a_file_never_renames_an_existing_one(tmp_path):
    write(tmp_path / "a" / "report.txt", ENGLISH)
    before = [a.doc_id for a in read([tmp_path])[0]]
    write(tmp_path / "b" / "report.txt", SIMPLIFIED)
    write(tmp_path / "0" / "report.txt", TRADITIONAL)  # sorts before the first one
    after = [a.doc_id for a in read([tmp_path])[0]]
    assert before == ["a__report"]
    assert after == ["0__report", "a__report", "b__report"]
    named = [a.doc_id for a in read([tmp_path / "a" / "report.txt"])[0]]
    assert named == ["report"]


# --- 9. single inputs that used to abort the whole batch --------------------------


def test_symlink_loops_are_problems_and_the_batch_goes_on(tmp_path):
    good = write(tmp_path / "good.txt", ENGLISH)
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    articles, problems = read([loop, tmp_path])
    assert [a.source for a in articles] == [str(good)]
    assert [str(p) for p in problems] == [f"{loop}: a symlink loop", f"{loop}: cannot read: a symlink loop"]


def test_deeply_nested_json_is_one_problem_with_its_line(tmp_path):
    path = write(tmp_path / "deep.jsonl", '{"text": "ok"}\n' + "[" * 100_000 + "\n" + '{"text": "after"}\n')
    articles, problems = read([path])
    assert [a.text for a in articles] == ["ok", "after"]
    assert [str(p) for p in problems] == [f"{path}:2: invalid JSON: nested too deeply"]


def test_lone_surrogate_escape_is_one_problem_with_its_line(tmp_path):
    path = write(tmp_path / "s.jsonl", '{"text": "bad \\ud800 text"}\n{"text": "fine"}\n')
    articles, problems = read([path])
    assert [a.text for a in articles] == ["fine"]
    assert [str(p) for p in problems] == [
        f"{path}:1: a lone surrogate \\ud800 at character 4 (not a valid character)"
    ]


def test_path_under_a_folder_that_cannot_be_entered_is_a_problem(tmp_path, monkeypatch):
    import errno
    import os

    locked = tmp_path / "locked"
    inside = write(locked / "a.txt", ENGLISH)
    good = write(tmp_path / "good.txt", ENGLISH)
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # what chmod 000 does to a non-root user
        if str(path).startswith(str(locked) + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    articles, problems = read([inside, good])
    assert [a.source for a in articles] == [str(good)]
    assert [str(p) for p in problems] == [f"{inside}: cannot look at this path: Permission denied"]


# --- 10. silent skips and hangs -----------------------------------------------------


def test_unlistable_subfolder_is_reported(tmp_path, monkeypatch):
    import errno
    import os

    write(tmp_path / "a.txt", ENGLISH)
    hidden_from_us = tmp_path / "private"
    write(hidden_from_us / "b.txt", ENGLISH)
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path) == str(hidden_from_us):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    articles, problems = read([tmp_path])
    assert [a.doc_id for a in articles] == ["a"]
    assert [str(p) for p in problems] == [f"{hidden_from_us}: cannot list: Permission denied"]


def test_named_pipe_and_devices_are_reported_not_read(tmp_path):
    import os

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    good = write(tmp_path / "z.txt", ENGLISH)
    articles, problems = read([tmp_path, "/dev/zero"])  # neither may block or fill memory
    assert [a.source for a in articles] == [str(good)]
    assert [str(p) for p in problems] == [
        f"{fifo}: not a regular file (a named pipe); use - for a pipe",
        "/dev/zero: not a regular file (a character device); use - for a pipe",
    ]


def test_size_limit_holds_while_reading_whatever_stat_says(tmp_path, monkeypatch):
    import os

    path = write(tmp_path / "growing.txt", "x" * 5000)
    real_stat = os.stat

    def stale_stat(target, *args, **kwargs):  # a file still growing when stat was taken
        result = real_stat(target, *args, **kwargs)
        if str(target) == str(path):
            values = list(result)
            values[6] = 10  # st_size
            return os.stat_result(values)
        return result

    monkeypatch.setattr(os, "stat", stale_stat)
    articles, problems = read([path], max_bytes=1000)
    assert articles == []
    assert [p.message for p in problems] == ["too large: 1,001 bytes > limit 1,000 bytes"]


# --- 11. CSV quotes and JSON Lines line separators ----------------------------------


def test_csv_unclosed_quote_costs_only_its_row(tmp_path):
    path = write(tmp_path / "q.csv", 'id,text\n1,"unclosed text\n2,second row\n3,third row\n')
    articles, problems = read([path], id_field="id")
    assert [(a.doc_id, a.text) for a in articles] == [("2", "second row"), ("3", "third row")]
    assert [str(p) for p in problems] == [
        f"{path}:2: a quoted field runs past the end of its row (unclosed quote?)"
    ]


def test_csv_quote_closed_in_a_later_row_costs_only_its_row(tmp_path):
    path = write(tmp_path / "q.csv", 'id,text\n1,"half\n2,"whole"\n3,last\n')
    articles, problems = read([path], id_field="id")
    assert [(a.doc_id, a.text) for a in articles] == [("2", "whole"), ("3", "last")]
    assert [p.line for p in problems] == [2]


def test_csv_multiline_cells_are_still_fine(tmp_path):
    path = write(tmp_path / "m.csv", 'id,text\n1,"first line\nsecond, with a comma"\n2,x\n')
    articles, problems = read([path], id_field="id")
    assert problems == []
    assert [a.text for a in articles] == ["first line\nsecond, with a comma", "x"]


def test_jsonl_output_with_line_separators_reads_back_whole(tmp_path):
    from mineral_stance.batch import read_output

    out = tmp_path / "out.jsonl"
    records = [{"doc_id": "a", "text": "one\u2028two\u2029three\x85four", "n": i} for i in range(3)]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    assert read_output(out).to_dict("records") == records


# --- property: any bytes, any text, any JSON Lines: no crash, every problem placed -----

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
JSONL_LINES = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.fixed_dictionaries({"text": st.text(max_size=60)}).map(lambda r: json.dumps(r, ensure_ascii=False)),
    st.sampled_from(['{"text": "\\ud800"}', '{"text": "a\u2028b"}', "[" * 5000, '{"text": 1}', "{", ""]),
    st.text(max_size=40),
)
SUFFIXES = [".txt", ".md", ".html", ".jsonl", ".csv", ".bin"]


def check_read(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    lines = data.count(b"\n") + 1
    for item in iter_articles([str(path)], max_bytes=100_000):
        if isinstance(item, InputProblem):
            assert item.source == str(path) and item.message
            assert item.line is None or 1 <= item.line <= lines
            assert str(item).startswith(str(path))
        else:
            assert isinstance(item, Article) and item.text.strip() and item.source == str(path)
            item.text.encode("utf-8")  # writable to the output: no lone surrogates
            item.doc_id.encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), suffix=st.sampled_from(SUFFIXES))
def test_any_bytes_in_any_format_never_crash_the_reader(tmp_path, data, suffix):
    check_read(tmp_path / f"fuzz{suffix}", data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300), suffix=st.sampled_from(SUFFIXES), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_any_text_in_any_format_never_crashes_the_reader(tmp_path, text, suffix, encoding):
    check_read(tmp_path / f"fuzz{suffix}", text.encode(encoding))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(JSONL_LINES, max_size=8))
def test_any_json_lines_never_crash_the_reader(tmp_path, lines):
    check_read(tmp_path / "fuzz.jsonl", "\n".join(lines).encode("utf-8"))
