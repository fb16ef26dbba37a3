"""An abandoned login's FSM state and data (the encrypted attempt token) expire with LOGIN_TTL."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from roles.bot.role import FSM_TTL, SharedRedisStorage, fsm_key, fsm_key_builder
from roles.bot.states import Input

pytestmark = pytest.mark.integration

LOGIN_TTL = 600.0


@pytest.fixture
def storage(redis_client: aioredis.Redis) -> SharedRedisStorage:
    return SharedRedisStorage(redis_client, key_builder=fsm_key_builder(), state_ttl=FSM_TTL, data_ttl=FSM_TTL,
                              login_ttl=LOGIN_TTL)


async def ttls(redis_client: aioredis.Redis, storage: SharedRedisStorage, user_id: int) -> tuple[int, int]:
    key = fsm_key(1, user_id)
    return (await redis_client.ttl(storage.key_builder.build(key, "state")),
            await redis_client.ttl(storage.key_builder.build(key, "data")))


@pytest.mark.parametrize("state", [Input.login_phone, Input.login_code, Input.login_password])
async def test_login_state_and_data_expire_with_login_ttl(storage, redis_client, state) -> None:
    key = fsm_key(1, 42)
    await storage.set_data(key, {"typed": "1"})  # data written before the state (update_data order varies)
    await storage.set_state(key, state)
    await storage.update_data(key, {"login": "encrypted-attempt-token"})
    state_ttl, data_ttl = await ttls(redis_client, storage, 42)
    assert 0 < state_ttl <= LOGIN_TTL and 0 < data_ttl <= LOGIN_TTL
    assert await storage.get_data(key) == {"typed": "1", "login": "encrypted-attempt-token"}


async def test_other_input_states_keep_the_long_ttl(storage, redis_client) -> None:
    key = fsm_key(1, 43)
    await storage.set_state(key, Input.login_code)
    await storage.set_data(key, {"login": "x"})
    await storage.set_state(key, Input.msg_wait)  # the login finished; composing a message may take long
    await storage.set_data(key, {"draft": "y"})
    state_ttl, data_ttl = await ttls(redis_client, storage, 43)
    assert state_ttl > LOGIN_TTL and data_ttl > LOGIN_TTL
