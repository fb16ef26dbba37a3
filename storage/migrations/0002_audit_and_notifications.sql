-- Audit log of admin actions and the outbox of notifications the bot delivers to users.

CREATE TABLE audit_log (
    audit_id       bigserial   NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_id       bigint,
    actor_kind     text        NOT NULL,
    action         text        NOT NULL,
    target_user_id bigint,
    outcome        text        NOT NULL DEFAULT 'ok',
    detail         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT audit_log_pkey PRIMARY KEY (audit_id),
    CONSTRAINT audit_log_actor_kind_check CHECK (actor_kind IN ('admin', 'api', 'system', 'user')),
    CONSTRAINT audit_log_outcome_check CHECK (outcome IN ('ok', 'denied', 'failed'))
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, audit_id DESC);

-- written in the same transaction as the event that causes it; delivered at least once by the bot
-- role; dedupe_key makes "told once" notifications (group disabled) idempotent
CREATE TABLE notifications (
    notification_id bigserial   NOT NULL,
    user_id         bigint      NOT NULL,
    kind            text        NOT NULL,
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    dedupe_key      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    tries           integer     NOT NULL DEFAULT 0,
    CONSTRAINT notifications_pkey PRIMARY KEY (notification_id),
    CONSTRAINT notifications_dedupe_key_key UNIQUE (dedupe_key),
    CONSTRAINT notifications_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE
);
CREATE INDEX notifications_undelivered_idx ON notifications (notification_id) WHERE delivered_at IS NULL;
