-- U10 (issue 13): the user's time zone (per person, on users) and the schedule window (per
-- broadcast, on campaigns). A window is active hours in minutes after local midnight (window_end
-- <= window_start: across midnight; 1440: until midnight) on the weekdays of the bit mask
-- window_days (bit 0 = Monday). No window: window_start IS NULL. The scheduler needs no new index:
-- next_run_at already holds the next due instant moved to the window's opening.

ALTER TABLE users ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';

ALTER TABLE campaigns ADD COLUMN window_start smallint;
ALTER TABLE campaigns ADD COLUMN window_end smallint;
ALTER TABLE campaigns ADD COLUMN window_days smallint NOT NULL DEFAULT 127;

ALTER TABLE users ADD CONSTRAINT users_timezone_len_ck CHECK (length(timezone) BETWEEN 1 AND 64);
ALTER TABLE campaigns ADD CONSTRAINT campaigns_window_ck CHECK (
    (window_start IS NULL AND window_end IS NULL)
    OR (window_start BETWEEN 0 AND 1439 AND window_end BETWEEN 1 AND 1440 AND window_start <> window_end)
);
ALTER TABLE campaigns ADD CONSTRAINT campaigns_window_days_ck CHECK (window_days BETWEEN 1 AND 127);

-- the bot caches the user's record between updates (0008): a new time zone must reach every replica
CREATE TRIGGER users_timezone_notify_trg
    AFTER UPDATE OF timezone ON users
    FOR EACH ROW
    WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION ab_notify_user_access();
