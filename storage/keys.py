"""Every Redis key the project uses, in one module (arq's ``constants.py`` habit).

Redis may be flushed at any time: nothing here is the source of truth. Losing
these keys loses only speed (queue entries are rebuilt by reconciliation,
leases expire, FSM state is re-asked).
"""

from __future__ import annotations

PREFIX = "ab:"

# queue (storage/queue.py)
QUEUE_STREAM = PREFIX + "q:{name}:stream"  # ready jobs (stream + consumer group)
QUEUE_GROUP = "workers"  # consumer group name on the stream
QUEUE_DELAYED = PREFIX + "q:{name}:delayed"  # zset job_id -> due time (ms)
QUEUE_PAYLOADS = PREFIX + "q:{name}:payloads"  # hash job_id -> payload of delayed jobs
QUEUE_DEDUPE = PREFIX + "q:{name}:jobs"  # hash job_id -> stream entry id (ready, running) or "d" (delayed)

# leases and locks (storage/lease.py)
LEASE = PREFIX + "lease:{name}"  # value = fencing token
FENCE_COUNTER = PREFIX + "fence:{name}"  # token source: INCR, raised to the server clock (us)
# lease name of a broadcast's lock (U8: a broadcast belongs to an account row, so one user's accounts
# run their batches side by side); the "user" kind stays the metric label (storage.lease.lease_kind).
# Build it with ``storage.user_lock.UserLock.name`` only (an account id of None is spelt "none").
USER_LOCK = "user:{user_id}:account:{account_id}"
# lease name of the per-Telegram-account lock: whoever talks to Telegram with the account's session
# (a worker's batch, a group import) holds it, keyed by the account's Telegram user id (issue 11)
ACCOUNT_LOCK = "tg-account:{tg_user_id}"
SCHEDULER_LEADER = "scheduler-leader"  # lease name of the scheduler leader
POLLING_LEADER = "polling-leader"  # lease name of the bot's getUpdates consumer

# pacing (worker), keyed by the Telegram account (its user id), never by a database row: two rows
# (two bot users over time) for one Telegram account share one pace
ACCOUNT_NEXT_SEND = PREFIX + "pace:tg:{tg_user_id}"  # earliest next send (ms)
# flood/slow-mode hints of the account's groups: hash group id -> not before (ms); one key per account,
# so a job reads them with the account's other pacing (storage/job_locks.py) before it knows its groups
ACCOUNT_GROUP_HINTS = PREFIX + "pace:tg:{tg_user_id}:groups"

# runtime
WORKER_HEARTBEAT = PREFIX + "workers"  # zset consumer -> last heartbeat (ms)
BOT_UPDATE_SEEN = PREFIX + "bot:update:{update_id}"  # update id dedupe (takeover, webhook retry)
THROTTLE = PREFIX + "throttle:{user_id}:{second}"  # per-user update count in one second of the bot's clock
FSM_PREFIX = PREFIX + "fsm"  # aiogram RedisStorage key prefix

# account safety limiter (storage/send_limiter.py), keyed by the account's Telegram user id
LIMIT_LOG = PREFIX + "limit:{account}:log"  # zset of send times (ms) within the longest window
LIMIT_STATE = PREFIX + "limit:{account}:state"  # hash: next, rest, rest_after, streak, last, widen, seq

# admin API (roles/app/auth.py, storage/auth_failures.py)
ADMIN_AUTH_FAILURES = PREFIX + "api:authfail:{address}"  # failed bearer tokens from one client address
