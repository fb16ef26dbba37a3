-- Forum topics (issue 13, U11): an import records the topics of each forum group it lists, and the
-- user picks the topic a group's posts go to. NULL topic_id = the General topic (id 1 at Telegram),
-- the default. A chosen topic that is closed or deleted disables the group with that reason.
CREATE TABLE group_topics (
    group_id   bigint  NOT NULL,
    topic_id   integer NOT NULL,
    title      text    NOT NULL DEFAULT '',
    closed     boolean NOT NULL DEFAULT false,
    position   integer NOT NULL DEFAULT 0,
    CONSTRAINT group_topics_pkey PRIMARY KEY (group_id, topic_id),
    CONSTRAINT group_topics_group_id_fkey FOREIGN KEY (group_id) REFERENCES groups (group_id) ON DELETE CASCADE,
    CONSTRAINT group_topics_topic_id_check CHECK (topic_id > 0)
);

ALTER TABLE groups ADD COLUMN topic_id integer;
