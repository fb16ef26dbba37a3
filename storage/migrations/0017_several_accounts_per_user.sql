-- U8 (issue 13): several Telegram accounts per user. A broadcast belongs to one account: campaigns,
-- groups, messages, rounds, group imports and round summaries get ``account_id``, back-filled from
-- each user's one account, which becomes the user's current account (the one the menus act on).
-- ``user_id`` stays on every row (access checks, admin views, retention keep their indexes).
--
-- A user who has never connected an account may already set a message and an interval: those rows
-- have account_id NULL (the user's draft) and the first account connected adopts them. Keys are
-- therefore (user_id, account_id, ...) with NULLS NOT DISTINCT, so the draft is one row too.
-- Account safety (pacing, the account lock, flood pauses) is keyed by the Telegram account in Redis
-- and needs nothing here.

-- accounts: one row per (bot user, Telegram account) instead of one per bot user; the partial
-- unique index of 0010 (a Telegram account connected by one bot user at a time) stays.
ALTER TABLE accounts DROP CONSTRAINT accounts_user_id_key;
ALTER TABLE accounts ADD CONSTRAINT accounts_user_id_tg_user_id_key UNIQUE (user_id, tg_user_id);

ALTER TABLE users ADD COLUMN current_account_id bigint;
ALTER TABLE users ADD CONSTRAINT users_current_account_id_fkey FOREIGN KEY (current_account_id)
    REFERENCES accounts (account_id) ON DELETE SET NULL;
UPDATE users u SET current_account_id = a.account_id FROM accounts a WHERE a.user_id = u.user_id;

-- The account the menus act on (NULL: none connected yet, the draft rows).
CREATE FUNCTION current_account(p_user_id bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT u.current_account_id FROM users u WHERE u.user_id = p_user_id
$$;

-- The first account a user connects becomes the current one and takes over what they set before it
-- (the draft rows). Later accounts start empty; the login makes each new one current.
CREATE FUNCTION accounts_first_becomes_current() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET current_account_id = NEW.account_id
    WHERE user_id = NEW.user_id AND current_account_id IS NULL;
    IF FOUND THEN
        UPDATE campaigns SET account_id = NEW.account_id WHERE user_id = NEW.user_id AND account_id IS NULL;
        UPDATE messages SET account_id = NEW.account_id WHERE user_id = NEW.user_id AND account_id IS NULL;
        UPDATE groups SET account_id = NEW.account_id WHERE user_id = NEW.user_id AND account_id IS NULL;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_first_becomes_current_trg AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_first_becomes_current();

-- A writer that names no account (the previous release, tools) writes to the user's current one.
CREATE FUNCTION fill_current_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.account_id IS NULL THEN
        NEW.account_id := current_account(NEW.user_id);
    END IF;
    RETURN NEW;
END
$$;

-- campaigns: the key becomes the account (interval, window, rotation, start/stop are per account)
ALTER TABLE campaigns ADD COLUMN account_id bigint;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_account_id_fkey FOREIGN KEY (account_id)
    REFERENCES accounts (account_id) ON DELETE CASCADE;
UPDATE campaigns c SET account_id = u.current_account_id FROM users u WHERE u.user_id = c.user_id;
ALTER TABLE campaigns DROP CONSTRAINT campaigns_pkey;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_user_id_account_id_key UNIQUE NULLS NOT DISTINCT (user_id, account_id);
CREATE UNIQUE INDEX campaigns_account_id_key ON campaigns (account_id);
CREATE TRIGGER campaigns_fill_account_trg BEFORE INSERT ON campaigns
    FOR EACH ROW EXECUTE FUNCTION fill_current_account();

-- groups: a chat is listed once per account
ALTER TABLE groups ADD COLUMN account_id bigint;
ALTER TABLE groups ADD CONSTRAINT groups_account_id_fkey FOREIGN KEY (account_id)
    REFERENCES accounts (account_id) ON DELETE CASCADE;
UPDATE groups g SET account_id = u.current_account_id FROM users u WHERE u.user_id = g.user_id;
ALTER TABLE groups DROP CONSTRAINT groups_user_id_peer_id_key;
ALTER TABLE groups ADD CONSTRAINT groups_user_id_account_id_peer_id_key
    UNIQUE NULLS NOT DISTINCT (user_id, account_id, peer_id);
CREATE INDEX groups_account_id_peer_id_idx ON groups (account_id, peer_id);
-- the account's group pages ordered by (title, id), and its selected active groups (round planning)
CREATE INDEX groups_account_id_title_idx ON groups (account_id, title, group_id);
CREATE INDEX groups_account_id_selected_idx ON groups (account_id) WHERE selected AND status = 'active';
CREATE TRIGGER groups_fill_account_trg BEFORE INSERT ON groups
    FOR EACH ROW EXECUTE FUNCTION fill_current_account();

-- messages: positions are per account
ALTER TABLE messages ADD COLUMN account_id bigint;
ALTER TABLE messages ADD CONSTRAINT messages_account_id_fkey FOREIGN KEY (account_id)
    REFERENCES accounts (account_id) ON DELETE CASCADE;
UPDATE messages m SET account_id = u.current_account_id FROM users u WHERE u.user_id = m.user_id;
CREATE INDEX messages_account_id_position_active_idx ON messages (account_id, position) WHERE active;
CREATE TRIGGER messages_fill_account_trg BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION fill_current_account();

CREATE OR REPLACE FUNCTION messages_take_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.active THEN
        UPDATE messages SET active = false
        WHERE user_id = NEW.user_id AND account_id IS NOT DISTINCT FROM NEW.account_id
          AND position = NEW.position AND active AND message_id <> NEW.message_id;
    END IF;
    RETURN NULL;
END
$$;

-- rounds: one open round and one round per due time per account (what the scheduler plans)
ALTER TABLE rounds ADD COLUMN account_id bigint;
ALTER TABLE rounds ADD CONSTRAINT rounds_account_id_fkey FOREIGN KEY (account_id)
    REFERENCES accounts (account_id) ON DELETE CASCADE;
UPDATE rounds r SET account_id = u.current_account_id FROM users u WHERE u.user_id = r.user_id;
DROP INDEX rounds_user_id_open_idx;
CREATE UNIQUE INDEX rounds_user_id_account_id_open_idx ON rounds (user_id, account_id) NULLS NOT DISTINCT
    WHERE finished_at IS NULL;
ALTER TABLE rounds DROP CONSTRAINT rounds_user_id_planned_at_key;
ALTER TABLE rounds ADD CONSTRAINT rounds_user_id_account_id_planned_at_key
    UNIQUE NULLS NOT DISTINCT (user_id, account_id, planned_at);
-- the last round of an account
CREATE INDEX rounds_account_id_round_id_idx ON rounds (account_id, round_id DESC);
CREATE TRIGGER rounds_fill_account_trg BEFORE INSERT ON rounds
    FOR EACH ROW EXECUTE FUNCTION fill_current_account();

-- group_imports: still one import at a time per user; it lists the account it was started for
ALTER TABLE group_imports ADD COLUMN account_id bigint;
ALTER TABLE group_imports ADD CONSTRAINT group_imports_account_id_fkey FOREIGN KEY (account_id)
    REFERENCES accounts (account_id) ON DELETE CASCADE;
UPDATE group_imports i SET account_id = u.current_account_id FROM users u WHERE u.user_id = i.user_id;
CREATE TRIGGER group_imports_fill_account_trg BEFORE INSERT ON group_imports
    FOR EACH ROW EXECUTE FUNCTION fill_current_account();

-- round_summaries: the folded history per account and day
ALTER TABLE round_summaries ADD COLUMN account_id bigint;
ALTER TABLE round_summaries ADD CONSTRAINT round_summaries_account_id_fkey FOREIGN KEY (account_id)
    REFERENCES accounts (account_id) ON DELETE CASCADE;
UPDATE round_summaries s SET account_id = u.current_account_id FROM users u WHERE u.user_id = s.user_id;
ALTER TABLE round_summaries DROP CONSTRAINT round_summaries_pkey;
ALTER TABLE round_summaries ADD CONSTRAINT round_summaries_user_id_account_id_day_key
    UNIQUE NULLS NOT DISTINCT (user_id, account_id, day);
