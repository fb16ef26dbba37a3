-- Account safety (issue 17): an admin's per-user caps on posts per sliding minute, hour and day.
-- NULL keeps the global value (settings key 'send_caps', else the SEND_LIMIT_* settings); 0 means no cap.

CREATE TABLE send_caps (
    user_id    bigint      NOT NULL,
    minute     integer,
    hour       integer,
    day        integer,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT send_caps_pkey PRIMARY KEY (user_id),
    CONSTRAINT send_caps_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE,
    CONSTRAINT send_caps_values_check CHECK (coalesce(minute, 0) >= 0 AND coalesce(hour, 0) >= 0
                                             AND coalesce(day, 0) >= 0)
);
