-- Access expiry is handled once per grant; indexes for the services' lookups.

-- set when a grant's expiry has stopped the broadcast and told the user; cleared by a new grant
ALTER TABLE users ADD COLUMN access_expiry_handled_at timestamptz;
CREATE INDEX users_access_expires_at_idx ON users (access_expires_at)
    WHERE access_status = 'granted' AND access_expiry_handled_at IS NULL;
-- the admin's queue of access requests, oldest first
CREATE INDEX users_access_requested_at_idx ON users (access_requested_at) WHERE access_status = 'pending';
-- the admin's user list, newest first
CREATE INDEX users_created_at_idx ON users (created_at DESC, user_id DESC);
-- a user's group pages ordered by (title, id)
CREATE INDEX groups_user_id_title_idx ON groups (user_id, title, group_id);
-- the last round of a user, and the sends of the last hour (admin runtime)
CREATE INDEX rounds_user_id_round_id_idx ON rounds (user_id, round_id DESC);
