// The sandbox's chat page: a Telegram-like client of the control API (/sandbox/api) with a live
// channel (server-sent events at /sandbox/api/stream). Plain script, no build step.
"use strict";

(() => {
  const API = "/sandbox/api";
  const STORAGE_KEY = "sandbox.chatUser";
  const MAX_TIMELINE = 30;
  const MAX_ACTIVITY = 40;
  const MAX_CODES = 5;

  const state = {
    uid: null,
    users: new Map(), // uid -> user view (keyboard = the reply keyboard the user sees now)
    chats: new Map(), // uid -> Map(message_id -> message view)
    accounts: [],
    codes: new Map(), // phone -> codes, newest first
    posts: new Map(), // group id -> posts, oldest first
    faults: [],
    activity: [],
    lastSeq: 0,
    attachment: null, // {file, url}
    closedGroups: new Set(), // feeds the person closed: new posts don't reopen them
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- small helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(API + path, init);
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      throw new Error((data && (data.error || data.description)) || `HTTP ${response.status}`);
    }
    return data;
  }

  function pad(n, width = 2) {
    return String(n).padStart(width, "0");
  }

  function clock(seconds, withMs = false) {
    const d = new Date(seconds * 1000);
    const base = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withMs ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
  }

  // a time on the chat user's device clock (their time zone), HH:MM
  function clockIn(seconds, zone) {
    try {
      return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone })
        .format(new Date(seconds * 1000));
    } catch (err) {
      return clock(seconds).slice(0, 5);
    }
  }

  function userZone() {
    const user = state.uid !== null ? state.users.get(state.uid) : null;
    return (user && user.time_zone) || "UTC";
  }

  function isoTime(seconds) {
    return new Date(seconds * 1000).toISOString();
  }

  function gapText(seconds) {
    if (seconds < 60) return `+${seconds.toFixed(1)} s`;
    const m = Math.floor(seconds / 60);
    const s = Math.round(seconds - m * 60);
    return `+${m} min ${s} s`;
  }

  let toastTimer = null;
  function toast(text) {
    const box = $("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
  }

  function showError(err) {
    toast(`⚠️ ${err.message || err}`);
  }

  // ---------------------------------------------------------------- formatting: entities -> DOM

  const SAFE_SCHEMES = /^(https?:|tg:|mailto:|tel:)/i;

  function linkFor(entity, text) {
    switch (entity.type) {
      case "text_link": return entity.url;
      case "url": return /^[a-z][a-z0-9+.-]*:/i.test(text) ? text : `http://${text}`;
      case "email": return `mailto:${text}`;
      case "phone_number": return `tel:${text}`;
      default: return null;
    }
  }

  function entityNode(entity, text) {
    switch (entity.type) {
      case "bold": return el("strong");
      case "italic": return el("em");
      case "underline": return el("u");
      case "strikethrough": return el("s");
      case "code": return el("code");
      case "pre": return el("pre", { class: "pre", "data-language": entity.language || null });
      case "blockquote":
      case "expandable_blockquote": return el("blockquote");
      case "spoiler": {
        const node = el("span", { class: "spoiler", tabindex: "0", role: "button",
                                  "aria-label": "Spoiler, press to reveal", "aria-pressed": "false" });
        const reveal = () => {
          node.classList.add("revealed");
          node.setAttribute("aria-pressed", "true");
          node.removeAttribute("aria-label");
        };
        node.addEventListener("click", reveal);
        node.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); reveal(); }
        });
        return node;
      }
      case "bot_command":
        // as in Telegram, a command in a message sends itself when pressed
        return el("button", { type: "button", class: "command", onclick: () => sendText(text.split("@")[0]) });
      case "mention":
      case "text_mention": return el("span", { class: "mention" });
      case "hashtag":
      case "cashtag": return el("span", { class: "tag" });
      case "custom_emoji": return el("span", { class: "emoji" });
      default: {
        const href = linkFor(entity, text);
        if (href && SAFE_SCHEMES.test(href)) {
          return el("a", { href, target: "_blank", rel: "noopener noreferrer" });
        }
        return el("span");
      }
    }
  }

  // Offsets and lengths are in UTF-16 code units, which is exactly how JavaScript indexes strings.
  function renderFormatted(text, entities) {
    const fragment = document.createDocumentFragment();
    const sorted = (entities || [])
      .filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    build(fragment, text || "", sorted, 0, (text || "").length);
    return fragment;
  }

  function build(parent, text, entities, start, end) {
    let pos = start;
    let i = 0;
    while (i < entities.length) {
      const entity = entities[i];
      const from = Math.max(entity.offset, pos);
      const to = Math.min(entity.offset + entity.length, end);
      i += 1;
      if (to <= from) continue;
      if (from > pos) parent.append(text.slice(pos, from));
      const inner = [];
      while (i < entities.length && entities[i].offset < to) {
        inner.push(entities[i]);
        i += 1;
      }
      const node = entityNode(entity, text.slice(from, to));
      build(node.tagName === "PRE" ? node.appendChild(el("code")) : node, text, inner, from, to);
      parent.append(node);
      pos = to;
    }
    if (pos < end) parent.append(text.slice(pos, end));
  }

  // ---------------------------------------------------------------- formatting: composer markup -> entities

  const MARKUP = /\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|~~([\s\S]+?)~~|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)/g;
  const MARK_TYPES = ["bold", "italic", "strikethrough", "code"];

  function parseMarkup(raw) {
    let text = "";
    const entities = [];
    let last = 0;
    for (const match of raw.matchAll(MARKUP)) {
      text += raw.slice(last, match.index);
      last = match.index + match[0].length;
      if (match[5] !== undefined) {
        const url = match[6];
        if (!SAFE_SCHEMES.test(url)) {
          text += match[0];
          continue;
        }
        entities.push({ type: "text_link", offset: text.length, length: match[5].length, url });
        text += match[5];
        continue;
      }
      const group = [1, 2, 3, 4].find((n) => match[n] !== undefined);
      entities.push({ type: MARK_TYPES[group - 1], offset: text.length, length: match[group].length });
      text += match[group];
    }
    text += raw.slice(last);
    return { text, entities };
  }

  // ---------------------------------------------------------------- users

  function renderUserSelect() {
    const select = $("user-select");
    const current = state.uid === null ? "" : String(state.uid);
    select.replaceChildren(el("option", { value: "", text: "Choose a user…" }));
    for (const user of [...state.users.values()].sort((a, b) => a.user_id - b.user_id)) {
      const count = accountsOf(user.user_id).length;
      const label = `${user.first_name}${user.username ? ` @${user.username}` : ""} (${user.user_id})`
        + (count ? ` · ${count} account${count === 1 ? "" : "s"}` : "");
      select.append(el("option", { value: String(user.user_id), text: label }));
    }
    select.value = state.users.has(state.uid) ? current : "";
  }

  // Live events that arrive while a chat loads are newer than or as new as the loaded copy, so they win.
  async function selectUser(uid) {
    state.uid = uid;
    if (uid === null) localStorage.removeItem(STORAGE_KEY);
    else localStorage.setItem(STORAGE_KEY, String(uid));
    renderUserSelect();
    if (uid !== null) {
      const chat = new Map();
      state.chats.set(uid, chat);
      renderChat();
      try {
        const messages = await api("GET", `/users/${uid}/chat`);
        if (state.chats.get(uid) !== chat) return; // another load took over
        for (const message of messages) {
          if (!chat.has(message.message_id)) chat.set(message.message_id, message);
        }
      } catch (err) {
        showError(err);
      }
    }
    if (state.uid === uid) renderChat();
  }

  async function createUser(ev) {
    ev.preventDefault();
    const name = $("new-user-name").value.trim();
    if (!name) return;
    const typed = Number.parseInt($("new-user-id").value, 10);
    const userId = Number.isInteger(typed) && typed > 0 ? typed : 100000000 + Math.floor(Math.random() * 899999999);
    const zone = $("new-user-zone").value.trim();
    try {
      const user = await api("POST", "/users", { user_id: userId, first_name: name, ...(zone ? { time_zone: zone } : {}) });
      state.users.set(user.user_id, user);
      $("new-user-name").value = "";
      $("new-user-id").value = "";
      $("new-user-zone").value = "";
      await selectUser(user.user_id);
      $("composer-text").focus();
    } catch (err) {
      showError(err);
    }
  }

  // ---------------------------------------------------------------- chat

  function currentChat() {
    if (state.uid === null) return new Map();
    if (!state.chats.has(state.uid)) state.chats.set(state.uid, new Map());
    return state.chats.get(state.uid);
  }

  function renderChat() {
    const list = $("messages");
    const active = state.uid !== null && state.users.has(state.uid);
    $("chat-empty").hidden = active;
    $("composer-text").disabled = !active;
    $("send-button").disabled = !active;
    const user = active ? state.users.get(state.uid) : null;
    $("chat-title").textContent = user ? `Chat with the bot — as ${user.first_name}` : "Chat with the bot";
    $("chat-zone").hidden = !user;
    $("chat-zone").textContent = user ? `🕘 ${user.time_zone || "UTC"} (times in this chat on the user's clock)` : "";
    renderChatAccounts();
    // a whole chat drawn at once is not a stream of new messages: keep screen readers quiet meanwhile
    list.setAttribute("aria-busy", "true");
    list.replaceChildren();
    if (active) {
      const ordered = [...currentChat().values()].sort((a, b) => a.message_id - b.message_id);
      for (const message of ordered) list.append(messageNode(message));
    }
    list.removeAttribute("aria-busy");
    renderStartButton();
    renderReplyKeyboard();
    scrollChat(true);
  }

  function renderStartButton() {
    const empty = state.uid !== null && state.users.has(state.uid) && currentChat().size === 0;
    $("start-area").hidden = !empty;
  }

  function messageNode(message) {
    const fromBot = message.from === "bot";
    const item = el("li", {
      class: `msg ${fromBot ? "from-bot" : "from-user"}${message.deleted ? " deleted" : ""}`,
      id: `msg-${message.message_id}`,
      dataset: { messageId: String(message.message_id) },
    });
    const bubble = el("div", { class: "bubble" });
    bubble.append(el("span", { class: "visually-hidden", text: fromBot ? "Bot: " : "You: " }));
    if (message.deleted) {
      // a deleted message may have held a code or a password: never show what it said
      bubble.append(el("em", { class: "deleted-note", text: "Message deleted" }));
      item.append(bubble);
      return item;
    }
    if (message.media) bubble.append(mediaNode(message.media));
    if (message.text) {
      bubble.append(el("div", { class: "text" }, renderFormatted(message.text, message.entities)));
    }
    const meta = el("div", { class: "meta" });
    if (message.edited) meta.append(el("span", { class: "edited", text: "edited" }), " ");
    meta.append(el("time", { datetime: isoTime(message.date), text: clockIn(message.date, userZone()) }));
    bubble.append(meta);
    item.append(bubble);
    const markup = message.reply_markup;
    if (fromBot && markup && Array.isArray(markup.inline_keyboard)) {
      item.append(inlineKeyboard(message, markup.inline_keyboard));
    }
    return item;
  }

  function mediaNode(media) {
    const kind = media.kind;
    if (kind === "photo" && media.file_url) {
      return el("img", { class: "photo", src: media.file_url, alt: "Photo", loading: "lazy",
                         width: media.width || null, height: media.height || null });
    }
    if (kind === "contact") {
      const name = [media.first_name, media.last_name].filter(Boolean).join(" ");
      return el("div", { class: "media-card" }, `📇 Contact: ${name} ${media.phone_number || ""}`);
    }
    if (kind === "location") {
      return el("div", { class: "media-card" }, `📍 Location ${media.latitude}, ${media.longitude}`);
    }
    if (kind === "poll") {
      return el("div", { class: "media-card" }, `📊 Poll: ${media.question || ""}`);
    }
    const icons = { video: "🎬", animation: "🎞", document: "📄", sticker: "🏷", voice: "🎤" };
    const label = `${icons[kind] || "📎"} ${media.file_name || kind}`;
    if (media.file_url) {
      return el("a", { class: "media-card", href: media.file_url, target: "_blank", rel: "noopener" }, label);
    }
    return el("div", { class: "media-card" }, label);
  }

  function inlineKeyboard(message, rows) {
    const box = el("div", { class: "inline-keyboard", role: "group", "aria-label": "Message buttons" });
    for (const row of rows) {
      const line = el("div", { class: "kb-row" });
      for (const button of row) line.append(inlineButton(message, button));
      box.append(line);
    }
    return box;
  }

  function inlineButton(message, button) {
    if (button.url) {
      return el("a", { class: "kb-button", href: button.url, target: "_blank", rel: "noopener noreferrer" },
                button.text, el("span", { "aria-hidden": "true", text: " ↗" }));
    }
    if (button.callback_data === undefined) {
      return el("button", { type: "button", class: "kb-button", disabled: true, title: "Not supported here" },
                button.text);
    }
    const node = el("button", { type: "button", class: "kb-button" }, button.text);
    node.addEventListener("click", () => press(message.message_id, button.callback_data, node));
    return node;
  }

  // Presses go out one at a time, in order, as a person's taps reach Telegram.
  let pressChain = Promise.resolve();

  function press(messageId, data, node) {
    const uid = state.uid;
    node.classList.add("pending");
    node.setAttribute("aria-busy", "true");
    pressChain = pressChain.then(async () => {
      try {
        const answer = await api("POST", `/users/${uid}/callbacks`, { message_id: messageId, data });
        if (answer.answered && answer.text) {
          if (answer.show_alert) showAlert(answer.text);
          else toast(answer.text);
        }
      } catch (err) {
        showError(err);
      } finally {
        node.classList.remove("pending");
        node.removeAttribute("aria-busy");
      }
    });
    return pressChain;
  }

  function showAlert(text) {
    $("alert-text").textContent = text;
    const dialog = $("alert-dialog");
    if (!dialog.open) dialog.showModal();
  }

  function upsertMessage(uid, message) {
    if (!state.chats.has(uid)) state.chats.set(uid, new Map());
    state.chats.get(uid).set(message.message_id, message);
    if (uid !== state.uid) return;
    const list = $("messages");
    const node = messageNode(message);
    const existing = document.getElementById(`msg-${message.message_id}`);
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (existing) {
      // keep the focus on a pressed keypad button when its message is edited in place
      const focused = existing.contains(document.activeElement) ? document.activeElement : null;
      existing.replaceWith(node);
      if (focused) restoreFocus(node, focused);
    } else {
      const later = [...list.children].find((child) => Number(child.dataset.messageId) > message.message_id);
      list.insertBefore(node, later || null);
    }
    renderStartButton();
    scrollChat(nearBottom || message.from === "user");
  }

  function restoreFocus(node, focused) {
    const same = [...node.querySelectorAll("button, a")].find((b) => b.textContent === focused.textContent);
    if (same) same.focus();
  }

  function scrollChat(force) {
    const list = $("messages");
    if (force) list.scrollTop = list.scrollHeight;
  }

  async function sendBody(body) {
    if (state.uid === null) return;
    try {
      await api("POST", `/users/${state.uid}/messages`, body);
    } catch (err) {
      showError(err);
    }
  }

  function sendText(text) {
    return sendBody({ text });
  }

  async function submitComposer(ev) {
    ev.preventDefault();
    if (state.uid === null) return;
    const box = $("composer-text");
    const { text, entities } = parseMarkup(box.value);
    const attachment = state.attachment;
    if (!attachment && !text.trim()) return;
    let body;
    if (attachment) {
      const photo = { caption: text, file_name: attachment.file.name, mime_type: attachment.file.type };
      if (entities.length) photo.entities = entities;
      photo.data_b64 = await fileBase64(attachment.file);
      body = { photo };
    } else {
      body = entities.length ? { text, entities } : { text };
    }
    box.value = "";
    clearAttachment();
    await sendBody(body);
    box.focus();
  }

  function fileBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  function chooseAttachment() {
    const file = $("photo-input").files[0];
    if (!file) return;
    clearAttachment();
    state.attachment = { file, url: URL.createObjectURL(file) };
    $("attachment-preview").src = state.attachment.url;
    $("attachment-name").textContent = file.name;
    $("attachment").hidden = false;
    $("composer-text").placeholder = "Caption";
    $("composer-text").focus();
  }

  function clearAttachment() {
    if (state.attachment) URL.revokeObjectURL(state.attachment.url);
    state.attachment = null;
    $("photo-input").value = "";
    $("attachment").hidden = true;
    $("attachment-preview").removeAttribute("src");
    renderReplyKeyboard();
  }

  function wrapSelection(marker) {
    const box = $("composer-text");
    const { selectionStart: start, selectionEnd: end, value } = box;
    const chosen = value.slice(start, end) || "text";
    box.value = value.slice(0, start) + marker + chosen + marker + value.slice(end);
    box.focus();
    box.setSelectionRange(start + marker.length, start + marker.length + chosen.length);
  }

  function insertLink() {
    const box = $("composer-text");
    const { selectionStart: start, selectionEnd: end, value } = box;
    const chosen = value.slice(start, end) || "link";
    const url = window.prompt("Link address", "https://");
    if (!url) return;
    box.value = `${value.slice(0, start)}[${chosen}](${url})${value.slice(end)}`;
    box.focus();
  }

  function composerKeys(ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    } else if ((ev.ctrlKey || ev.metaKey) && (ev.key === "b" || ev.key === "i")) {
      ev.preventDefault();
      wrapSelection(ev.key === "b" ? "**" : "__");
    }
  }

  // ---------------------------------------------------------------- reply keyboard and contact sharing

  function renderReplyKeyboard() {
    const box = $("reply-keyboard");
    const user = state.uid !== null ? state.users.get(state.uid) : null;
    const keyboard = user && user.keyboard && Array.isArray(user.keyboard.keyboard) ? user.keyboard : null;
    box.replaceChildren();
    box.hidden = !keyboard;
    $("composer-text").placeholder = state.attachment
      ? "Caption" : (keyboard && keyboard.input_field_placeholder) || "Message";
    if (!keyboard) return;
    for (const row of keyboard.keyboard) {
      const line = el("div", { class: "kb-row" });
      for (const raw of row) {
        const button = typeof raw === "string" ? { text: raw } : raw;
        line.append(el("button", { type: "button", class: "kb-button reply", onclick: () => replyButton(button) },
                       button.text));
      }
      box.append(line);
    }
  }

  function replyButton(button) {
    if (button.request_contact) {
      openContactDialog();
    } else if (button.request_location) {
      sendBody({ location: { latitude: 52.52, longitude: 13.405 } });
    } else {
      sendText(button.text);
    }
  }

  function openContactDialog() {
    const choices = $("contact-choices");
    choices.replaceChildren();
    for (const account of state.accounts) {
      choices.append(el("button", {
        type: "button", class: "choice",
        onclick: () => { $("contact-phone").value = account.phone; $("contact-phone").focus(); },
      }, `${account.first_name} ${account.phone}`));
    }
    const dialog = $("contact-dialog");
    dialog.showModal();
    $("contact-phone").focus();
  }

  function shareContact(ev) {
    ev.preventDefault();
    const phone = $("contact-phone").value.trim();
    if (!phone) return;
    $("contact-dialog").close();
    $("contact-phone").value = "";
    sendBody({ contact: { phone } });
  }

  // ---------------------------------------------------------------- accounts and login codes

  // The accounts a chat user connected: the world's own record of which bot chat each live
  // session's login went through (the phone given there, or the code typed there).
  function accountsOf(uid) {
    return state.accounts.filter((a) => (a.chat_users || []).includes(uid));
  }

  function renderChatAccounts() {
    const box = $("chat-accounts");
    const user = state.uid !== null ? state.users.get(state.uid) : null;
    box.hidden = !user;
    const list = $("chat-accounts-list");
    list.replaceChildren();
    if (!user) return;
    const mine = accountsOf(user.user_id);
    if (!mine.length) list.append(el("li", { class: "muted", text: "None yet: log in through the bot." }));
    for (const account of mine) {
      list.append(el("li", { dataset: { phone: account.phone } },
        `📱 ${account.first_name} `, el("span", { class: "phone", text: account.phone })));
    }
  }

  function chatUserName(uid) {
    const user = state.users.get(uid);
    return user ? `${user.first_name} (${uid})` : `user ${uid}`;
  }

  function renderAccounts() {
    const list = $("accounts");
    list.replaceChildren();
    for (const account of state.accounts) {
      const titleId = `account-${account.phone.replace(/\D/g, "")}`;
      const closed = account.groups.filter((g) => !g.can_send).length;
      const facts = [account.has_password ? "2FA on" : "no 2FA", `${account.groups.length} groups`];
      if (closed) facts.push(`${closed} not writable`);
      if (account.banned) facts.push("banned");
      const card = el("li", { class: "account", dataset: { phone: account.phone } },
        el("h3", { id: titleId }, account.first_name, " ", el("span", { class: "phone", text: account.phone })),
        el("p", { class: "facts", text: facts.join(" · ") }),
        (account.chat_users || []).length
          ? el("p", { class: "connected-by", text: `🔗 Connected by ${account.chat_users.map(chatUserName).join(", ")}` })
          : null,
        el("section", { class: "tg-app", "aria-label": `${account.first_name}'s Telegram app` },
          el("h4", { text: "Telegram app" }),
          codesList(account.phone)),
        el("button", { type: "button", class: "small", onclick: () => revokeSessions(account.phone) },
           "Terminate all sessions"));
      list.append(card);
    }
    renderFaultTargets();
  }

  function codesList(phone) {
    const codes = state.codes.get(phone) || [];
    const list = el("ol", { class: "codes", "aria-live": "polite", "aria-label": `Login codes for ${phone}` });
    if (!codes.length) list.append(el("li", { class: "muted", text: "No login codes yet." }));
    for (const code of codes.slice(0, MAX_CODES)) {
      list.append(el("li", { class: `code state-${code.state}` },
        el("span", {}, "Login code: ", el("strong", { class: "code-digits", text: code.code })),
        " ",
        el("span", { class: "code-state", text: code.state }),
        " ",
        el("time", { datetime: isoTime(code.date), text: clock(code.date) })));
    }
    return list;
  }

  function renderCodes(phone) {
    const card = [...$("accounts").children].find((node) => node.dataset.phone === phone);
    if (!card) return;
    card.querySelector("ol.codes").replaceWith(codesList(phone));
  }

  async function revokeSessions(phone) {
    try {
      const result = await api("DELETE", `/accounts/${encodeURIComponent(phone)}/sessions`);
      toast(`${result.revoked} session(s) of ${phone} terminated`);
    } catch (err) {
      showError(err);
    }
  }

  // ---------------------------------------------------------------- groups and posts

  function allGroups() {
    const groups = new Map();
    for (const account of state.accounts) {
      for (const group of account.groups) {
        const known = groups.get(group.id);
        if (known) known.members.push(account.phone);
        else groups.set(group.id, { ...group, members: [account.phone] });
      }
    }
    return groups;
  }

  function senderName(phone) {
    const account = state.accounts.find((a) => a.phone === phone);
    return account ? `${account.first_name} (${phone})` : phone;
  }

  // An album arrives as one post per item sharing a grouped_id (messages.sendMultiMedia): it is
  // shown, counted and paced as one post, the caption under its items.
  function merged(posts) {
    const out = [];
    for (const post of posts) {
      const last = out[out.length - 1];
      if (post.grouped_id && last && last.grouped_id === post.grouped_id) {
        last.items.push(post);
        if (!last.text && post.text) Object.assign(last, { text: post.text, entities: post.entities });
      } else {
        out.push({ ...post, items: [post] });
      }
    }
    return out;
  }

  // Gap to the same account's previous post in any group: that is what the engine paces.
  function gaps() {
    const all = [];
    for (const [gid, posts] of state.posts) for (const post of merged(posts)) all.push({ gid, post });
    all.sort((a, b) => a.post.date - b.post.date);
    const previous = new Map();
    const result = new Map();
    for (const { gid, post } of all) {
      const before = previous.get(post.from_phone);
      result.set(`${gid}:${post.message_id}`, before === undefined ? null : post.date - before);
      previous.set(post.from_phone, post.date);
    }
    return { all, result };
  }

  function postNode(gid, post, gap, title) {
    const meta = el("div", { class: "post-meta" },
      el("time", { datetime: isoTime(post.date), text: clock(post.date, true) }),
      title ? el("span", { class: "post-group", text: ` · ${title}` }) : null,
      el("span", { class: "post-from", text: ` · ${senderName(post.from_phone)}` }),
      gap === null ? el("span", { class: "gap first", text: " · first post" })
        : el("span", { class: "gap", text: ` · ${gapText(gap)}` }));
    const body = el("div", { class: "post-body" });
    const items = post.items || [post];
    const shelf = items.length > 1
      ? el("div", { class: "album", "aria-label": `Album of ${items.length}`, dataset: { groupedId: String(post.grouped_id) } })
      : body;
    if (items.length > 1) body.append(el("div", { class: "album-label", text: `🖼 album of ${items.length}` }), shelf);
    for (const item of items) {
      if (item.media && item.media.kind === "photo" && item.media.sha256) {
        // the image the group received, as a thumbnail (the bytes the account posted)
        shelf.append(el("img", { class: "post-photo", src: `/sandbox/api/media/${item.media.sha256}`,
                                 alt: "Posted photo", loading: "lazy" }));
      } else if (item.media) {
        shelf.append(el("div", { class: "media-card" },
          `📎 ${item.media.filename} (${item.media.kind})`));
      }
    }
    if (post.text) body.append(el("div", { class: "text" }, renderFormatted(post.text, post.entities)));
    return el("li", { class: "post", dataset: { groupId: String(gid), messageId: String(post.message_id) } },
              meta, body);
  }

  // A forum's panel: one feed per topic (General first), each post where its topic_id puts it.
  function topicFeeds(group, posts, result) {
    const topics = el("ul", { class: "topics", "aria-label": `Topics of ${group.title}` });
    for (const topic of group.topics) {
      const inTopic = posts.filter((p) => (p.topic_id || 1) === topic.id);
      const head = el("div", { class: "topic-title" },
        el("span", { text: `# ${topic.title}` }),
        el("span", { class: "group-flags", text: `${topic.closed ? " · closed" : ""} · ${inTopic.length} post${inTopic.length === 1 ? "" : "s"}` }));
      const feed = el("ol", { class: "feed", "aria-label": `Posts in ${group.title}, topic ${topic.title}` });
      if (!inTopic.length) feed.append(el("li", { class: "muted", text: "No posts yet." }));
      for (const post of inTopic) feed.append(postNode(group.id, post, result.get(`${group.id}:${post.message_id}`)));
      topics.append(el("li", { class: "topic", dataset: { topicId: String(topic.id) } }, head, feed));
    }
    return topics;
  }

  function topicTitle(group, post) {
    if (!group || !group.topics || post.topic_id === undefined) return "";
    const topic = group.topics.find((t) => t.id === post.topic_id);
    return topic ? ` › ${topic.title}` : "";
  }

  function renderGroups() {
    const groups = allGroups();
    const { all, result } = gaps();
    const list = $("groups");
    list.replaceChildren();
    const ordered = [...groups.values()].sort((a, b) => {
      const pa = (state.posts.get(a.id) || []).length;
      const pb = (state.posts.get(b.id) || []).length;
      return (pb > 0) - (pa > 0) || a.title.localeCompare(b.title);
    });
    for (const group of ordered) {
      const posts = merged(state.posts.get(group.id) || []);
      const flags = [group.kind];
      if (group.forum) flags.push(`forum, ${group.topics ? group.topics.length : 0} topics`);
      if (!group.can_send) flags.push("read-only");
      if (group.slow_mode) flags.push(`slow mode ${group.slow_mode} s`);
      const details = el("details", {
        class: "group", open: posts.length > 0 && !state.closedGroups.has(group.id),
        dataset: { groupId: String(group.id) },
      });
      details.addEventListener("toggle", () => {
        if (details.open) state.closedGroups.delete(group.id);
        else state.closedGroups.add(group.id);
      });
      const summary = el("summary", {},
        el("span", { class: "group-title", text: group.title }),
        el("span", { class: "group-flags", text: ` ${flags.join(", ")}` }),
        el("span", { class: "post-count", text: ` · ${posts.length} post${posts.length === 1 ? "" : "s"}` }));
      if (group.forum && group.topics) {
        details.append(summary, topicFeeds(group, posts, result));
      } else {
        const feed = el("ol", { class: "feed", "aria-label": `Posts in ${group.title}` });
        if (!posts.length) feed.append(el("li", { class: "muted", text: "No posts yet." }));
        for (const post of posts) feed.append(postNode(group.id, post, result.get(`${group.id}:${post.message_id}`)));
        details.append(summary, feed);
      }
      list.append(el("li", {}, details));
    }
    const timeline = $("timeline");
    timeline.replaceChildren();
    const latest = all.slice(-MAX_TIMELINE).reverse();
    if (!latest.length) timeline.append(el("li", { class: "muted", text: "No posts yet." }));
    for (const { gid, post } of latest) {
      const group = groups.get(gid);
      const title = (group || { title: `group ${gid}` }).title + topicTitle(group, post);
      timeline.append(postNode(gid, post, result.get(`${gid}:${post.message_id}`), title));
    }
  }

  function addPost(gid, post) {
    const posts = state.posts.get(gid) || [];
    if (posts.some((p) => p.message_id === post.message_id)) return;
    posts.push(post);
    posts.sort((a, b) => a.message_id - b.message_id);
    state.posts.set(gid, posts);
    scheduleGroups();
  }

  // many posts can arrive in one tick: draw the panel once per frame
  let groupsPending = false;
  function scheduleGroups() {
    if (groupsPending) return;
    groupsPending = true;
    requestAnimationFrame(() => { groupsPending = false; renderGroups(); });
  }

  // ---------------------------------------------------------------- faults and activity

  function renderFaultTargets() {
    const phone = $("fault-phone");
    const group = $("fault-group");
    const chosenPhone = phone.value;
    const chosenGroup = group.value;
    phone.replaceChildren(el("option", { value: "", text: "any account" }));
    for (const account of state.accounts) {
      phone.append(el("option", { value: account.phone, text: `${account.first_name} ${account.phone}` }));
    }
    group.replaceChildren(el("option", { value: "", text: "any group" }));
    for (const g of [...allGroups().values()].sort((a, b) => a.title.localeCompare(b.title))) {
      group.append(el("option", { value: String(g.id), text: `${g.title} (${g.id})` }));
    }
    phone.value = chosenPhone;
    group.value = chosenGroup;
  }

  function renderFaults() {
    const list = $("faults");
    list.replaceChildren();
    if (!state.faults.length) list.append(el("li", { class: "muted", text: "None." }));
    for (const fault of state.faults) {
      const parts = [fault.error];
      if (fault.seconds !== null && fault.seconds !== undefined) parts.push(`${fault.seconds} s`);
      parts.push(`on ${fault.call === "*" ? "any call" : fault.call}`);
      if (fault.phone) parts.push(`for ${fault.phone}`);
      if (fault.group_id) parts.push(`in group ${fault.group_id}`);
      parts.push(fault.times === -1 ? "until cleared" : `${fault.times} left`);
      list.append(el("li", { class: "fault", text: parts.join(" ") }));
    }
  }

  async function injectFault(spec) {
    try {
      // the list follows the live channel only: a fault may be used up before it could be drawn
      await api("POST", "/faults", spec);
      toast(`Fault ${spec.error} armed`);
    } catch (err) {
      showError(err);
    }
  }

  function faultFromForm(ev) {
    ev.preventDefault();
    const spec = { call: $("fault-call").value, error: $("fault-error").value };
    if ($("fault-phone").value) spec.phone = $("fault-phone").value;
    if ($("fault-group").value) spec.group_id = Number($("fault-group").value);
    const seconds = $("fault-seconds").value;
    if (seconds !== "") spec.seconds = Number(seconds);
    const times = $("fault-times").value;
    if (times !== "") spec.times = Number(times);
    injectFault(spec);
  }

  function presetFault(error) {
    const spec = { call: "send_message", error };
    if (error === "FLOOD_WAIT") spec.seconds = 30;
    if ($("fault-phone").value) spec.phone = $("fault-phone").value;
    if ($("fault-group").value) spec.group_id = Number($("fault-group").value);
    injectFault(spec);
  }

  async function clearFaults() {
    try {
      const result = await api("DELETE", "/faults");
      state.faults = [];
      renderFaults();
      toast(`${result.cleared} fault(s) cleared`);
    } catch (err) {
      showError(err);
    }
  }

  function addActivity(events) {
    for (const event of events) {
      if (event.seq <= state.lastSeq) continue;
      state.lastSeq = event.seq;
      if (event.method === "getUpdates") continue;
      state.activity.push(event);
    }
    state.activity = state.activity.slice(-MAX_ACTIVITY);
    renderActivity();
  }

  function renderActivity() {
    const list = $("activity");
    list.replaceChildren();
    for (const event of [...state.activity].reverse()) {
      const who = event.phone || (event.user_id ? `user ${event.user_id}` : "");
      const outcome = event.ok ? "ok" : `${event.error || "error"}${event.retry_after ? ` ${event.retry_after} s` : ""}`;
      list.append(el("li", { class: event.ok ? "ok" : "failed" },
        el("time", { datetime: new Date(event.ts_ms).toISOString(), text: clock(event.ts_ms / 1000) }),
        ` ${event.api} ${event.method}${who ? ` ${who}` : ""}${event.group_id ? ` group ${event.group_id}` : ""} — ${outcome}`));
    }
  }

  // ---------------------------------------------------------------- loading and the live channel

  // Called on every (re)connection and after a reset. The maps are emptied first, so that live
  // events arriving during the load land in them and win over the loaded copies.
  async function loadAll(lastSeq) {
    state.users = new Map();
    state.codes = new Map();
    state.posts = new Map();
    state.chats = new Map();
    state.activity = [];
    state.lastSeq = Math.max(0, (lastSeq || 0) - MAX_ACTIVITY);
    const [users, accounts, faults, events] = await Promise.all([
      api("GET", "/users"), api("GET", "/accounts"), api("GET", "/faults"),
      api("GET", `/events?since=${state.lastSeq}`),
    ]);
    for (const user of users) if (!state.users.has(user.user_id)) state.users.set(user.user_id, user);
    state.accounts = accounts;
    state.faults = faults;
    addActivity(events);
    const codes = await Promise.all(accounts.map((a) => api("GET", `/accounts/${encodeURIComponent(a.phone)}/codes`)));
    accounts.forEach((a, i) => { if (!state.codes.has(a.phone)) state.codes.set(a.phone, codes[i]); });
    const groupIds = [...allGroups().keys()];
    const feeds = await Promise.all(groupIds.map((gid) => api("GET", `/groups/${gid}/messages`)));
    groupIds.forEach((gid, i) => { for (const post of feeds[i]) addPost(gid, post); });
    renderAccounts();
    renderFaults();
    renderGroups();
    const stored = Number.parseInt(localStorage.getItem(STORAGE_KEY) || "", 10);
    const uid = state.users.has(state.uid) ? state.uid : (state.users.has(stored) ? stored : null);
    await selectUser(uid);
  }

  function setLive(status, text) {
    const node = $("live-status");
    node.dataset.state = status;
    node.textContent = text;
  }

  function connect() {
    const source = new EventSource(`${API}/stream`);
    const on = (name, handler) => source.addEventListener(name, (ev) => {
      try {
        handler(JSON.parse(ev.data));
      } catch (err) {
        console.error(`live event ${name} failed`, err);
      }
    });
    on("ready", (info) => {
      loadAll(info.last_seq).then(() => setLive("live", "● Live")).catch((err) => {
        setLive("error", "Could not load the sandbox state");
        showError(err);
      });
    });
    on("reset", () => { loadAll(0).catch(showError); });
    on("user", (user) => {
      const known = state.users.has(user.user_id);
      state.users.set(user.user_id, user);
      if (!known) {
        renderUserSelect();
        renderAccounts(); // an account card may name this user
      }
      if (user.user_id === state.uid) renderReplyKeyboard();
    });
    on("message", ({ user_id: uid, message }) => upsertMessage(uid, message));
    on("codes", ({ phone, codes }) => { state.codes.set(phone, codes); renderCodes(phone); });
    on("accounts", (accounts) => {
      state.accounts = accounts;
      renderAccounts();
      renderUserSelect();
      renderChatAccounts();
      scheduleGroups();
    });
    on("post", ({ group_id: gid, post }) => addPost(gid, post));
    on("faults", (faults) => { state.faults = faults; renderFaults(); });
    on("events", addActivity);
    source.addEventListener("error", () => setLive("reconnecting", "Reconnecting…"));
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    $("user-select").addEventListener("change", (ev) => {
      const value = ev.target.value;
      selectUser(value ? Number(value) : null);
    });
    $("choose-user-form").addEventListener("submit", (ev) => ev.preventDefault());
    $("new-user-form").addEventListener("submit", createUser);
    $("composer").addEventListener("submit", submitComposer);
    $("composer-text").addEventListener("keydown", composerKeys);
    $("start-button").addEventListener("click", () => sendText("/start"));
    $("photo-input").addEventListener("change", chooseAttachment);
    $("attachment-remove").addEventListener("click", () => { clearAttachment(); $("composer-text").focus(); });
    for (const button of document.querySelectorAll(".toolbar [data-wrap]")) {
      button.addEventListener("click", () => wrapSelection(button.dataset.wrap));
    }
    document.querySelector(".toolbar [data-link]").addEventListener("click", insertLink);
    $("contact-form").addEventListener("submit", shareContact);
    $("contact-cancel").addEventListener("click", () => $("contact-dialog").close());
    $("fault-form").addEventListener("submit", faultFromForm);
    $("preset-flood").addEventListener("click", () => presetFault("FLOOD_WAIT"));
    $("preset-ban").addEventListener("click", () => presetFault("USER_BANNED_IN_CHANNEL"));
    $("faults-clear").addEventListener("click", clearFaults);
    connect();
  }

  // exposed for tests of the formatting rules
  window.sandboxPage = { parseMarkup, renderFormatted };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
