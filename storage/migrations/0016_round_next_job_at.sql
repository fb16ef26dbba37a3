-- Issue 14: reconciliation costs what is overdue, not what is open. The engine writes, with each
-- job's last statement, when the round's next job is due (``next_job_at``); the reconciler reads
-- only open rounds whose job is overdue (NULL: due since the round was created), a slice a pass.

ALTER TABLE rounds ADD COLUMN next_job_at timestamptz;

CREATE INDEX rounds_job_due_idx ON rounds ((coalesce(next_job_at, created_at)), round_id)
    WHERE finished_at IS NULL;
