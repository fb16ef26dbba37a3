"""The sandbox's chat page in headless Chromium, against the sandbox alone and a tiny test bot."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from playwright.async_api import Locator, Page, expect

from sandbox.chats import make_png
from sandbox.server import SandboxServer
from tests.browser.tinybot import SHARE, running_bot

BORIS, BORIS_PASSWORD = "+15550000002", "sandbox-2fa"
POST_TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$")


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as response:
        return await response.json()


async def _open(page: Page, sandbox: SandboxServer) -> None:
    await page.goto(sandbox.url + "/")
    await expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()


def _chat(page: Page) -> Locator:
    return page.get_by_role("log", name="Messages")


async def test_chat_with_a_bot_buttons_keyboards_edits_and_deletions(page: Page, sandbox: SandboxServer) -> None:
    async with running_bot(sandbox.url) as bot:
        await _open(page, sandbox)
        await page.get_by_placeholder("First name").fill("Tess")
        await page.get_by_role("button", name="Create user").click()
        users = list(sandbox.chats.users.values())
        assert [u.first_name for u in users] == ["Tess"]
        uid = users[0].user_id
        await expect(page.get_by_label("Chatting as")).to_have_value(str(uid))
        await page.evaluate("window.__sameDocument = true")  # a reload would drop it

        # an empty chat offers Start, which sends /start
        await page.get_by_role("button", name="Start", exact=True).click()
        chat = _chat(page)
        await expect(chat.locator(".from-user")).to_have_text(re.compile("/start"))
        greeting = chat.locator(".from-bot").filter(has_text="Pick one")
        await expect(greeting.locator("strong")).to_have_text("Hello")
        await expect(greeting.locator("em")).to_have_text("tester")
        assert bot.received[0]["text"] == "/start"

        # an alert answer opens a dialog; a toast answer and an edit show without a reload
        await greeting.get_by_role("button", name="Alert").click()
        alert = page.get_by_role("dialog", name="The bot says")
        await expect(alert).to_contain_text("Careful!")
        await alert.get_by_role("button", name="OK").click()
        await expect(alert).to_be_hidden()
        await greeting.get_by_role("button", name="Ping").click()
        await expect(page.locator("#toast")).to_have_text("pong")
        edited = chat.locator(".from-bot").filter(has_text="Pinged ✅")
        await expect(edited.locator(".edited")).to_have_text("edited")
        await expect(edited.get_by_role("button")).to_have_count(0)  # an edit without markup drops the buttons

        # keyboard only: type and press Enter; a deleted message keeps a placeholder, not its text
        await page.get_by_label("Message", exact=True).fill("/start")
        await page.get_by_label("Message", exact=True).press("Enter")
        second = chat.locator(".from-bot").filter(has_text="Pick one")
        await expect(second).to_have_count(1)
        forget = second.get_by_role("button", name="Forget")
        await forget.focus()
        await page.keyboard.press("Enter")
        await expect(chat.locator(".deleted")).to_have_text(re.compile("Message deleted"))
        await expect(chat.locator(".from-bot").filter(has_text="Pick one")).to_have_count(0)

        # a reply keyboard with "share my number": the contact goes to the bot, the keyboard goes away
        await page.get_by_label("Message", exact=True).fill("contact please")
        await page.get_by_role("button", name="Send", exact=True).click()
        keyboard = page.get_by_role("group", name="Bot keyboard")
        await keyboard.get_by_role("button", name=SHARE).click()
        dialog = page.get_by_role("dialog", name="Share your phone number")
        await dialog.get_by_role("button", name=re.compile(re.escape(BORIS))).click()
        await expect(dialog.get_by_label("Phone number", exact=True)).to_have_value(BORIS)
        await dialog.get_by_role("button", name="Share", exact=True).click()
        await expect(chat.locator(".from-bot").filter(has_text=f"Thanks, {BORIS}")).to_be_visible()
        await expect(keyboard).to_be_hidden()
        contact = bot.received[-1]["contact"]
        assert contact["phone_number"] == BORIS and contact["user_id"] == uid

        assert await page.evaluate("window.__sameDocument") is True


async def test_formatted_text_and_a_photo_with_caption(page: Page, sandbox: SandboxServer) -> None:
    sandbox.chats.add_user(501, "Fay")
    async with running_bot(sandbox.url) as bot:
        await _open(page, sandbox)
        await page.get_by_label("Chatting as").select_option("501")
        box = page.get_by_label("Message", exact=True)
        await box.fill("**Flat** for __rent__, see [here](https://example.org/flat)")
        await box.press("Enter")
        chat = _chat(page)
        echo = chat.locator(".from-bot").filter(has_text="echo:")
        await expect(echo).to_have_text(re.compile(r"echo: Flat for rent, see here \[bold,italic,text_link\]"))
        sent = chat.locator(".from-user").last
        await expect(sent.locator("strong")).to_have_text("Flat")
        await expect(sent.locator("em")).to_have_text("rent")
        await expect(sent.get_by_role("link", name="here")).to_have_attribute("href", "https://example.org/flat")
        entities = bot.received[-1]["entities"]
        assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
            ("bold", 0, 4), ("italic", 9, 4), ("text_link", 19, 4)]

        # the toolbar wraps the selection in markers
        await box.fill("loud")
        await box.select_text()
        await page.get_by_role("toolbar", name="Formatting").get_by_role("button", name="bold").click()
        await expect(box).to_have_value("**loud**")
        await box.fill("")

        await page.locator("#photo-input").set_input_files(
            files=[{"name": "flat.png", "mimeType": "image/png", "buffer": make_png(40, 30, (200, 80, 40))}])
        await expect(page.get_by_role("img", name="Photo to send")).to_be_visible()
        await box.fill("Sunny __balcony__")
        await page.get_by_role("button", name="Send", exact=True).click()
        await expect(chat.locator(".from-bot").filter(has_text="Nice photo: Sunny balcony")).to_be_visible()
        photo = chat.locator(".from-user img.photo").last
        await expect(photo).to_be_visible()
        assert await photo.evaluate("img => img.complete && img.naturalWidth > 0")
        # the very picture chosen (40 x 30), not a stand-in
        assert await photo.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 30]
        message = bot.received[-1]
        assert [(p["width"], p["height"]) for p in message["photo"]] == [(40, 30)]
        assert message["caption"] == "Sunny balcony"
        assert [e["type"] for e in message["caption_entities"]] == ["italic"]
        await expect(page.get_by_role("img", name="Photo to send")).to_be_hidden()


async def test_login_codes_group_posts_and_faults_arrive_live(page: Page, sandbox: SandboxServer) -> None:
    await _open(page, sandbox)
    boris = page.locator(f'li.account[data-phone="{BORIS}"]')
    app = boris.get_by_role("region", name="Boris's Telegram app")
    await expect(app).to_contain_text("No login codes yet.")
    world = sandbox.url + "/sandbox/world"
    async with aiohttp.ClientSession() as http:
        sent = await _post(http, f"{world}/send_code", {"phone": BORIS})
        code = sandbox.world.codes(BORIS)[0]["code"]
        await expect(app.locator(".code-digits").first).to_have_text(code)
        await expect(app.locator(".code-state").first).to_have_text("live")
        login = {"phone": BORIS, "session": sent["session"]}
        await _post(http, f"{world}/sign_in", {**login, "phone_code_hash": sent["phone_code_hash"], "code": code})
        signed = await _post(http, f"{world}/check_password", {**login, "password": BORIS_PASSWORD})
        await expect(app.locator(".code-state").first).to_have_text("used")

        dialogs = {g["id"]: g for g in (await _post(http, f"{world}/get_dialogs",
                                                    {"session": signed["session"]}))["groups"]}
        for gid in (1001, 1002):
            posted = await _post(http, f"{world}/send_message", {
                "session": signed["session"], "group_id": gid, "access_hash": dialogs[gid]["access_hash"],
                "text": "Flat available", "entities": [{"type": "bold", "offset": 0, "length": 4}]})
            assert posted["ok"], posted
        for title in ("Berlin Flat Swap", "Remote Jobs Europe"):
            post = page.get_by_role("list", name=f"Posts in {title}").locator(".post")
            await expect(post).to_have_count(1)
            await expect(post.locator("strong")).to_have_text("Flat")
            assert POST_TIME.match(await post.locator("time").inner_text())
        timeline = page.get_by_role("list", name="Latest posts, all groups").locator(".post")
        await expect(timeline).to_have_count(2)
        await expect(timeline.first.locator(".gap")).to_have_text(re.compile(r"\+\d+\.\d s"))
        await expect(timeline.last.locator(".gap")).to_have_text(re.compile("first post"))

        # a flood wait armed from the panel is answered to the next send, then disappears from the list
        faults = page.get_by_role("list", name="Active faults")
        await page.get_by_label("Account", exact=True).select_option(BORIS)
        await page.get_by_role("button", name="Flood wait 30 s on the next send").click()
        await expect(faults).to_contain_text(f"FLOOD_WAIT 30 s on send_message for {BORIS} 1 left")
        refused = await _post(http, f"{world}/send_message", {
            "session": signed["session"], "group_id": 1001, "access_hash": dialogs[1001]["access_hash"],
            "text": "again"})
        assert refused == {"ok": False, "error": "FLOOD_WAIT", "code": 420, "seconds": 30,
                           "description": "injected fault"}
        await expect(faults).to_have_text("None.")
        calls = page.get_by_role("list", name="Recent calls")
        await expect(calls.locator(".failed").first).to_contain_text("send_message")
        await expect(calls.locator(".failed").first).to_contain_text("FLOOD_WAIT 30 s")

        # a ban in one group until cleared, from the form
        await page.get_by_label("Group", exact=True).select_option("1001")
        await page.get_by_label("Error", exact=True).select_option("USER_BANNED_IN_CHANNEL")
        await page.get_by_label("Times", exact=True).fill("-1")
        await page.get_by_role("button", name="Inject fault").click()
        await expect(faults).to_contain_text("USER_BANNED_IN_CHANNEL")
        await expect(faults).to_contain_text("in group 1001 until cleared")
        assert [(f["error"], f["group_id"], f["times"]) for f in sandbox.world.faults()] == [
            ("USER_BANNED_IN_CHANNEL", 1001, -1)]
        await page.get_by_role("button", name="Clear all faults").click()
        await expect(faults).to_have_text("None.")
        assert sandbox.world.faults() == []


async def test_page_structure_is_accessible(page: Page, sandbox: SandboxServer) -> None:
    await _open(page, sandbox)
    await expect(page.get_by_role("banner")).to_have_count(1)
    await expect(page.get_by_role("main")).to_have_count(1)
    await expect(page.get_by_role("complementary")).to_have_count(2)
    await expect(page.get_by_role("log", name="Messages")).to_have_attribute("aria-live", "polite")
    unlabelled = await page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(el => !el.labels.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
        .map(el => el.id || el.outerHTML)""")
    assert unlabelled == []
    # every control is a real button or link: nothing clickable hides in a div
    fake = await page.evaluate("""() => [...document.querySelectorAll('[onclick], div[tabindex], span[tabindex]')]
        .filter(el => el.getAttribute('role') !== 'button').map(el => el.outerHTML)""")
    assert fake == []
    # the skip link leads the keyboard to the message box
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to the message box")).to_be_focused()


async def test_formatting_counts_utf16_units_and_nests(page: Page, sandbox: SandboxServer) -> None:
    await _open(page, sandbox)
    # offsets after an emoji (two UTF-16 units) are Telegram's offsets
    parsed = await page.evaluate("window.sandboxPage.parseMarkup('🚀 **go** `x` [a](javascript:alert(1))')")
    assert parsed == {"text": "🚀 go x [a](javascript:alert(1))", "entities": [
        {"type": "bold", "offset": 3, "length": 2}, {"type": "code", "offset": 6, "length": 1}]}
    html = await page.evaluate("""() => {
        const box = document.createElement('div');
        box.append(window.sandboxPage.renderFormatted('🚀 bold and italic /help x', [
            {type: 'bold', offset: 3, length: 15}, {type: 'italic', offset: 12, length: 6},
            {type: 'bot_command', offset: 19, length: 5}, {type: 'text_link', offset: 25, length: 1,
             url: 'javascript:alert(1)'}]));
        return box.innerHTML;
    }""")
    assert html == ('🚀 <strong>bold and <em>italic</em></strong> '
                    '<button type="button" class="command">/help</button> <span>x</span>')


async def test_placeholders_fit_their_fields(page: Page, sandbox: SandboxServer) -> None:
    await _open(page, sandbox)
    cut = await page.evaluate("""() => [...document.querySelectorAll('input[placeholder]')]
        .filter(input => input.offsetParent !== null)
        .filter(input => {
            const style = getComputedStyle(input);
            const ctx = document.createElement('canvas').getContext('2d');
            ctx.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
            const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            return ctx.measureText(input.placeholder).width > room;
        })
        .map(input => input.id + ': ' + input.placeholder)""")
    assert cut == [], f"placeholders cut off: {cut}"


async def test_a_forum_group_shows_its_topics_and_each_post_in_its_topic(page: Page, sandbox: SandboxServer) -> None:
    dana = "+15550000004"  # the demo world's forums: Makers Forum (1401), Travel Forum (1402)
    await _open(page, sandbox)
    world = sandbox.url + "/sandbox/world"
    async with aiohttp.ClientSession() as http:
        sent = await _post(http, f"{world}/send_code", {"phone": dana})
        code = sandbox.world.codes(dana)[0]["code"]
        signed = await _post(http, f"{world}/sign_in", {"phone": dana, "session": sent["session"],
                                                        "phone_code_hash": sent["phone_code_hash"], "code": code})
        dialogs = {g["id"]: g for g in (await _post(http, f"{world}/get_dialogs",
                                                    {"session": signed["session"]}))["groups"]}
        send = {"session": signed["session"], "group_id": 1401, "access_hash": dialogs[1401]["access_hash"]}
        assert (await _post(http, f"{world}/send_message", {**send, "text": "For sale", "reply_to": 3}))["ok"]
        assert (await _post(http, f"{world}/send_message", {**send, "text": "Hello all"}))["ok"]

    topics = page.get_by_role("list", name="Topics of Makers Forum")
    await expect(topics.locator(".topic")).to_have_count(5)
    await expect(page.get_by_role("list", name="Posts in Makers Forum, topic Marketplace")).to_contain_text("For sale")
    await expect(page.get_by_role("list", name="Posts in Makers Forum, topic General")).to_contain_text("Hello all")
    await expect(topics.locator('.topic[data-topic-id="2"] .topic-title')).to_contain_text("closed")
    timeline = page.get_by_role("list", name="Latest posts, all groups")
    await expect(timeline).to_contain_text("Makers Forum › Marketplace")

    sandbox.world.change_topic(1401, 3, {"closed": True})  # the panel follows a topic closed meanwhile
    await expect(topics.locator('.topic[data-topic-id="3"] .topic-title')).to_contain_text("closed")


async def test_an_album_is_one_post_in_the_group_feed(page: Page, sandbox: SandboxServer) -> None:
    """U9.3 / issue 13 item 6: the items of an album (one grouped_id) show as one post with its caption."""
    await _open(page, sandbox)
    world = sandbox.url + "/sandbox/world"
    async with aiohttp.ClientSession() as http:
        sent = await _post(http, f"{world}/send_code", {"phone": BORIS})
        code = sandbox.world.codes(BORIS)[0]["code"]
        login = {"phone": BORIS, "session": sent["session"]}
        await _post(http, f"{world}/sign_in", {**login, "phone_code_hash": sent["phone_code_hash"], "code": code})
        signed = await _post(http, f"{world}/check_password", {**login, "password": BORIS_PASSWORD})
        dialogs = {g["id"]: g for g in (await _post(http, f"{world}/get_dialogs",
                                                    {"session": signed["session"]}))["groups"]}
        photos = [base64.b64encode(make_png(12, 12, (i * 60, 10, 10))).decode() for i in range(3)]
        posted = await _post(http, f"{world}/send_album", {
            "session": signed["session"], "group_id": 1001, "access_hash": dialogs[1001]["access_hash"],
            "text": "Three rooms", "entities": [{"type": "bold", "offset": 0, "length": 5}],
            "items": [{"kind": "photo", "filename": f"p{i}.png", "mime_type": "image/png", "data_b64": data}
                      for i, data in enumerate(photos)]})
        assert posted["ok"] and len(posted["message_ids"]) == 3, posted
    feed = page.get_by_role("list", name="Posts in Berlin Flat Swap").locator(".post")
    await expect(feed).to_have_count(1)
    album = feed.get_by_label("Album of 3")
    await expect(album.locator("img.post-photo")).to_have_count(3)
    await expect(feed.locator(".text strong")).to_have_text("Three")
    await expect(page.locator('details[data-group-id="1001"] .post-count')).to_have_text(" · 1 post")


async def test_the_chat_shows_the_users_time_zone_and_its_times_on_that_clock(
    page: Page, sandbox: SandboxServer
) -> None:
    await _open(page, sandbox)
    await page.get_by_placeholder("First name").fill("Kiri")
    await page.get_by_placeholder("Time zone").fill("Pacific/Kiritimati")  # UTC+14: never the local clock
    await page.get_by_role("button", name="Create user").click()
    [user] = list(sandbox.chats.users.values())
    assert user.time_zone == "Pacific/Kiritimati"
    await expect(page.locator("#chat-zone")).to_contain_text("Pacific/Kiritimati")
    await page.get_by_label("Message", exact=True).fill("hello")
    await page.get_by_label("Message", exact=True).press("Enter")
    sent = _chat(page).locator(".from-user time")
    await expect(sent).to_have_count(1)
    [message] = sandbox.chats.chat_view(user.user_id)
    shown = datetime.fromtimestamp(message["date"], ZoneInfo("Pacific/Kiritimati")).strftime("%H:%M")
    await expect(sent).to_have_text(shown)


async def test_the_page_shows_the_accounts_each_chat_user_connected(page: Page, sandbox: SandboxServer) -> None:
    """Issue 13 item 6: per chat user, the Telegram accounts whose login went through their bot chat
    (the sandbox's own record: the phone given there, the code typed there; never the bot's data)."""
    alice, dana = "+15550000001", "+15550000004"
    await _open(page, sandbox)
    chats, world = sandbox.chats, sandbox.world
    chats.add_user(7001, "Vera")
    chats.add_user(7002, "Otto")
    await page.get_by_label("Chatting as").select_option("7001")
    mine = page.get_by_role("list", name="Telegram accounts this user connected")
    await expect(mine).to_have_text("None yet: log in through the bot.")

    # Vera connects Alice (phone typed, code typed with spaces) and Dana (phone shared as a contact)
    for phone, share in ((alice, {"text": "+1 555 000 0001"}), (dana, {"contact": {"phone": dana}})):
        chats.user_sends(7001, share)
        sent = await world.send_code(phone)
        code = world.codes(phone)[0]["code"]
        chats.user_sends(7001, {"text": " ".join(code)})
        await world.sign_in(phone, sent["session"], sent["phone_code_hash"], code)
    await expect(mine.locator("li")).to_have_count(2)
    await expect(mine.locator(f'li[data-phone="{alice}"]')).to_contain_text("Alice")
    await expect(mine.locator(f'li[data-phone="{dana}"]')).to_contain_text("Dana")
    await expect(page.get_by_label("Chatting as").locator('option[value="7001"]')).to_contain_text("2 accounts")
    card = page.locator(f'li.account[data-phone="{dana}"]')
    await expect(card.locator(".connected-by")).to_have_text("🔗 Connected by Vera (7001)")

    # another chat user connected none; a session logged out leaves Vera's list at once
    await page.get_by_label("Chatting as").select_option("7002")
    await expect(mine).to_have_text("None yet: log in through the bot.")
    await page.get_by_label("Chatting as").select_option("7001")
    assert world.revoke_sessions(dana) == 1
    await expect(mine.locator("li")).to_have_count(1)
    await expect(mine).to_contain_text("Alice")
    await expect(card.locator(".connected-by")).to_have_count(0)
