"""Keyboards and texts of the control bot."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup

from roles.bot import keyboards as kb
from roles.bot import texts


def ids(markup: InlineKeyboardMarkup) -> list[str]:
    return [b.callback_data or "" for row in markup.inline_keyboard for b in row]


def test_main_menu_buttons_follow_the_state_and_the_role() -> None:
    assert sorted(ids(kb.main_menu(running=False, admin=False))) == sorted(
        ["acc:menu", "grp:menu", "msg:menu", "int:menu", "sch:menu", "bc:start", "st:show", "set:menu"])
    running = ids(kb.main_menu(running=True, admin=False))
    assert "bc:stop" in running and "bc:start" not in running
    assert "adm:menu" in ids(kb.main_menu(running=False, admin=True))


def test_code_keypad_has_every_digit_and_the_login_controls() -> None:
    data = ids(kb.code_keypad())
    assert {f"acc:kp:{d}" for d in range(10)} <= set(data)
    assert {"acc:kp:del", "acc:kp:ok", "acc:resend", "acc:cancel"} <= set(data)


def test_share_phone_asks_for_the_contact() -> None:
    markup = kb.share_phone()
    assert markup.keyboard[0][0].request_contact is True
    assert markup.keyboard[1][0].text == texts.BTN_CANCEL


def test_group_page_navigation_and_titles() -> None:
    groups = [kb.GroupButton(1, "Alpha", True, "active", ""), kb.GroupButton(2, "Beta", False, "active", ""),
              kb.GroupButton(3, "Gamma", False, "disabled", "CHAT_WRITE_FORBIDDEN")]
    first = kb.group_page(groups, page=0, pages=2)
    assert ids(first) == ["grp:t:1:0", "grp:t:2:0", "grp:t:3:0", "grp:list:1", "grp:all:0", "grp:none:0",
                          "grp:menu"]
    titles = [b.text for row in first.inline_keyboard for b in row][:3]
    assert titles == ["✅ Alpha", "⬜ Beta", "⚠️ Gamma (can't write)"]
    last = ids(kb.group_page(groups, page=1, pages=2))
    assert "grp:list:0" in last and "grp:list:2" not in last


def test_forums_are_marked_with_a_topic_button_beside_them() -> None:
    groups = [kb.GroupButton(1, "Forum", True, "active", "", forum=True),
              kb.GroupButton(2, "Closed", False, "disabled", "TOPIC_CLOSED", forum=True),
              kb.GroupButton(3, "Left", False, "gone", "gone", forum=True), kb.GroupButton(4, "Plain", False, "active", "")]
    markup = kb.group_page(groups, page=0, pages=1)
    rows = [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard][:4]
    assert rows == [
        [("✅ 🗂 Forum", "grp:t:1:0"), (texts.BTN_TOPIC, "grp:tp:1")],
        [("⚠️ 🗂 Closed (topic closed)", "grp:t:2:0"), (texts.BTN_TOPIC, "grp:tp:2")],
        [("⚠️ 🗂 Left (gone)", "grp:t:3:0")],
        [("⬜ Plain", "grp:t:4:0")],
    ]


def test_topic_page_marks_the_chosen_and_closed_topics_and_pages() -> None:
    topics = [kb.TopicButton(1, "General", True, False), kb.TopicButton(2, "News", False, True),
              kb.TopicButton(3, "x" * 100, False, False)]
    markup = kb.topic_page(7, topics, page=1, pages=3, list_page=2)
    buttons = [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]
    assert buttons[:2] == [("✅ General", "grp:tp:7:1"), ("🔒 News (closed)", "grp:tp:7:2")]
    assert len(buttons[2][0]) == 64 and buttons[2][1] == "grp:tp:7:3"
    assert [data for _, data in buttons[3:]] == ["grp:tpl:7:0", "grp:tpl:7:2", "grp:list:2"]
    text = texts.topic_page("A <b> forum", "General", 1, 3, 17, "TOPIC_DELETED")
    assert "A &lt;b&gt; forum" in text and "page 2 of 3" in text and "17 topics" in text and "topic deleted" in text


def test_interval_presets_mark_the_current_one() -> None:
    markup = kb.interval_menu([15, 60, 1440], 3600)
    assert ids(markup) == ["int:set:15", "int:set:60", "int:set:1440", "int:custom", "menu:main"]
    captions = [b.text for row in markup.inline_keyboard for b in row]
    assert "• 1 h •" in captions and "15 min" in captions


def test_missing_checklist_offers_the_fixing_buttons() -> None:
    assert ids(kb.missing(["account", "message"])) == ["acc:login", "msg:set", "menu:main"]


def test_code_prompt_masks_the_typed_digits() -> None:
    assert "Code: •••○○" in texts.code_prompt(3, 5)
    assert "Code: ••" in texts.code_prompt(2, 0)


def test_user_values_are_escaped_in_html_texts() -> None:
    card = texts.main_card(phone_masked="+1•••0001", account_name="<b>Eve</b>", selected=1, total=2,
                           message_snippet="a < b", interval="1 h", running=False, next_run=None)
    assert "&lt;b&gt;Eve&lt;/b&gt;" in card and "a &lt; b" in card
    assert "not connected" in texts.main_card(phone_masked=None, account_name=None, selected=0, total=0,
                                              message_snippet=None, interval=None, running=False, next_run=None)


def test_schedule_menu_and_day_toggles() -> None:
    assert ids(kb.schedule_menu(False)) == ["sch:tz", "sch:hours", "sch:days", "menu:main"]
    assert "sch:off" in ids(kb.schedule_menu(True))
    days = ids(kb.schedule_days(0b0011111))
    assert [f"sch:day:{n}" for n in range(7)] == days[:7]
    captions = [b.text for row in kb.schedule_days(0b0000001).inline_keyboard for b in row][:7]
    assert captions[0].startswith("✅") and all(c.startswith("▫️") for c in captions[1:])
