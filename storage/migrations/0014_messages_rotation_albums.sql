-- Several messages in rotation and albums (issue 13, U9).
-- A user's active messages are the rows with ``active``, numbered for the user by ``position``.
-- A new active row takes its position from the one there (the trigger deactivates that one after
-- the insert; rounds keep pointing at old versions), so a writer that knows nothing of positions
-- (the previous release, tools) still replaces message 1 as a new version did before. Writers hold
-- the user's lock. Existing users keep their current (latest) message as message 1.
ALTER TABLE messages ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE messages ADD COLUMN position integer NOT NULL DEFAULT 1;
UPDATE messages m SET active = false
WHERE m.version < (SELECT max(x.version) FROM messages x WHERE x.user_id = m.user_id);
ALTER TABLE messages ADD CONSTRAINT messages_position_check CHECK (position >= 1);
CREATE INDEX messages_user_id_position_active_idx ON messages (user_id, position) WHERE active;

CREATE FUNCTION messages_take_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.active THEN
        UPDATE messages SET active = false
        WHERE user_id = NEW.user_id AND position = NEW.position AND active
          AND message_id <> NEW.message_id;
    END IF;
    RETURN NULL;
END
$$;
-- AFTER: an upsert that meets an existing version (ON CONFLICT DO UPDATE) takes no position
CREATE TRIGGER messages_take_position_trg AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_take_position();

-- An album: 2-10 photos/videos posted as one, the caption on the first (messages.text/entities);
-- messages.media_id keeps the first item, so the content check and older readers still hold.
CREATE TABLE message_media (
    message_id bigint   NOT NULL,
    position   smallint NOT NULL,
    media_id   bigint   NOT NULL,
    CONSTRAINT message_media_pkey PRIMARY KEY (message_id, position),
    CONSTRAINT message_media_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages (message_id)
        ON DELETE CASCADE,
    CONSTRAINT message_media_media_id_fkey FOREIGN KEY (media_id) REFERENCES media (media_id),
    CONSTRAINT message_media_position_check CHECK (position BETWEEN 0 AND 9)
);
-- retention asks "does any album use this media?" before deleting it
CREATE INDEX message_media_media_id_idx ON message_media (media_id);

-- The rotation mode of a broadcast: seq (each round the next message to every group) or rnd.
ALTER TABLE campaigns ADD COLUMN rotation text NOT NULL DEFAULT 'seq';
ALTER TABLE campaigns ADD CONSTRAINT campaigns_rotation_check CHECK (rotation IN ('seq', 'rnd'));

-- The message an attempt posts, chosen when the round is planned (NULL: the round's message);
-- the next round reads it back so a group never gets the same message twice in a row.
ALTER TABLE attempts ADD COLUMN message_id bigint;
ALTER TABLE attempts ADD CONSTRAINT attempts_message_id_fkey FOREIGN KEY (message_id)
    REFERENCES messages (message_id);
-- retention asks "did any attempt post this message?" before deleting a version
CREATE INDEX attempts_message_id_idx ON attempts (message_id) WHERE message_id IS NOT NULL;
