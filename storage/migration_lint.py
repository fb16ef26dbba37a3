"""Keeps migrations additive: finds statements that drop, rename, narrow or lock out old code.

A file may opt out with a line ``-- migration: approved-destructive <reason>``
after a human review; nothing else silences the check.
"""

from __future__ import annotations

import re

APPROVAL = re.compile(r"^--\s*migration:\s*approved-destructive[ \t]+\S", re.MULTILINE | re.IGNORECASE)

RULES: list[tuple[str, re.Pattern[str]]] = [
    ("drops a table", re.compile(r"\bDROP\s+TABLE\b", re.I)),
    ("drops a column", re.compile(r"\bDROP\s+COLUMN\b", re.I)),
    ("drops a schema or database", re.compile(r"\bDROP\s+(SCHEMA|DATABASE)\b", re.I)),
    ("deletes all rows", re.compile(r"\bTRUNCATE\b", re.I)),
    ("renames a table or column", re.compile(r"\bRENAME\b", re.I)),
    ("changes a column type", re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I)),
    ("makes an existing column NOT NULL", re.compile(r"\bALTER\s+COLUMN\s+\S+\s+SET\s+NOT\s+NULL\b", re.I)),
]
ADD_COLUMN = re.compile(r"\bADD\s+COLUMN\s+(IF\s+NOT\s+EXISTS\s+)?(?P<body>[^,;]+)", re.I)


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql)


def problems(sql: str) -> list[str]:
    """What makes this migration destructive; empty when it is additive or approved."""
    if APPROVAL.search(sql):
        return []
    code = _strip_comments(sql)
    found = [what for what, pattern in RULES if pattern.search(code)]
    for match in ADD_COLUMN.finditer(code):
        body = match["body"]
        if re.search(r"\bNOT\s+NULL\b", body, re.I) and not re.search(r"\bDEFAULT\b", body, re.I):
            found.append("adds a NOT NULL column without a default")
    return found
