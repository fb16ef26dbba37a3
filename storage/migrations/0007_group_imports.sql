-- Group import as a job that survives flood waits and restarts: where the dialog listing stopped
-- (folder + Telegram's paging cursor), what it has read, and the peers seen so far (groups are
-- merged page by page; the ones never seen are marked gone only when the listing is complete).
CREATE TABLE group_imports (
    user_id      bigint      NOT NULL,
    status       text        NOT NULL DEFAULT 'running',
    folder       integer     NOT NULL DEFAULT 0,
    page_offset  text        NOT NULL DEFAULT '',
    chats_read   integer     NOT NULL DEFAULT 0,
    seen         bigint[]    NOT NULL DEFAULT '{}',
    new_count    integer     NOT NULL DEFAULT 0,
    updated_count integer    NOT NULL DEFAULT 0,
    resume_at    timestamptz,
    error        text        NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT group_imports_pkey PRIMARY KEY (user_id),
    CONSTRAINT group_imports_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT group_imports_status_check
        CHECK (status IN ('running', 'waiting', 'cancelling', 'done', 'failed', 'cancelled')),
    CONSTRAINT group_imports_folder_check CHECK (folder IN (0, 1))
);

-- a group listed in the account's archive folder
ALTER TABLE groups ADD COLUMN archived boolean NOT NULL DEFAULT false;
