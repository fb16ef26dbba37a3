-- "Is this campaign effectively running?" asked in one place. The global pause (settings key
-- global_pause), a stopped campaign, a round planned before the campaign's last start (a round of a
-- stopped run) and a pause by Telegram each keep a round from sending; every statement that asks
-- (the due scan, a job's first statement, each claim, the reason a claim failed, the admin views)
-- calls these functions instead of repeating the conditions.

CREATE FUNCTION global_pause() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.value = 'true'::jsonb FROM settings s WHERE s.key = 'global_pause'), false)
$$;

-- NULL: may send now; otherwise why not: 'stopped' | 'global_pause' | 'paused'.
-- planned_at is the round's planned time (NULL when no round is asked about).
CREATE FUNCTION campaign_blocker(status text, started_at timestamptz, paused_until timestamptz,
                                 planned_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN status <> 'running' OR (started_at IS NOT NULL AND planned_at < started_at) THEN 'stopped'
        WHEN global_pause() THEN 'global_pause'
        WHEN paused_until IS NOT NULL AND paused_until > now() THEN 'paused'
    END
$$;
