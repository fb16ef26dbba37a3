-- Import records whether a supergroup is a forum (issue 11): a post without a topic goes to its
-- General topic, which can be closed (TOPIC_CLOSED closes the group with that reason).

ALTER TABLE groups ADD COLUMN is_forum boolean NOT NULL DEFAULT false;
