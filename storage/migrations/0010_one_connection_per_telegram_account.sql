-- One Telegram account is connected by at most one bot user at a time (issue 11): two bot users who
-- connect the same account would double its send rate and share one session between processes.
-- Rows that already break the rule keep the oldest connection; the later ones are disconnected with
-- the reason 'account_taken' (their users connect again and are refused with a clear message).

UPDATE accounts a
SET status = 'disconnected', session_enc = NULL, disconnected_reason = 'account_taken', updated_at = now()
WHERE a.status = 'connected'
  AND EXISTS (SELECT 1 FROM accounts b
              WHERE b.tg_user_id = a.tg_user_id AND b.status = 'connected' AND b.account_id < a.account_id);

CREATE UNIQUE INDEX accounts_tg_user_id_connected_key ON accounts (tg_user_id) WHERE status = 'connected';
