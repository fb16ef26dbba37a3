"""A person's first run, in headless Chromium, against the whole stack (``python app.py`` with ROLE=all).

/start, connect the demo account with 2FA through the keypad, import and select two groups, set a
photo with a formatted caption and an interval, start, watch the posts arrive in the group feeds with
their times, stop, connect a second account. The page is the only way in: every step is a click or
a keystroke on it. The photo shown in the chat, in the preview and in the feeds is the very image the person uploaded.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import aiohttp
from playwright.async_api import Locator, Page, expect

from roles.bot import texts
from sandbox.chats import make_png
from tests.browser.conftest import Stack

PHONE, PASSWORD, NAME = "+15550000002", "sandbox-2fa", "Boris"
SECOND_PHONE, SECOND_NAME = "+15550000001", "Alice"  # no 2FA
GROUPS = {1001: "Berlin Flat Swap", 1003: "Indie Game Devs"}  # both on the first page of the list
MESSAGE = "**Flat** for rent in __Berlin__, [details](https://example.org/flat)"
POST_TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$")
GAP = re.compile(r"\+(\d+\.\d) s")
GAP_MIN = 1.0  # the stack's GAP_MIN
PHOTO = make_png(64, 48, (220, 40, 90))  # the person's own picture: a size and colour no stub makes
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()


async def image_bytes(page: Page, image: Locator) -> bytes:
    """The bytes behind an <img> on the page, fetched from its own URL."""
    handle = await image.element_handle()
    await page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle)
    src = await image.evaluate("img => img.src")
    response = await page.request.get(src)
    assert response.ok, src
    return await response.body()


class Chat:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.log = page.get_by_role("log", name="Messages")
        self.bot = self.log.locator(".from-bot")

    def said(self, text: str | re.Pattern[str]) -> Locator:
        """The bot's newest message containing ``text``."""
        return self.bot.filter(has_text=text).last

    async def press(self, name: str | re.Pattern[str]) -> None:
        """Press the inline button called ``name`` on the newest bot message that has it."""
        exact = isinstance(name, str)
        button = self.page.get_by_role("button", name=name, exact=exact)
        await self.bot.filter(has=button).last.get_by_role("button", name=name, exact=exact).click()

    async def share_phone(self, name: str, phone: str) -> tuple[Locator, Locator]:
        """Share ``phone`` from the bot's reply keyboard; the code prompt (its keypad shown) and that
        account's Telegram app on the page, once the code it received is live."""
        await self.page.get_by_role("group", name="Bot keyboard").get_by_role(
            "button", name=texts.BTN_SHARE_PHONE).click()
        dialog = self.page.get_by_role("dialog", name="Share your phone number")
        await dialog.get_by_role("button", name=f"{name} {phone}").click()
        await dialog.get_by_role("button", name="Share", exact=True).click()
        prompt = self.said("Code: ")
        await expect(prompt.get_by_role("button", name="5", exact=True)).to_be_visible()
        app = self.page.get_by_role("region", name=f"{name}'s Telegram app")
        await expect(app.locator(".code-state").first).to_have_text("live")
        return prompt, app

    async def type(self, text: str) -> None:
        box = self.page.get_by_label("Message", exact=True)
        await box.fill(text)
        await box.press("Enter")


async def test_first_run_journey(stack: Stack, page: Page, screenshot_path: Path) -> None:
    # the stack comes first so that it is stopped after the page closed (no reconnect errors)
    await page.goto(stack.url + "/")
    await expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    await page.get_by_placeholder("First name").fill("Dana")
    await page.get_by_role("button", name="Create user").click()
    chat = Chat(page)

    # /start: the welcome, formatted, with the main menu
    await page.get_by_role("button", name="Start", exact=True).click()
    welcome = chat.said("Welcome!")
    await expect(welcome.locator("strong").first).to_have_text("Welcome!")
    await expect(welcome.get_by_role("button", name=texts.BTN_ACCOUNT)).to_be_visible()

    # connect the 2FA account: share the number, read the code in its Telegram app, type it on the keypad
    await chat.press(texts.BTN_ACCOUNT)
    await chat.press(texts.BTN_LOGIN)
    prompt, telegram_app = await chat.share_phone(NAME, PHONE)
    code = await telegram_app.locator(".code-digits").first.inner_text()
    assert re.fullmatch(r"\d{5}", code)
    for typed, digit in enumerate(code, start=1):
        await chat.press(digit)
        await expect(prompt).to_contain_text("Code: " + "•" * typed)
    await chat.press(texts.BTN_KP_OK)
    await expect(chat.said(texts.PASSWORD_PROMPT)).to_be_visible()
    await expect(telegram_app.locator(".code-state").first).to_have_text("used")
    await chat.type(PASSWORD)
    await expect(chat.said(f"Connected as {NAME}")).to_be_visible()
    # the page lists the account under this chat user (the sandbox saw the number shared in this chat)
    connected = page.get_by_role("list", name="Telegram accounts this user connected")
    await expect(connected.locator(f'li[data-phone="{PHONE}"]')).to_contain_text(NAME)
    # the password was deleted from the chat and is nowhere on the page
    await expect(chat.log.locator(".from-user.deleted")).to_have_count(1)
    assert PASSWORD not in await chat.log.inner_text()

    # import the account's groups and select two
    await chat.press(texts.BTN_GROUPS)
    await chat.press(texts.BTN_IMPORT)
    await expect(page.locator("#toast")).to_have_text(texts.IMPORTING)
    await expect(chat.said("Imported")).to_be_visible()
    for title in GROUPS.values():
        await chat.press(f"⬜ {title}")
        await expect(chat.bot.get_by_role("button", name=f"✅ {title}")).to_be_visible()
    await expect(chat.said("Selected: 2 of")).to_be_visible()
    await chat.press(texts.BTN_DONE)
    await chat.press(texts.BTN_MAIN)

    # a photo with a formatted caption, previewed as it will be posted, then saved
    await chat.press(texts.BTN_MESSAGE)
    await chat.press(texts.BTN_MSG_SET)
    await expect(chat.said(texts.MSG_ASK)).to_be_visible()
    await page.set_input_files("#photo-input", files=[{"name": "flat.png", "mimeType": "image/png",
                                                       "buffer": PHOTO}])
    await expect(page.get_by_role("img", name="Photo to send")).to_be_visible()
    await chat.type(MESSAGE)
    sent = chat.log.locator(".from-user img.photo").last
    await expect(sent).to_be_visible()
    assert await image_bytes(page, sent) == PHOTO  # the chat shows the uploaded photo
    preview = chat.said("Flat for rent in Berlin")
    assert await image_bytes(page, preview.locator("img.photo")) == PHOTO  # and so does the preview
    await expect(preview.locator("strong")).to_have_text("Flat")
    await expect(preview.locator("em")).to_have_text("Berlin")
    await expect(preview.get_by_role("link", name="details")).to_have_attribute("href", "https://example.org/flat")
    await chat.press(texts.BTN_MSG_SAVE)
    await expect(chat.said("Message saved")).to_be_visible()
    # the main card tells that the saved message is a photo
    await chat.press(texts.BTN_MAIN)
    await expect(chat.said("Main menu")).to_contain_text("🖼 photo + “Flat for rent")

    # the interval, then start
    await chat.press(texts.BTN_INTERVAL)
    await chat.press("15 min")
    await expect(chat.said("every 15 min")).to_be_visible()
    await chat.press(texts.BTN_MAIN)
    await chat.press(texts.BTN_START)
    await expect(chat.said("Started: 2 groups every 15 min")).to_be_visible()

    # the posts land in both feeds, formatted, each with its time; the second one after the pacing gap
    for title in GROUPS.values():
        post = page.get_by_role("list", name=f"Posts in {title}").locator(".post")
        await expect(post).to_have_count(1, timeout=30_000)
        await expect(post.locator("strong")).to_have_text("Flat")
        await expect(post.locator("em")).to_have_text("Berlin")
        await expect(post.locator(".post-from")).to_contain_text(PHONE)
        thumbnail = post.locator("img.post-photo")
        await expect(thumbnail).to_be_visible()
        assert await image_bytes(page, thumbnail) == PHOTO  # the group received the uploaded photo
        assert POST_TIME.match(await post.locator("time").inner_text())
    timeline = page.get_by_role("list", name="Latest posts, all groups").locator(".post")
    await expect(timeline).to_have_count(2)
    gap = GAP.search(await timeline.first.locator(".gap").inner_text())
    assert gap is not None and float(gap[1]) >= GAP_MIN - 0.05
    # the bot reports the finished round in the chat
    await expect(chat.said(texts.note_round(2, 0, 0, 2))).to_be_visible(timeout=15_000)

    # stop: the main menu now offers Stop
    await chat.press(texts.BTN_MAIN)
    await chat.press(texts.BTN_STOP)
    await expect(chat.said("Stopped")).to_be_visible()
    await chat.press(texts.BTN_MAIN)
    menu = chat.bot.filter(has=page.get_by_role("button", name=texts.BTN_ACCOUNT)).last
    await expect(menu.get_by_role("button", name=texts.BTN_START)).to_be_visible()
    await expect(menu.get_by_role("button", name=texts.BTN_STOP)).to_have_count(0)

    # a second account (U8): 👤 Account lists Boris and offers another; Alice's code on the keypad
    await chat.press(texts.BTN_ACCOUNT)
    await chat.press(texts.BTN_ADD_ACCOUNT)
    _, second_app = await chat.share_phone(SECOND_NAME, SECOND_PHONE)
    for digit in await second_app.locator(".code-digits").first.inner_text():
        await chat.press(digit)
    await chat.press(texts.BTN_KP_OK)
    await expect(chat.said(f"Connected as {SECOND_NAME}")).to_be_visible()
    # the page lists both accounts under this chat user, and the user picker counts them
    await expect(connected.locator("li")).to_have_count(2)
    await expect(connected.locator(f'li[data-phone="{SECOND_PHONE}"]')).to_contain_text(SECOND_NAME)
    await expect(page.get_by_label("Chatting as").locator("option:checked")).to_contain_text("2 accounts")
    await chat.press(texts.BTN_MAIN)
    await expect(chat.said("Main menu")).to_contain_text(SECOND_NAME)
    # the keypad's focus scrolled the page: show its top, and the chat's newest messages
    await page.evaluate("window.scrollTo(0, 0); const log = document.getElementById('messages'); "
                        "log.scrollTop = log.scrollHeight")
    png = await page.screenshot(path=str(screenshot_path), animations="disabled")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    # what the person saw is what Telegram (the sandbox) has
    async with aiohttp.ClientSession() as http:
        for gid in GROUPS:
            async with http.get(f"{stack.url}/sandbox/api/groups/{gid}/messages") as response:
                posts = await response.json()
            assert [(p["from_phone"], p["text"]) for p in posts] == [(PHONE, "Flat for rent in Berlin, details")]
            assert [e["type"] for e in posts[0]["entities"]] == ["bold", "italic", "text_link"]
            assert posts[0]["media"]["kind"] == "photo" and posts[0]["media"]["sha256"] == PHOTO_SHA
