-- A7 announcements live in the database, so a restart resumes them instead of losing the rest.
-- An announcement and all its targets are written in the transaction of the admin's confirmation;
-- the polling/webhook leader delivers the pending targets and finishes the announcement with its counts.

CREATE TABLE announcements (
    announcement_id bigserial   NOT NULL,
    text            text        NOT NULL,
    entities        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_by_kind text        NOT NULL DEFAULT 'admin',
    created_by      bigint,
    report_to       bigint,
    status          text        NOT NULL DEFAULT 'running',
    total           integer     NOT NULL DEFAULT 0,
    delivered       integer     NOT NULL DEFAULT 0,
    blocked         integer     NOT NULL DEFAULT 0,
    failed          integer     NOT NULL DEFAULT 0,
    retries         integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT announcements_pkey PRIMARY KEY (announcement_id),
    CONSTRAINT announcements_created_by_kind_check CHECK (created_by_kind IN ('admin', 'api', 'system')),
    CONSTRAINT announcements_status_check CHECK (status IN ('running', 'done')),
    CONSTRAINT announcements_finished_check CHECK ((status = 'done') = (finished_at IS NOT NULL))
);
-- one announcement is sent at a time: a second confirmation meets this index and is told "busy"
CREATE UNIQUE INDEX announcements_running_idx ON announcements ((true)) WHERE status = 'running';

-- one row per target; 'sending' is written before the send and the outcome after it, so a crash
-- leaves at most one row in 'sending' (resolved as failed: never sent twice)
CREATE TABLE announcement_deliveries (
    announcement_id bigint      NOT NULL,
    user_id         bigint      NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT announcement_deliveries_pkey PRIMARY KEY (announcement_id, user_id),
    CONSTRAINT announcement_deliveries_announcement_id_fkey FOREIGN KEY (announcement_id)
        REFERENCES announcements (announcement_id) ON DELETE CASCADE,
    CONSTRAINT announcement_deliveries_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT announcement_deliveries_status_check
        CHECK (status IN ('pending', 'sending', 'delivered', 'blocked', 'failed'))
);
-- the announcer's next batch: pending targets of one announcement in user id order
CREATE INDEX announcement_deliveries_pending_idx ON announcement_deliveries (announcement_id, user_id)
    WHERE status = 'pending';
-- deleting a user looks up their deliveries
CREATE INDEX announcement_deliveries_user_id_idx ON announcement_deliveries (user_id);
