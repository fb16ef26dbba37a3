"""Parse modes -> entities with UTF-16 offsets, and Telegram's "can't parse entities" errors."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import MessageEntity

from sandbox import formatting
from sandbox.formatting import EntityParseError, parse, utf16_len
from tests.sandbox.conftest import USER, Sandbox


def ents(*items: tuple[str, int, int]) -> list[dict[str, object]]:
    return [{"type": kind, "offset": offset, "length": length} for kind, offset, length in items]


def test_html_entities_with_emoji_before_bold_use_utf16_offsets() -> None:
    text, entities = parse("👋🏽 <b>Hello</b> <i>wor<u>ld</u></i> &lt;3 &amp; &#128512;", "HTML")

    assert text == "👋🏽 Hello world <3 & 😀"
    # 👋 and 🏽 are two UTF-16 units each: "Hello" starts at 5, not 3
    assert entities == ents(("bold", 5, 5), ("italic", 11, 5), ("underline", 14, 2))
    assert utf16_len(text) == len(text) + 3


def test_html_all_supported_tags() -> None:
    html = ('<strong>b</strong><em>i</em><ins>u</ins><del>s</del><tg-spoiler>p</tg-spoiler>'
            '<span class="tg-spoiler">q</span><a href="https://ex.com/?a=1&amp;b=2">link</a><code>c</code>'
            '<pre><code class="language-python">x = 1</code></pre><tg-emoji emoji-id="5368324170671202286">👍'
            '</tg-emoji><blockquote>quote</blockquote><blockquote expandable>more</blockquote>')
    text, entities = parse(html, "HTML")

    assert text == "biuspqlinkcx = 1👍quotemore"
    assert [e["type"] for e in entities] == [
        "bold", "italic", "underline", "strikethrough", "spoiler", "spoiler", "text_link", "code", "pre",
        "custom_emoji", "blockquote", "expandable_blockquote"]
    by_type = {e["type"]: e for e in entities}
    assert by_type["text_link"] == {"type": "text_link", "offset": 6, "length": 4, "url": "https://ex.com/?a=1&b=2"}
    assert by_type["pre"] == {"type": "pre", "offset": 11, "length": 5, "language": "python"}
    assert by_type["custom_emoji"]["custom_emoji_id"] == "5368324170671202286"
    assert by_type["custom_emoji"]["length"] == 2


@pytest.mark.parametrize(("html", "error"), [
    ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
    ("a<br>b", 'Unsupported start tag "br" at byte offset 1'),
    ("é<marquee>", 'Unsupported start tag "marquee" at byte offset 2'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ("<b class='x'", "Unclosed start tag at byte offset 0"),
])
def test_html_errors(html: str, error: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse(html, "HTML")
    assert str(info.value) == error


def test_markdown_v2_entities_and_escapes() -> None:
    source = ("🎉 *bold* _italic_ __under__ ~strike~ ||spoiler|| `co\\`de` [link](https://ex.com/a_(b\\)) "
              "```python\nprint(1)``` 1\\.5\\! \\*not bold\\*")
    text, entities = parse(source, "MarkdownV2")

    assert text == "🎉 bold italic under strike spoiler co`de link print(1) 1.5! *not bold*"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "italic", "offset": 8, "length": 6},
        {"type": "underline", "offset": 15, "length": 5},
        {"type": "strikethrough", "offset": 21, "length": 6},
        {"type": "spoiler", "offset": 28, "length": 7},
        {"type": "code", "offset": 36, "length": 5},
        {"type": "text_link", "offset": 42, "length": 4, "url": "https://ex.com/a_(b)"},
        {"type": "pre", "offset": 47, "length": 8, "language": "python"},
    ]


def test_markdown_v2_nesting_quotes_and_custom_emoji() -> None:
    text, entities = parse("*bold _both_*\n>quoted\n>lines\nafter ![👍](tg://emoji?id=42)", "MarkdownV2")

    assert text == "bold both\nquoted\nlines\nafter 👍"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 9},
        {"type": "italic", "offset": 5, "length": 4},
        {"type": "blockquote", "offset": 10, "length": 12},
        {"type": "custom_emoji", "offset": 29, "length": 2, "custom_emoji_id": "42"},
    ]
    # "\r" separates italic from underline, as the Bot API documents
    text, entities = parse("___both_\r__", "MarkdownV2")
    assert text == "both" and entities == ents(("underline", 0, 4), ("italic", 0, 4))


@pytest.mark.parametrize(("source", "error"), [
    ("Price: 1.5", "Character '.' is reserved and must be escaped with the preceding '\\'"),
    ("a-b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
    ("é *bold", "Can't find end of Bold entity at byte offset 3"),
    ("_it", "Can't find end of Italic entity at byte offset 0"),
    ("`code", "Can't find end of Code entity at byte offset 0"),
    ("[x](https://a", "Can't find end of a URL at byte offset 3"),
    ("![x](https://a.b)", "Custom emoji entity must contain a tg://emoji URL"),
])
def test_markdown_v2_errors(source: str, error: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse(source, "MarkdownV2")
    assert str(info.value) == error


def test_legacy_markdown() -> None:
    text, entities = parse("*b* _i_ `c` [l](https://x.y) a.b-c", "Markdown")
    assert text == "b i c l a.b-c"
    assert entities == [*ents(("bold", 0, 1), ("italic", 2, 1), ("code", 4, 1)),
                        {"type": "text_link", "offset": 6, "length": 1, "url": "https://x.y"}]


def test_whitespace_is_trimmed_and_entities_shift() -> None:
    text, entities = parse("  \n<b>x</b> y \n", "HTML")
    assert text == "x y" and entities == ents(("bold", 0, 1))


def test_telegram_detects_links_commands_mentions_and_tags() -> None:
    text, entities = parse("🙂 /start@sandbox_bot see https://ex.com/a, mail a@b.io #news @someone", None)

    found = {text[e["offset"] - 1:e["offset"] - 1 + e["length"]]: e["type"] for e in entities}
    assert found == {"/start@sandbox_bot": "bot_command", "https://ex.com/a": "url", "a@b.io": "email",
                     "#news": "hashtag", "@someone": "mention"}
    # nothing is detected inside code
    assert parse("<code>/start https://x.y</code>", "HTML")[1] == ents(("code", 0, 18))


def test_entities_given_directly_win_and_are_clipped() -> None:
    raw = [{"type": "bold", "offset": 0, "length": 99}, {"type": "italic", "offset": 2, "length": 0}]
    text, entities = parse("<b>not html</b>", "HTML", raw)
    assert text == "<b>not html</b>"
    assert entities == ents(("bold", 0, 15))
    with pytest.raises(EntityParseError):
        formatting.normalize_entities([{"type": "nonsense", "offset": 0, "length": 1}], "x")


async def test_parse_modes_through_aiogram(sandbox: Sandbox, bot: Bot) -> None:
    html = await bot.send_message(USER, "👋 <b>Hi</b> <a href='https://ex.com'>site</a>", parse_mode="HTML")
    md = await bot.send_message(USER, "👋 *Hi* ||secret||", parse_mode="MarkdownV2")
    direct = await bot.send_message(USER, "👋 Hi", entities=[MessageEntity(type="underline", offset=3, length=2)])

    assert html.text == "👋 Hi site"
    assert [(e.type, e.offset, e.length, e.url) for e in html.entities or []] == [
        ("bold", 3, 2, None), ("text_link", 6, 4, "https://ex.com")]
    assert [(e.type, e.offset, e.length) for e in md.entities or []] == [("bold", 3, 2), ("spoiler", 6, 6)]
    assert [(e.type, e.offset, e.length) for e in direct.entities or []] == [("underline", 3, 2)]
    chat = await sandbox.client.chat(USER)
    assert chat[0]["entities"] == [{"type": "bold", "offset": 3, "length": 2},
                                   {"type": "text_link", "offset": 6, "length": 4, "url": "https://ex.com"}]


async def test_parse_errors_through_aiogram(sandbox: Sandbox, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest) as md:
        await bot.send_message(USER, "Total: 1.5", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest) as html:
        await bot.send_message(USER, "<b>x", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest) as mode:
        await bot.send_message(USER, "x", parse_mode="BBCode")

    assert md.value.message == ("Bad Request: can't parse entities: Character '.' is reserved and must be "
                                "escaped with the preceding '\\'")
    assert html.value.message == ("Bad Request: can't parse entities: Can't find end tag corresponding to "
                                  "start tag \"b\"")
    assert mode.value.message == "Bad Request: unsupported parse_mode"
    assert await sandbox.client.chat(USER) == []
