-- Core schema: users and access, accounts, groups, messages, campaigns, rounds, attempts, settings.
-- Naming: <table>_pkey, <table>_<cols>_key (unique), <table>_<col>_fkey, <table>_<what>_check, <table>_<what>_idx.

CREATE TABLE users (
    user_id            bigint      NOT NULL,
    first_name         text        NOT NULL DEFAULT '',
    last_name          text        NOT NULL DEFAULT '',
    username           text        NOT NULL DEFAULT '',
    language           text        NOT NULL DEFAULT '',
    access_status      text        NOT NULL DEFAULT 'none',
    access_expires_at  timestamptz,
    access_requested_at timestamptz,
    banned             boolean     NOT NULL DEFAULT false,
    bot_blocked        boolean     NOT NULL DEFAULT false,
    notify_rounds      boolean     NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_access_status_check
        CHECK (access_status IN ('none', 'pending', 'granted', 'rejected', 'revoked'))
);
CREATE INDEX users_access_status_idx ON users (access_status);

CREATE TABLE accounts (
    account_id          bigserial   NOT NULL,
    user_id             bigint      NOT NULL,
    phone               text        NOT NULL,
    tg_user_id          bigint      NOT NULL,
    first_name          text        NOT NULL DEFAULT '',
    session_enc         bytea,
    status              text        NOT NULL DEFAULT 'connected',
    disconnected_reason text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_pkey PRIMARY KEY (account_id),
    CONSTRAINT accounts_user_id_key UNIQUE (user_id),
    CONSTRAINT accounts_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT accounts_status_check CHECK (status IN ('connected', 'disconnected')),
    -- a connected account always has a session; a disconnected one never keeps it
    CONSTRAINT accounts_session_check CHECK ((status = 'connected') = (session_enc IS NOT NULL))
);

CREATE TABLE groups (
    group_id     bigserial   NOT NULL,
    user_id      bigint      NOT NULL,
    peer_id      bigint      NOT NULL,
    access_hash  bigint      NOT NULL DEFAULT 0,
    kind         text        NOT NULL,
    title        text        NOT NULL DEFAULT '',
    selected     boolean     NOT NULL DEFAULT false,
    status       text        NOT NULL DEFAULT 'active',
    reason       text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_pkey PRIMARY KEY (group_id),
    CONSTRAINT groups_user_id_peer_id_key UNIQUE (user_id, peer_id),
    CONSTRAINT groups_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT groups_kind_check CHECK (kind IN ('group', 'supergroup', 'channel')),
    CONSTRAINT groups_status_check CHECK (status IN ('active', 'disabled', 'gone'))
);
CREATE INDEX groups_user_id_selected_idx ON groups (user_id) WHERE selected AND status = 'active';

-- media captured from the bot chat, stored so the worker can upload it through the account
CREATE TABLE media (
    media_id    bigserial   NOT NULL,
    sha256      text        NOT NULL,
    kind        text        NOT NULL,
    filename    text        NOT NULL DEFAULT '',
    mime_type   text        NOT NULL DEFAULT 'application/octet-stream',
    bot_file_id text        NOT NULL DEFAULT '',
    data        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT media_pkey PRIMARY KEY (media_id),
    CONSTRAINT media_kind_check CHECK (kind IN ('photo', 'video', 'document', 'animation'))
);
CREATE INDEX media_sha256_idx ON media (sha256);

CREATE TABLE messages (
    message_id  bigserial   NOT NULL,
    user_id     bigint      NOT NULL,
    version     integer     NOT NULL,
    text        text        NOT NULL DEFAULT '',
    entities    jsonb       NOT NULL DEFAULT '[]'::jsonb,
    media_id    bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_pkey PRIMARY KEY (message_id),
    CONSTRAINT messages_user_id_version_key UNIQUE (user_id, version),
    CONSTRAINT messages_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT messages_media_id_fkey FOREIGN KEY (media_id) REFERENCES media (media_id),
    CONSTRAINT messages_content_check CHECK (text <> '' OR media_id IS NOT NULL)
);

CREATE TABLE campaigns (
    user_id          bigint      NOT NULL,
    status           text        NOT NULL DEFAULT 'stopped',
    interval_seconds integer,
    next_run_at      timestamptz,
    paused_until     timestamptz,
    pause_reason     text        NOT NULL DEFAULT '',
    started_at       timestamptz,
    stopped_at       timestamptz,
    last_round_id    bigint,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_pkey PRIMARY KEY (user_id),
    CONSTRAINT campaigns_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT campaigns_status_check CHECK (status IN ('stopped', 'running')),
    CONSTRAINT campaigns_interval_check CHECK (interval_seconds IS NULL OR interval_seconds > 0)
);
-- the scheduler's due query: running campaigns by next_run_at (cost grows with due rows only)
CREATE INDEX campaigns_status_next_run_at_idx ON campaigns (status, next_run_at);

CREATE TABLE rounds (
    round_id     bigserial   NOT NULL,
    user_id      bigint      NOT NULL,
    message_id   bigint      NOT NULL,
    planned_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    status       text        NOT NULL DEFAULT 'running',
    total        integer     NOT NULL DEFAULT 0,
    sent         integer     NOT NULL DEFAULT 0,
    failed       integer     NOT NULL DEFAULT 0,
    skipped      integer     NOT NULL DEFAULT 0,
    unknown      integer     NOT NULL DEFAULT 0,
    CONSTRAINT rounds_pkey PRIMARY KEY (round_id),
    CONSTRAINT rounds_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT rounds_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages (message_id),
    CONSTRAINT rounds_status_check CHECK (status IN ('running', 'done', 'cancelled')),
    -- one round per due time, whatever number of schedulers race for it
    CONSTRAINT rounds_user_id_planned_at_key UNIQUE (user_id, planned_at)
);
-- one unfinished round per user at a time
CREATE UNIQUE INDEX rounds_user_id_open_idx ON rounds (user_id) WHERE finished_at IS NULL;
CREATE INDEX rounds_open_idx ON rounds (created_at) WHERE finished_at IS NULL;

CREATE TABLE attempts (
    attempt_id      bigserial   NOT NULL,
    round_id        bigint      NOT NULL,
    group_id        bigint      NOT NULL,
    peer_id         bigint      NOT NULL,
    access_hash     bigint      NOT NULL DEFAULT 0,
    kind            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    tries           integer     NOT NULL DEFAULT 0,
    not_before      timestamptz,
    retry_after     timestamptz,
    error_code      text        NOT NULL DEFAULT '',
    error_detail    text        NOT NULL DEFAULT '',
    sent_message_id bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sending_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attempts_pkey PRIMARY KEY (attempt_id),
    CONSTRAINT attempts_round_id_group_id_key UNIQUE (round_id, group_id),
    CONSTRAINT attempts_round_id_fkey FOREIGN KEY (round_id) REFERENCES rounds (round_id) ON DELETE CASCADE,
    CONSTRAINT attempts_group_id_fkey FOREIGN KEY (group_id) REFERENCES groups (group_id) ON DELETE CASCADE,
    CONSTRAINT attempts_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'flood_wait', 'unknown'))
);
CREATE INDEX attempts_round_id_open_idx ON attempts (round_id, attempt_id)
    WHERE status IN ('pending', 'sending', 'flood_wait');
CREATE INDEX attempts_finished_at_idx ON attempts (finished_at);

-- global runtime settings (access mode, global pause), one row per key
CREATE TABLE settings (
    key        text        NOT NULL,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT settings_pkey PRIMARY KEY (key)
);
INSERT INTO settings (key, value) VALUES
    ('access_mode', '"open"'::jsonb),
    ('global_pause', 'false'::jsonb);
