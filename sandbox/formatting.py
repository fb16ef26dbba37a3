"""Message text as Telegram stores it: parse modes -> plain text + entities.

Offsets and lengths are in UTF-16 code units, as in the Bot API. The parsers
follow TDLib's behaviour closely enough for a bot to meet the same results and
the same ``can't parse entities`` errors as on Telegram: HTML (the tags Telegram
accepts), MarkdownV2 (reserved characters must be escaped) and legacy Markdown.
After parsing, leading and trailing whitespace is trimmed and entities that
Telegram finds on its own (URLs, mentions, hashtags, bot commands, e-mails) are
added where no formatting entity already covers the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Entity = dict[str, Any]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

# entity types whose text Telegram leaves alone when it detects links and commands
_OPAQUE = {"code", "pre", "text_link", "text_mention", "custom_emoji", "url", "email", "mention",
           "hashtag", "cashtag", "bot_command", "phone_number"}
_TRIM = " \t\r\n\x0b\x0c"


class EntityParseError(ValueError):
    """Malformed markup; ``str(error)`` is the part after ``can't parse entities: ``."""


class UnsupportedParseMode(ValueError):
    """A parse mode Telegram does not know."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _u16_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def utf16_prefix(text: str) -> list[int]:
    """``prefix[i]`` = UTF-16 offset of ``text[i]`` (length ``len(text) + 1``)."""
    prefix = [0] * (len(text) + 1)
    total = 0
    for index, char in enumerate(text):
        prefix[index] = total
        total += _u16_units(char)
    prefix[len(text)] = total
    return prefix


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


@dataclass
class _Builder:
    """Accumulates output text and its UTF-16 length."""

    parts: list[str] = field(default_factory=list)
    u16: int = 0
    chars: int = 0

    def add(self, chunk: str) -> None:
        if chunk:
            self.parts.append(chunk)
            self.u16 += utf16_len(chunk)
            self.chars += len(chunk)

    def text(self) -> str:
        return "".join(self.parts)

    def ends_with_newline(self) -> bool:
        return bool(self.parts) and self.parts[-1].endswith("\n")


@dataclass
class _Open:
    kind: str  # entity type (or "code_in_pre" for <code> inside <pre>)
    tag: str  # HTML tag name / markdown marker
    offset: int  # UTF-16 start in the output
    byte_offset: int  # byte offset of the opening markup in the input
    order: int
    extra: dict[str, Any] = field(default_factory=dict)
    char_start: int = 0


def _entity(kind: str, offset: int, length: int, extra: dict[str, Any] | None = None) -> Entity:
    entity: Entity = {"type": kind, "offset": offset, "length": length}
    if extra:
        entity.update(extra)
    return entity


# ---------------------------------------------------------------- HTML

_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "tg-emoji": "custom_emoji",
    "blockquote": "blockquote",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\u00a0"}
_HTML_ENTITY = re.compile(r"&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,8});")
_TAG_NAME = re.compile(r"[a-zA-Z0-9-]+")
_ATTR = re.compile(r"\s*([a-zA-Z0-9_-]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")


def _decode_html_entities(value: str) -> str:
    return _HTML_ENTITY.sub(lambda m: _decode_one(m) or m.group(0), value)


def _decode_one(match: re.Match[str]) -> str | None:
    name = match.group(1)
    if name.startswith(("#x", "#X")):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    else:
        return _NAMED_ENTITIES.get(name.lower())
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def parse_html(text: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    stack: list[_Open] = []
    entities: list[tuple[int, Entity]] = []
    order = 0
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&":
            match = _HTML_ENTITY.match(text, i)
            decoded = _decode_one(match) if match else None
            if match and decoded is not None:
                out.add(decoded)
                i = match.end()
            else:
                out.add("&")
                i += 1
            continue
        if char != "<":
            out.add(char)
            i += 1
            continue
        begin = _byte_offset(text, i)
        if i + 1 < n and text[i + 1] == "/":
            i = _html_end_tag(text, i, begin, stack, out, entities)
            continue
        name_match = _TAG_NAME.match(text, i + 1)
        name = name_match.group(0).lower() if name_match else ""
        if name not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {begin}')
        assert name_match is not None
        j = name_match.end()
        attrs: dict[str, str] = {}
        while True:
            attr = _ATTR.match(text, j)
            if not attr:
                break
            raw = attr.group(2) or ""
            if raw[:1] in ("'", '"'):
                raw = raw[1:-1]
            attrs[attr.group(1).lower()] = _decode_html_entities(raw)
            j = attr.end()
        while j < n and text[j].isspace():
            j += 1
        if j >= n or text[j] != ">":
            raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
        order += 1
        stack.append(_html_open(name, attrs, out.u16, begin, order, stack))
        i = j + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return out.text(), _sorted(entities)


def _html_open(name: str, attrs: dict[str, str], offset: int, begin: int, order: int,
               stack: list[_Open]) -> _Open:
    kind = _HTML_TAGS[name]
    extra: dict[str, Any] = {}
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError('Tag "span" must have class "tg-spoiler"')
    if name == "a":
        href = attrs.get("href", "")
        extra["url"] = href
    elif name == "tg-emoji":
        emoji_id = attrs.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise EntityParseError('Custom emoji entity must have attribute "emoji-id"')
        extra["custom_emoji_id"] = emoji_id
    elif name == "blockquote" and "expandable" in attrs:
        kind = "expandable_blockquote"
    elif name == "code" and stack and stack[-1].tag == "pre":
        # <pre><code class="language-x"> is one pre entity with a language, as in TDLib
        language = attrs.get("class", "")
        if language.startswith("language-") and len(language) > len("language-"):
            stack[-1].extra["language"] = language[len("language-"):]
        kind = "code_in_pre"
    return _Open(kind, name, offset, begin, order, extra)


def _html_end_tag(text: str, i: int, begin: int, stack: list[_Open], out: _Builder,
                  entities: list[tuple[int, Entity]]) -> int:
    name_match = _TAG_NAME.match(text, i + 2)
    name = name_match.group(0).lower() if name_match else ""
    j = name_match.end() if name_match else i + 2
    while j < len(text) and text[j].isspace():
        j += 1
    if j >= len(text) or text[j] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
    top = stack[-1]
    if name != top.tag:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {begin}, expected "</{top.tag}>", found "</{name}>"')
    stack.pop()
    length = out.u16 - top.offset
    if length > 0 and top.kind != "code_in_pre" and not (top.kind == "text_link" and not top.extra["url"]):
        entities.append((top.order, _entity(top.kind, top.offset, length, top.extra)))
    return j + 1


def _sorted(entities: list[tuple[int, Entity]]) -> list[Entity]:
    entities.sort(key=lambda item: (item[1]["offset"], -item[1]["length"], item[0]))
    return [entity for _, entity in entities]


# ---------------------------------------------------------------- MarkdownV2

_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
             "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "text_link": "TextUrl",
             "custom_emoji": "CustomEmoji"}


def _escapable(text: str, i: int) -> bool:
    return i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126


class _MarkdownV2:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out = _Builder()
        self.stack: list[_Open] = []
        self.entities: list[tuple[int, Entity]] = []
        self.order = 0
        self.quote: _Open | None = None

    def parse(self) -> tuple[str, list[Entity]]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            if (i == 0 or text[i - 1] == "\n") and not self._in_code():
                i = self._line_start(i)
                if i >= n:
                    break
            char = text[i]
            if char == "\\" and _escapable(text, i):
                self.out.add(text[i + 1])
                i += 2
                continue
            if self._in_code() and char != "`":
                self.out.add(char)
                i += 1
                continue
            if char == "\r":
                i += 1  # documented as ignored: it separates "_" from "__"
                continue
            if char == "|" and self._closes_expandable(i):
                self._close_quote()
                i += 2
                continue
            if char not in _RESERVED:
                self.out.add(char)
                i += 1
                continue
            i = self._end(i) if self._is_end(i) else self._start(i)
        if self.stack:
            top = self.stack[-1]
            raise EntityParseError(
                f"Can't find end of {_MD_NAMES[top.kind]} entity at byte offset {top.byte_offset}")
        self._close_quote()
        return self.out.text(), _sorted(self.entities)

    def _in_code(self) -> bool:
        return bool(self.stack) and self.stack[-1].kind in ("code", "pre")

    def _line_start(self, i: int) -> int:
        text = self.text
        if text.startswith("**>", i) and self.quote is None:
            self._open_quote("expandable_blockquote", i)
            return i + 3
        if text[i] == ">":
            if self.quote is None:
                self._open_quote("blockquote", i)
            return i + 1
        if self.quote is not None:
            self._close_quote()
        return i

    def _open_quote(self, kind: str, i: int) -> None:
        self.order += 1
        self.quote = _Open(kind, ">", self.out.u16, _byte_offset(self.text, i), self.order)

    def _closes_expandable(self, i: int) -> bool:
        text = self.text
        return (self.quote is not None and self.quote.kind == "expandable_blockquote"
                and text.startswith("||", i) and (i + 2 == len(text) or text[i + 2] == "\n")
                and not (self.stack and self.stack[-1].kind == "spoiler"))

    def _close_quote(self) -> None:
        quote, self.quote = self.quote, None
        if quote is None:
            return
        end = self.out.u16 - (1 if self.out.ends_with_newline() else 0)
        if end > quote.offset:
            self.entities.append((quote.order, _entity(quote.kind, quote.offset, end - quote.offset)))

    def _is_end(self, i: int) -> bool:
        if not self.stack:
            return False
        text, kind, char = self.text, self.stack[-1].kind, self.text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        return {
            "bold": char == "*",
            "italic": char == "_" and nxt != "_",
            "underline": char == "_" and nxt == "_",
            "strikethrough": char == "~",
            "spoiler": char == "|" and nxt == "|",
            "code": char == "`",
            "pre": text.startswith("```", i),
            "text_link": char == "]",
            "custom_emoji": char == "]",
        }[kind]

    def _start(self, i: int) -> int:
        text, char = self.text, self.text[i]
        begin = _byte_offset(text, i)
        nxt = text[i + 1] if i + 1 < len(text) else ""
        extra: dict[str, Any] = {}
        if char == "_":
            kind, i = ("underline", i + 2) if nxt == "_" else ("italic", i + 1)
        elif char == "*":
            kind, i = "bold", i + 1
        elif char == "~":
            kind, i = "strikethrough", i + 1
        elif char == "|" and nxt == "|":
            kind, i = "spoiler", i + 2
        elif char == "[":
            kind, i = "text_link", i + 1
        elif char == "!" and nxt == "[":
            kind, i = "custom_emoji", i + 2
        elif char == "`" and text.startswith("```", i):
            kind = "pre"
            i, language = self._pre_header(i + 3)
            if language:
                extra["language"] = language
        elif char == "`":
            kind, i = "code", i + 1
        else:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        self.order += 1
        self.stack.append(_Open(kind, char, self.out.u16, begin, self.order, extra, self.out.chars))
        return i

    def _pre_header(self, i: int) -> tuple[int, str]:
        text, n = self.text, len(self.text)
        end = i
        while end < n and not text[end].isspace() and text[end] != "`":
            end += 1
        language = ""
        if end != i and end < n and text[end] != "`":
            language, i = text[i:end], end
        if i < n and text[i] in "\r\n":
            i += 2 if i + 1 < n and text[i + 1] in "\r\n" and text[i] != text[i + 1] else 1
        return i, language

    def _end(self, i: int) -> int:
        top = self.stack.pop()
        extra = dict(top.extra)
        if top.kind in ("underline", "spoiler"):
            i += 2
        elif top.kind == "pre":
            i += 3
        elif top.kind in ("text_link", "custom_emoji"):
            i, url = self._link_target(i + 1)
            if top.kind == "custom_emoji":
                if url is None or not url.startswith("tg://emoji?id=") or not url[14:].isdigit():
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                extra["custom_emoji_id"] = url[14:]
            else:
                extra["url"] = url if url is not None else self.out.text()[top.char_start:]
        else:
            i += 1
        length = self.out.u16 - top.offset
        if length > 0 and not (top.kind == "text_link" and not extra.get("url")):
            self.entities.append((top.order, _entity(top.kind, top.offset, length, extra)))
        return i

    def _link_target(self, i: int) -> tuple[int, str | None]:
        text, n = self.text, len(self.text)
        if i >= n or text[i] != "(":
            return i, None
        begin = _byte_offset(text, i)
        i += 1
        url: list[str] = []
        while i < n and text[i] != ")":
            if text[i] == "\\" and _escapable(text, i):
                url.append(text[i + 1])
                i += 2
                continue
            url.append(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(f"Can't find end of a URL at byte offset {begin}")
        return i + 1, "".join(url)


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    return _MarkdownV2(text).parse()


# ---------------------------------------------------------------- legacy Markdown

_LEGACY = {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    entities: list[tuple[int, Entity]] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
            continue
        if char not in _LEGACY:
            out.add(char)
            i += 1
            continue
        begin = _byte_offset(text, i)
        start = out.u16
        extra: dict[str, Any] = {}
        kind = _LEGACY[char]
        if text.startswith("```", i):
            kind, closing = "pre", "```"
            i += 3
        else:
            closing = "]" if char == "[" else char
            i += 1
        end = text.find(closing, i)
        if end < 0:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin}")
        out.add(text[i:end])
        i = end + len(closing)
        if kind == "text_link":
            if i < n and text[i] == "(":
                close = text.find(")", i)
                if close < 0:
                    raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin}")
                extra["url"] = text[i + 1:close]
                i = close + 1
            else:
                continue
        if out.u16 > start:
            entities.append((len(entities), _entity(kind, start, out.u16 - start, extra)))
    return out.text(), _sorted(entities)


# ---------------------------------------------------------------- entities passed directly

_ENTITY_TYPES = {"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bold",
                 "italic", "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote",
                 "code", "pre", "text_link", "text_mention", "custom_emoji", "date_time"}


def normalize_entities(raw: Any, text: str) -> list[Entity]:
    """Validate entities given by the caller against ``text`` (UTF-16), dropping empty ones."""
    if not isinstance(raw, list):
        raise EntityParseError("entities must be an array")
    total = utf16_len(text)
    result: list[tuple[int, Entity]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise EntityParseError("entity must be an object")
        kind, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if kind not in _ENTITY_TYPES or not isinstance(offset, int) or not isinstance(length, int):
            raise EntityParseError(f"entity {index} is invalid")
        offset = max(0, offset)
        length = min(length, total - offset)
        if length <= 0:
            continue
        entity = {k: v for k, v in item.items() if v is not None}
        entity.update({"offset": offset, "length": length})
        result.append((index, entity))
    return _sorted(result)


# ---------------------------------------------------------------- trimming and detection

def trim(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip leading/trailing whitespace as Telegram does, shifting and clipping entities."""
    stripped = text.strip(_TRIM)
    if stripped == text:
        return text, entities
    if not stripped:
        return "", []
    head = utf16_len(text[: len(text) - len(text.lstrip(_TRIM))])
    total = utf16_len(stripped)
    result = []
    for entity in entities:
        start = max(entity["offset"] - head, 0)
        end = min(entity["offset"] + entity["length"] - head, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


_DETECTORS: list[tuple[str, re.Pattern[str]]] = [
    ("url", re.compile(r"\b(?:https?://|www\.|t\.me/)[^\s<>\"]+", re.IGNORECASE)),
    ("email", re.compile(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}\b")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*")),
    ("cashtag", re.compile(r"(?<![\w$])\$[A-Z]{3,8}\b")),
    ("bot_command",
     re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z][A-Za-z0-9_]{2,31})?(?![\w/<>])")),
]
_URL_TAIL = ".,;:!?)]'\""


def detect_entities(text: str, entities: list[Entity]) -> list[Entity]:
    """Add the entities Telegram detects itself where no link-like or code entity is already."""
    if not text:
        return entities
    prefix = utf16_prefix(text)
    taken = [(e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] in _OPAQUE]
    found: list[tuple[int, Entity]] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.start(), match.end()
            if kind == "url":
                while end > start and text[end - 1] in _URL_TAIL:
                    end -= 1
            u_start, u_end = prefix[start], prefix[end]
            if u_end <= u_start or any(u_start < b and a < u_end for a, b in taken):
                continue
            taken.append((u_start, u_end))
            found.append((len(found), _entity(kind, u_start, u_end - u_start)))
    if not found:
        return entities
    merged = [(i + len(found), e) for i, e in enumerate(entities)] + found
    return _sorted(merged)


def parse(text: str, parse_mode: str | None, entities: Any = None) -> tuple[str, list[Entity]]:
    """Text as Telegram stores it. Raises ``EntityParseError`` for malformed markup.

    Entities given directly win over ``parse_mode``, as in the Bot API.
    """
    if entities is not None:
        plain, result = text, normalize_entities(entities, text)
    elif not parse_mode:
        plain, result = text, []
    else:
        mode = parse_mode.lower()
        if mode == "html":
            plain, result = parse_html(text)
        elif mode == "markdownv2":
            plain, result = parse_markdown_v2(text)
        elif mode == "markdown":
            plain, result = parse_markdown(text)
        else:
            raise UnsupportedParseMode(parse_mode)
    plain, result = trim(plain, result)
    return plain, detect_entities(plain, result)
