"""report.html of `daaf evaluate` and `daaf compare --out DIR`: it parses, every picture it
references exists beside it, it names no external URL, and the rank lists say what they mark."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

EXTERNAL = re.compile(r"(https?:|ftp:|//[\w.-]+\.\w)", re.I)


class Collector(HTMLParser):
    """Tags in order, every src/href, and the open tags left at the end (must be none)."""

    VOID = {"meta", "img", "br", "link", "input", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.refs, self.stack, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()


def check_report(path: Path) -> tuple[str, Collector]:
    text = path.read_text(encoding="utf-8")
    parser = Collector()
    parser.feed(text)
    parser.close()
    assert parser.stack == [] and parser.tags[0] == "html"
    assert parser.refs, "no picture"
    for ref in parser.refs:
        assert (path.parent / ref).is_file(), ref
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    return text, parser


@pytest.fixture(scope="module")
def two_evaluations(tiny_dataset, tiny_model, other_model, tmp_path_factory, cli):
    tmp = tmp_path_factory.mktemp("reports")
    for name, model in (("base", tiny_model), ("cand", other_model)):
        args = [
            "evaluate",
            "--model",
            str(model),
            "--dataset",
            "market1501",
            "--root",
            str(tiny_dataset),
            "--workers",
            "0",
            "--num-ranklists",
            "2",
            "--out",
            str(tmp / name),
        ]
        cli(*args)
    return tmp


def test_evaluation_report(two_evaluations):
    out = two_evaluations / "base"
    text, parser = check_report(out / "report.html")
    assert "cmc.png" in parser.refs and "AP by query camera" in text and "Metrics (percent)" in text
    # 16 queries: all of them are both among the 20 worst and the 20 best
    assert "The 16 worst queries by AP" in text and "The 16 best queries by AP" in text
    assert text.count('class="item query"') == 32 and text.count('class="item"') == 32 * 10
    for words in ("true match", "false match", "junk"):
        assert f">{words}</b>" in text  # in words, not only the frame's colour
    assert "first true match at rank" in text
    matches = pd.read_csv(out / "top_matches.csv")
    assert list(matches.columns) == [
        "image_path",
        "rank",
        "gallery_path",
        "distance",
        "match",
        "reranked",
    ]
    assert len(matches) == 16 * 10 and set(matches["match"]) == {
        "true match",
        "false match",
        "junk",
    }


def test_comparison_report(two_evaluations, tmp_path, cli):
    out = tmp_path / "compare out"
    args = [
        "compare",
        "--baseline",
        str(two_evaluations / "base"),
        "--candidate",
        str(two_evaluations / "cand"),
        "--bootstrap",
        "200",
        "--out",
        str(out),
    ]
    cli(*args)
    text, parser = check_report(out / "report.html")
    assert "bootstrap.png" in parser.refs and "Paired differences" in text and "95% CI" in text
    improved = re.search(r"Most improved by the candidate \((\d+)\)", text)
    hurt = re.search(r"Most hurt by the candidate \((\d+)\)", text)
    shown = int(improved[1]) + int(hurt[1])
    assert 0 < shown <= 16
    assert text.count('<div class="pair">') == shown  # both models side by side
    assert text.count("<b>baseline</b>: AP") == text.count("<b>candidate</b>: AP") == shown
