"""Benchmark 8's realistic half: 100 mentions of the terms people really watch on HN (issue 23).

Terms such as ``ai``, ``go``, ``rust`` or ``arm`` occur inside ordinary words (s*ai*d, *go*od, t*rust*,
f*arm*) in nearly every comment, so a prefilter that ignores word boundaries lets almost every item
through; the earlier benchmark's invented terms never occurred and hid that. The text here is HN-like
prose built from a vocabulary full of such words, with real mentions in about 5% of items, a dense
stream where every sentence names a technology, and one 14,800-character comment (a long HN post).

Correctness is checked against a plain reference: Python's ``re`` with Unicode word guards, over the
same plain text, must find the same mentions in every item.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from flamewatch import Item
from flamewatch.hn.text import html_to_text
from flamewatch.rules.mentions import MentionSpec

#: What people watch: languages, companies, tools (2-3 terms a mention, some scoped, some excluded).
MENTIONS: tuple[tuple[str, ...], ...] = (
    ("python", "cpython", "pypi"), ("rust", "rustc", "cargo"), ("go", "golang"), ("ai", "artificial intelligence"),
    ("llm", "large language model"), ("gpt", "chatgpt"), ("openai",), ("anthropic", "claude"), ("gemini",),
    ("apple", "iphone"), ("google",), ("microsoft",), ("amazon", "aws"), ("azure",), ("meta", "facebook"),
    ("nvidia", "cuda"), ("intel",), ("amd", "ryzen"), ("arm", "aarch64"), ("risc-v", "riscv"), ("linux",),
    ("windows",), ("macos",), ("ios",), ("android",), ("kubernetes", "k8s"), ("docker",), ("postgres", "postgresql"),
    ("sqlite",), ("mysql",), ("redis",), ("kafka",), ("react",), ("vue",), ("svelte",), ("typescript",),
    ("javascript",), ("java",), ("kotlin",), ("swift",), ("c++",), ("c#",), ("haskell",), ("ocaml",),
    ("elixir",), ("erlang",), ("clojure",), ("lisp",), ("zig",), ("nim",), ("julia",), ("wasm", "webassembly"),
    ("firefox", "mozilla"), ("chrome", "chromium"), ("safari",), ("tesla",), ("spacex",), ("startup",),
    ("y combinator", "yc"), ("stripe",), ("github",), ("gitlab",), ("vscode",), ("emacs",), ("vim", "neovim"),
    ("nix", "nixos"), ("debian",), ("ubuntu",), ("fedora",), ("arch linux",), ("freebsd",), ("openbsd",),
    ("hetzner",), ("cloudflare",), ("vercel",), ("heroku",), ("supabase",), ("duckdb",), ("clickhouse",),
    ("snowflake",), ("spark",), ("terraform",), ("graphql",), ("htmx",), ("tailwind",), ("django",),
    ("flask",), ("rails",), ("php",), ("perl",), ("bash",), ("tmux",), ("raspberry pi",), ("fpga",),
    ("quantum",), ("bitcoin",), ("ethereum",), ("gdpr",), ("open source",), ("hacker news",),
)

#: Ordinary words, many holding a term inside them (said, good, trust, farm, search, ...).
_PROSE_TEXT = (
    "the a of to and in is it that for on with as this be are was not but you have or by can at from they we"
    " more one all about there their so what if when which would like just than people time said again main"
    " trust crusty ago going good algorithm pineapple goggles intelligence internal armed farm charm metadata"
    " metal swiftly reactive reaction sparkle chromebook railway search research animal fishing rubbish pearl"
    " maintain certain email paid wait fair air chair detail gold cargocult androidish javanese scalar"
    " pythonic rusty golden aimless yesterday aircraft domain explain obtain training raise against gone ego"
    " argo logo cargoes swifter javelin amdahl harm alarm arms army warm storm normal formal perlin bashful"
    " stripes flasks railing sparkplug quantumly debate preview review interview linuxy"
)
_PROSE = tuple(_PROSE_TEXT.split())


def mention_specs() -> list[MentionSpec]:
    """The 100 mentions (every tenth with an exclusion, every seventh on titles and links only)."""
    specs = []
    for i, terms in enumerate(MENTIONS):
        extra = (f"-not {terms[0]}",) if i % 10 == 3 else ()
        scopes = ("title", "url", "domain") if i % 7 == 6 else ("title", "text")
        specs.append(MentionSpec(f"m{i}", (*terms, *extra), scopes=scopes))  # type: ignore[arg-type]
    return specs


def _sentence(rng: random.Random, terms: Sequence[str], dense: bool) -> str:
    words = [rng.choice(_PROSE) for _ in range(rng.randint(8, 22))]
    if dense or rng.random() < 0.02:
        words[rng.randrange(len(words))] = rng.choice(terms)
    return " ".join(words).capitalize() + "."


def _html(rng: random.Random, terms: Sequence[str], paragraphs: int, dense: bool) -> str:
    parts = [" ".join(_sentence(rng, terms, dense) for _ in range(rng.randint(1, 4))) for _ in range(paragraphs)]
    # HN's markup: paragraphs, italics, a link, an entity or two.
    return "<p>".join(p.replace(" good ", " <i>good</i> ").replace(" the ", " the&#x27;s ") for p in parts) + (
        ' <a href="https://example.com/x?a=1&amp;b=2" rel="nofollow">https://example.com/x</a>')


def realistic_items(rng: random.Random, count: int, *, dense: bool = False) -> list[Item]:
    """HN-like items: nine comments in ten, one story with a title and a link."""
    terms = [t for terms in MENTIONS for t in terms]
    items = []
    for n in range(count):
        if n % 10 == 0:
            title = _sentence(rng, terms, dense)[:80]
            items.append(Item(2_000_000 + n, type="story", by=f"user{n % 89}", title=title,
                              url=f"https://blog{n % 17}.example.org/{rng.choice(_PROSE)}/{n}"))
        else:
            items.append(Item(2_000_000 + n, type="comment", by=f"user{n % 89}", parent=1,
                              text=_html(rng, terms, rng.randint(1, 3), dense)))
    return items


def long_item(rng: random.Random, chars: int = 14_800) -> Item:
    """One long comment (HN's longest are about this size), with a few real mentions in it."""
    terms = [t for terms in MENTIONS for t in terms]
    text = ""
    while len(text) < chars:
        text += "<p>" + " ".join(_sentence(rng, terms, False) for _ in range(4))
    return Item(3_000_000, type="comment", by="longwinded", parent=1, text=text[:chars])


def _guarded(term: str) -> str:
    """A reference pattern: the term, with a Unicode word guard on each side where it has a word character."""
    body = r"\s+".join(re.escape(part) for part in term.split())
    head = r"(?<!\w)" if re.match(r"\w", term) else ""
    tail = r"(?!\w)" if re.search(r"\w$", term) else ""
    return head + body + tail


def reference_matches(specs: Sequence[MentionSpec], item: Item) -> set[str]:
    """Which mentions ``item`` mentions, by a slow and plain reading of the same rules."""
    texts = {"title": item.title or "", "url": item.url or "", "text": html_to_text(item.text) if item.text else ""}
    host = (item.url or "").split("/")[2].removeprefix("www.") if item.url and "//" in item.url else ""
    texts["domain"] = host
    found = set()
    for spec in specs:
        scoped = [texts[s] for s in spec.scopes if texts.get(s)]
        hit = any(re.search(_guarded(t), text, re.IGNORECASE) for t in spec.positive for text in scoped)
        excluded = any(re.search(_guarded(t), texts[s], re.IGNORECASE)
                       for t in spec.negative for s in spec.scopes if texts.get(s))
        if hit and not excluded:
            found.add(spec.name)
    return found
