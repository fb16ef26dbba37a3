-- Retention (issue 14): finished rounds and their attempts older than RETENTION_DAYS are folded into
-- per-user, per-day totals and deleted in small batches; superseded message versions no round keeps,
-- media no message uses, delivered notifications and old audit rows are deleted the same way.

-- what the deleted rounds counted: one row per user and UTC day (the day the round finished);
-- totals a user or an admin sees are these plus the rounds still stored
CREATE TABLE round_summaries (
    user_id    bigint      NOT NULL,
    day        date        NOT NULL,
    rounds     integer     NOT NULL DEFAULT 0,
    cancelled  integer     NOT NULL DEFAULT 0,
    total      bigint      NOT NULL DEFAULT 0,
    sent       bigint      NOT NULL DEFAULT 0,
    failed     bigint      NOT NULL DEFAULT 0,
    skipped    bigint      NOT NULL DEFAULT 0,
    unknown    bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT round_summaries_pkey PRIMARY KEY (user_id, day),
    CONSTRAINT round_summaries_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT round_summaries_counts_check
        CHECK (rounds >= 0 AND cancelled >= 0 AND total >= 0 AND sent >= 0 AND failed >= 0
               AND skipped >= 0 AND unknown >= 0)
);

-- the retention job's scans, oldest first, each bounded by LIMIT
CREATE INDEX rounds_finished_at_idx ON rounds (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX notifications_delivered_at_idx ON notifications (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX messages_created_at_idx ON messages (created_at);
CREATE INDEX media_created_at_idx ON media (created_at);
-- "is this message version / media still used?" and the foreign-key checks of their deletes
CREATE INDEX rounds_message_id_idx ON rounds (message_id);
CREATE INDEX messages_media_id_idx ON messages (media_id) WHERE media_id IS NOT NULL;
