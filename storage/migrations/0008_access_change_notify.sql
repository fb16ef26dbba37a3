-- The bot caches each user's access record and the access mode between updates (issue 14). Every
-- change that can alter an access decision is announced on the 'ab_access' channel at commit, by
-- whoever writes it (bot, admin API, scripts): the payload is the user id, or '*' for the mode.

CREATE FUNCTION ab_notify_user_access() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ab_access', OLD.user_id::text);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('ab_access', NEW.user_id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER users_access_notify_trg
    AFTER UPDATE OF banned, access_status, access_expires_at, access_requested_at, bot_blocked ON users
    FOR EACH ROW
    WHEN ((OLD.banned, OLD.access_status, OLD.access_expires_at, OLD.access_requested_at, OLD.bot_blocked)
          IS DISTINCT FROM
          (NEW.banned, NEW.access_status, NEW.access_expires_at, NEW.access_requested_at, NEW.bot_blocked))
    EXECUTE FUNCTION ab_notify_user_access();

CREATE TRIGGER users_access_delete_notify_trg
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION ab_notify_user_access();

CREATE FUNCTION ab_notify_settings_access() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ab_access', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER settings_access_notify_trg
    AFTER INSERT OR UPDATE OR DELETE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION ab_notify_settings_access();
