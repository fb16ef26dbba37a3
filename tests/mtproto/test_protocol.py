"""The protocol layers of the sandbox's MTProto endpoint, checked against Telethon's client side."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import stat
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from telethon import TelegramClient, errors, functions, types
from telethon.crypto import AES, AuthKey
from telethon.crypto import rsa as telethon_rsa
from telethon.crypto.factorization import Factorization
from telethon.errors.common import AuthKeyNotFound
from telethon.network import authenticator
from telethon.network.connection import (
    ConnectionTcpAbridged,
    ConnectionTcpFull,
    ConnectionTcpIntermediate,
)
from telethon.network.mtprotostate import MTProtoState
from telethon.password import compute_check
from telethon.sessions import StringSession

from accounts.gateway import AccountRef
from accounts.telethon import TelethonGateway
from accounts.telethon.sandbox import SandboxClientFactory
from config.settings import SandboxSettings, Settings
from sandbox.mtproto import keys, session, srp, start_beside_sandbox
from sandbox.mtproto.crypto import ige_decrypt, ige_encrypt, nonce_key_data, sha256
from sandbox.mtproto.handshake import Handshake, HandshakeError, NewAuthKey
from tests.mtproto.support import MTSandbox
from tests.ports import free_port

LOGGERS: Any = defaultdict(lambda: logging.getLogger("telethon-under-test"))


def test_ige_matches_telethons_aes() -> None:
    key, iv, data = os.urandom(32), os.urandom(32), os.urandom(4096)
    encrypted = ige_encrypt(data, key, iv)
    assert encrypted == AES.encrypt_ige(data, key, iv)
    assert ige_decrypt(encrypted, key, iv) == data == AES.decrypt_ige(encrypted, key, iv)


def test_messages_interoperate_with_telethons_mtproto_state() -> None:
    record = session.AuthKeyRecord.from_key(NewAuthKey(os.urandom(256), server_salt=12345))
    client = MTProtoState(AuthKey(record.key), loggers=LOGGERS)
    client.salt = record.salt
    assert record.key_id == client.auth_key.key_id

    buffer = io.BytesIO()
    msg_id = client.write_data_as_message(buffer, bytes(functions.help.GetConfigRequest()), True)
    envelope = session.decrypt(record, client.encrypt_message_data(buffer.getvalue()))
    assert (envelope.salt, envelope.session_id, envelope.msg_id) == (record.salt, client.id, msg_id)
    [message] = session.open_messages(envelope)
    assert isinstance(message.obj, functions.help.GetConfigRequest) and message.content_related

    outgoing = session.Outgoing(client.id)
    items = [(bytes(types.Pong(msg_id=msg_id, ping_id=7)), True), (bytes(types.MsgsAck([msg_id])), False)]
    out_id, seq_no, body = outgoing.pack(items)
    received = client.decrypt_message_data(session.encrypt(record, client.id, out_id, seq_no, body))
    assert received.msg_id == out_id and received.msg_id % 2 == 1
    pong, ack = (inner.obj for inner in received.obj.messages)  # a container with both
    assert (pong.ping_id, ack.msg_ids) == (7, [msg_id])

    tampered = bytearray(client.encrypt_message_data(buffer.getvalue()))
    tampered[-1] ^= 1
    with pytest.raises(session.DecryptError):
        session.decrypt(record, bytes(tampered))


class _InProcessPlainSender:
    """Telethon's authenticator talks to the server's handshake over serialised objects, no socket."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.handshake = Handshake(private_key)
        self.new_key: NewAuthKey | None = None

    async def send(self, request: Any) -> Any:
        answer, new_key = self.handshake.handle(session.read_object(bytes(request)))
        self.new_key = new_key or self.new_key
        return session.read_object(bytes(answer))


async def test_telethons_key_exchange_ends_with_the_same_key_on_both_sides(rsa_key: rsa.RSAPrivateKey) -> None:
    telethon_rsa.add_key(keys.public_pem(rsa_key), old=False)
    for _ in range(3):  # 1 in 256 exchanges asks the client to retry (a key with a leading zero byte)
        sender = _InProcessPlainSender(rsa_key)
        try:
            auth_key, offset = await authenticator.do_authentication(sender)
        except (errors.SecurityError, AssertionError):
            continue
        assert sender.new_key is not None and auth_key.key == sender.new_key.key
        assert abs(offset) <= 1
        return
    pytest.fail("three key exchanges in a row failed")


def _rsa_pad(public: rsa.RSAPublicKey, data: bytes) -> bytes:
    """The client side of RSA_PAD, as official clients encrypt p_q_inner_data."""
    numbers = public.public_numbers()
    padded = data + os.urandom(192 - len(data))
    while True:
        temp_key = os.urandom(32)
        data_with_hash = padded[::-1] + sha256(temp_key, padded)
        aes_encrypted = ige_encrypt(data_with_hash, temp_key, bytes(32))
        block = bytes(a ^ b for a, b in zip(temp_key, sha256(aes_encrypted), strict=True)) + aes_encrypted
        if int.from_bytes(block, "big") < numbers.n:
            return pow(int.from_bytes(block, "big"), numbers.e, numbers.n).to_bytes(256, "big")


def test_the_handshake_accepts_rsa_pad_and_refuses_a_wrong_factorisation(rsa_key: rsa.RSAPrivateKey) -> None:
    handshake = Handshake(rsa_key)
    nonce = int.from_bytes(os.urandom(16), "little", signed=True)
    res_pq, _ = handshake.handle(functions.ReqPqMultiRequest(nonce=nonce))
    assert res_pq.server_public_key_fingerprints == [keys.fingerprint(rsa_key)]
    p, q = Factorization.factorize(int.from_bytes(res_pq.pq, "big"))
    p_bytes, q_bytes = telethon_rsa.get_byte_array(p), telethon_rsa.get_byte_array(q)
    new_nonce = int.from_bytes(os.urandom(32), "little", signed=True)
    inner = bytes(types.PQInnerDataDc(pq=res_pq.pq, p=p_bytes, q=q_bytes, nonce=nonce,
                                      server_nonce=res_pq.server_nonce, new_nonce=new_nonce, dc=2))
    encrypted = _rsa_pad(rsa_key.public_key(), inner)

    with pytest.raises(HandshakeError):
        Handshake(rsa_key).handle(functions.ReqDHParamsRequest(nonce, res_pq.server_nonce, p_bytes, q_bytes,
                                                               res_pq.server_public_key_fingerprints[0],
                                                               encrypted))
    with pytest.raises(HandshakeError):
        handshake.handle(functions.ReqDHParamsRequest(nonce, res_pq.server_nonce, q_bytes, p_bytes,
                                                      res_pq.server_public_key_fingerprints[0], encrypted))
    answer, _ = handshake.handle(functions.ReqDHParamsRequest(
        nonce, res_pq.server_nonce, p_bytes, q_bytes, res_pq.server_public_key_fingerprints[0], encrypted))

    assert isinstance(answer, types.ServerDHParamsOk)
    plain = ige_decrypt(answer.encrypted_answer, *nonce_key_data(res_pq.server_nonce, new_nonce))
    dh_inner = session.read_object(plain[20:])
    assert isinstance(dh_inner, types.ServerDHInnerData) and dh_inner.g == 3


def test_srp_accepts_telethons_proof_for_the_right_password_only() -> None:
    verifier = srp.make_verifier("s3cret")
    challenge = srp.new_challenge(verifier)
    info = srp.password_info(challenge)

    right = compute_check(info, "s3cret")
    wrong = compute_check(info, "S3cret")

    assert srp.check(challenge, right.srp_id, right.A, right.M1)
    assert not srp.check(challenge, wrong.srp_id, wrong.A, wrong.M1)
    assert not srp.check(challenge, right.srp_id + 1, right.A, right.M1)


def _raw_client(mt: MTSandbox, connection: Any = ConnectionTcpFull, session_string: str = "",
                **options: Any) -> TelegramClient:
    mt.factory()  # registers the sandbox's key
    client = TelegramClient(StringSession(session_string or None), 1, "sandbox", connection=connection,
                            connection_retries=1, retry_delay=0, **options)
    client.session.set_dc(2, "127.0.0.1", mt.server.port)
    return client


@pytest.mark.parametrize("connection", [ConnectionTcpFull, ConnectionTcpIntermediate, ConnectionTcpAbridged])
async def test_every_tcp_transport_connects_and_calls(mt: MTSandbox, connection: Any) -> None:
    client = _raw_client(mt, connection)
    await client.connect()
    try:
        config = await client(functions.help.GetConfigRequest())
        assert [(o.id, o.port) for o in config.dc_options] == [(2, mt.server.port)]
    finally:
        await client.disconnect()


async def test_pings_and_requests_sent_together(mt: MTSandbox) -> None:
    client = _raw_client(mt, receive_updates=True)  # no invokeWithoutUpdates wrapper: a bare ping
    await client.connect()
    try:
        pong = await client(functions.PingRequest(ping_id=42))
        assert pong.ping_id == 42
        # Requests issued together travel in one container and are answered separately.
        configs = await asyncio.gather(*(client(functions.help.GetConfigRequest()) for _ in range(5)))
        assert len({id(c) for c in configs}) == 5
        salts = await client(functions.GetFutureSaltsRequest(num=1))
        assert salts.salts and salts.salts[0].salt == client._sender._state.salt
    finally:
        await client.disconnect()


async def test_a_client_with_a_wrong_clock_is_corrected(mt: MTSandbox) -> None:
    first = _raw_client(mt)
    await first.connect()
    saved = first.session.save()
    await first.disconnect()
    client = _raw_client(mt, session_string=saved)
    client._sender._state.time_offset = -1000  # msg_ids 1000 s in the past: bad_msg_notification 16
    await client.connect()
    try:
        assert await client(functions.help.GetConfigRequest())
        assert abs(client._sender._state.time_offset) <= 1
    finally:
        await client.disconnect()


async def test_a_key_the_server_forgot_is_reported_as_unknown(mt: MTSandbox) -> None:
    first = _raw_client(mt)
    await first.connect()
    saved = first.session.save()
    await first.disconnect()
    mt.server.keys.clear()  # e.g. the sandbox restarted

    client = _raw_client(mt, session_string=saved)
    with pytest.raises(AuthKeyNotFound):
        await client.connect()
    with pytest.raises(AuthKeyNotFound):  # the client is disconnected for good, with that reason
        await client.disconnected


async def test_unsimulated_methods_answer_an_rpc_error(mt: MTSandbox) -> None:
    client = _raw_client(mt)
    await client.connect()
    try:
        with pytest.raises(errors.MethodInvalidError) as err:
            await client(functions.help.GetAppConfigRequest(hash=0))
        assert err.value.code == 400
        with pytest.raises(errors.AuthKeyUnregisteredError):
            await client(functions.messages.GetDialogsRequest(None, 0, types.InputPeerEmpty(), 10, 0))
    finally:
        await client.disconnect()


async def test_many_dialogs_come_in_gzipped_pages(mt: MTSandbox) -> None:
    groups = [{"id": 9000 + i, "title": f"Group number {i}", "kind": "supergroup"} for i in range(150)]
    mt.world.seed({"phone": "+15550002000", "first_name": "Many", "groups": groups})
    gateway = mt.gateway()
    account: AccountRef = await mt.login(gateway, "+15550002000")

    listed = await gateway.list_groups(account)

    assert sorted(g.peer_id for g in listed) == [g["id"] for g in groups]
    assert len(mt.world_calls("get_dialogs")) == 2  # 100 + 50
    dialogs = session.rpc_result(1, session.serialize(types.messages.Dialogs([], [], [], [])))
    assert session.maybe_gzip(b"\x00" * 4096).startswith(b"\xa1\xcf\x72\x30")  # gzip_packed
    assert len(dialogs) < 4096


async def test_the_key_file_is_kept_and_clients_read_its_public_half(
        mt: MTSandbox, tmp_path: Path) -> None:
    key_file = tmp_path / "sandbox" / "mtproto_rsa.pem"
    server = await start_beside_sandbox(mt.world, "127.0.0.1", 0, key_file)
    try:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert keys.fingerprint(keys.load_or_create(key_file)) == keys.fingerprint(server.private_key)
        factory = SandboxClientFactory.from_key_file("localhost", server.port, keys.public_path(key_file))
        gateway = TelethonGateway(Settings(), factory=factory)
        state = await gateway.send_code("login_1", "+15550001001")
        assert state.session and mt.world.codes("+15550001001")
        await gateway.close()
    finally:
        await server.close()

    configured = SandboxClientFactory.from_settings(
        Settings(data_dir=tmp_path, sandbox=SandboxSettings(host="127.0.0.1")))
    assert (configured.host, configured.port) == ("127.0.0.1", 8082)


async def test_the_second_data_centre_takes_any_free_port_when_the_next_one_is_taken(mt: MTSandbox) -> None:
    """Beside other processes (parallel test workers, other services) the port after the main one may
    be taken: data centre 4 then listens on a free port, listed by both endpoints for PHONE_MIGRATE."""
    main_port = free_port(span=2)  # a main port whose next port we then hold
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", main_port + 1))
        taken.listen()
        server = await start_beside_sandbox(mt.world, "127.0.0.1", main_port, None)
        try:
            [other] = [p for p in server.peers if p is not server]
            assert other.dc_id == 4 and other.port not in (0, main_port + 1)
            assert other.peers == server.peers
        finally:
            await server.close()
