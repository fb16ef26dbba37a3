"""Callback data: the wire format equals the ids of flows.md, fits 64 bytes, and refuses forgeries."""

from __future__ import annotations

import re

import pytest
from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH

import contract
from roles.bot import callbacks as cb

# placeholder -> a concrete value, to turn flows.md's id templates into wire data
PLACEHOLDERS = {"<d>": "7", "<gid>": "123", "<p>": "4", "<p±1>": "5", "<m>": "60", "<minutes>": "90",
                "<uid>": "42", "<days>": "30",
                "<open|approval|whitelist>": "approval"}


def flow_ids() -> list[str]:
    text = contract.FLOWS_MD.read_text(encoding="utf-8")
    ids = set(re.findall(r"`([a-z]+:[a-z]+(?::[^`\s]+)?)`", text))
    ids -= {"area:action[:arg…]", "grp:t", "grp:all", "adm:mode"}  # prose, not ids
    out = []
    for raw in sorted(ids):
        for placeholder, value in PLACEHOLDERS.items():
            raw = raw.replace(placeholder, value)
        out.append(raw)
    return out


def test_flow_ids_are_found() -> None:
    ids = flow_ids()
    assert "grp:t:123:4" in ids and "acc:kp:7" in ids and "menu:main" in ids and len(ids) >= 30


@pytest.mark.parametrize("data", flow_ids())
def test_every_id_of_flows_md_round_trips(data: str) -> None:
    parsed = cb.parse(data)
    assert parsed is not None, f"{data} matches no callback class"
    assert parsed.pack() == data


def test_factories_pack_the_documented_wire_format() -> None:
    assert cb.Grp(action=cb.GrpAction.toggle, gid=5, page=0).pack() == "grp:t:5:0"
    assert cb.Acc(action=cb.AccAction.keypad, key="3").pack() == "acc:kp:3"
    assert cb.Acc(action=cb.AccAction.keypad, key="del").pack() == "acc:kp:del"
    assert cb.Acc(action=cb.AccAction.logout, confirm="yes").pack() == "acc:logout:yes"
    assert cb.Acc(action=cb.AccAction.logout).pack() == "acc:logout"
    assert cb.Int(action=cb.IntAction.set, minutes=1440).pack() == "int:set:1440"
    assert cb.Adm(action=cb.AdmAction.approve, uid=42).pack() == "adm:approve:42"
    assert cb.parse("acc:logout") == cb.Acc(action=cb.AccAction.logout)
    assert cb.parse("acc:logout:yes") == cb.Acc(action=cb.AccAction.logout, confirm="yes")
    assert cb.parse("grp:all:2") == cb.Grp(action=cb.GrpAction.all, page=2)
    # U8: a notification's buttons for one of several accounts name it
    assert cb.St(action=cb.StAction.show, aid=7).pack() == "st:show:7"
    assert cb.parse("grp:menu:7") == cb.Grp(action=cb.GrpAction.menu, aid=7)
    assert cb.parse("msg:menu:7") == cb.Msg(action=cb.MsgAction.menu, aid=7)
    assert cb.parse("st:show") == cb.St(action=cb.StAction.show)


def test_an_argument_outside_the_actions_shape_is_refused() -> None:
    with pytest.raises(ValueError):
        cb.Grp(action=cb.GrpAction.menu, page=1)  # grp:menu takes no page
    with pytest.raises(ValueError):
        cb.Grp(action=cb.GrpAction.toggle, gid=5)  # grp:t needs the page too


def test_filters_tell_the_shapes_of_one_action_apart() -> None:
    plain = cb.Acc.on(cb.AccAction.logout, confirm=None).rule
    assert plain is not None
    assert plain.resolve(cb.parse("acc:logout")) and not plain.resolve(cb.parse("acc:logout:yes"))


def test_largest_values_fit_telegrams_limit() -> None:
    widest = [
        cb.Grp(action=cb.GrpAction.toggle, gid=2**63 - 1, page=100_000),
        cb.Adm(action=cb.AdmAction.approve, uid=2**63 - 1),
        cb.St(action=cb.StAction.show, aid=2**63 - 1),
        cb.Adm(action=cb.AdmAction.grant, uid=2**63 - 1, days=3650),
        cb.Grp(action=cb.GrpAction.list, page=100_000),
        cb.Int(action=cb.IntAction.set, minutes=100_000),
        cb.Grp(action=cb.GrpAction.topics, gid=2**63 - 1, tid=2**31 - 1),
        cb.Grp(action=cb.GrpAction.topic_page, gid=2**63 - 1, page=100_000),
    ]
    for data in widest:
        assert len(data.pack().encode()) <= MAX_CALLBACK_LENGTH


@pytest.mark.parametrize("forged", [
    "", "grp", "grp:t", "grp:t:1", "grp:t:abc:0", "grp:t:0:0", "grp:t:-1:0", "grp:t:1:-1",
    "grp:t:99999999999999999999999:0", "grp:t:1:0:extra", "grp:list:100001", "int:set:0", "int:set:x",
    "acc:kp:x", "acc:kp:10", "acc:logout:no", "acc:menu:", "acc:kp::", "grp:menu:0", "grp:menu:x", "grp:menu:1:2",
        "st:show:0", "st:show:-1", "st:refresh:5", "st:notify:5", "msg:menu:x", "msg:set:5", "bc:now:no", "menu:other", "zzz:main", "adm:approve:0",
    "grp:t:1:" + "9" * 70,
    "grp:tp", "grp:tp:0", "grp:tp:x", "grp:tp:1:0", "grp:tp:1:-3", "grp:tp:1:2147483648", "grp:tp:1:2:3",
    "grp:tpl:1", "grp:tpl:1:x", "grp:tpl:1:100001",
])
def test_forged_or_malformed_data_matches_nothing(forged: str) -> None:
    assert cb.parse(forged) is None


def test_over_long_data_is_refused_before_parsing() -> None:
    assert cb.parse("menu:main" + " " * 60) is None


def test_forum_topic_ids_of_flows_beyond_round_trip() -> None:
    """U11.2: ``grp:tp:<gid>`` (the topics) and ``grp:tp:<gid>:<tid>`` (choose one), and the pages."""
    text = contract.BEYOND_MD.read_text(encoding="utf-8")
    assert "`grp:tp:<gid>`" in text and "`grp:tp:<gid>:<tid>`" in text
    assert cb.parse("grp:tp:123") == cb.Grp(action=cb.GrpAction.topics, gid=123)
    assert cb.parse("grp:tp:123:5") == cb.Grp(action=cb.GrpAction.topics, gid=123, tid=5)
    assert cb.parse("grp:tpl:123:1") == cb.Grp(action=cb.GrpAction.topic_page, gid=123, page=1)
    for data in ("grp:tp:123", "grp:tp:123:5", "grp:tpl:123:1"):
        parsed = cb.parse(data)
        assert parsed is not None and parsed.pack() == data
    listing = cb.Grp.on(cb.GrpAction.topics, tid=None).rule
    assert listing is not None
    assert listing.resolve(cb.parse("grp:tp:123")) and not listing.resolve(cb.parse("grp:tp:123:5"))


def test_account_ids_of_flows_beyond_round_trip() -> None:
    """U8: ``acc:sel:<aid>`` and the named account's logout ``acc:logout:<aid>`` (+ ``:yes``) beside
    the current account's ``acc:logout`` / ``acc:logout:yes``: one length, two shapes, told apart."""
    text = contract.BEYOND_MD.read_text(encoding="utf-8")
    assert "`acc:sel:<aid>`" in text and "`acc:logout:<aid>`" in text
    assert cb.parse("acc:sel:42") == cb.Acc(action=cb.AccAction.select, aid=42)
    assert cb.parse("acc:logout:42") == cb.Acc(action=cb.AccAction.logout, aid=42)
    assert cb.parse("acc:logout:42:yes") == cb.Acc(action=cb.AccAction.logout, aid=42, confirm="yes")
    assert cb.parse("acc:logout:yes") == cb.Acc(action=cb.AccAction.logout, confirm="yes")
    for data in ("acc:sel:42", "acc:logout:42", "acc:logout:42:yes", "acc:logout:yes", "acc:logout"):
        parsed = cb.parse(data)
        assert parsed is not None and parsed.pack() == data
    assert len(cb.Acc(action=cb.AccAction.logout, aid=2**63 - 1, confirm="yes").pack().encode()) <= MAX_CALLBACK_LENGTH
    for forged in ("acc:sel", "acc:sel:0", "acc:sel:x", "acc:sel:-1", "acc:sel:1:2", "acc:logout:0",
                   "acc:logout:x:yes", "acc:logout:1:no", "acc:logout:yes:1", "acc:sel:99999999999999999999"):
        assert cb.parse(forged) is None, forged
    named = cb.Acc.on(cb.AccAction.logout, confirm=None).rule
    assert named is not None and named.resolve(cb.parse("acc:logout:42"))
    assert not named.resolve(cb.parse("acc:logout:42:yes"))
