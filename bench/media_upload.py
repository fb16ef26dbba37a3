"""Bytes uploaded and wall time for one round of a 15 MB video to 50 groups.

The real Telethon adapter (``TelethonGateway``) sends over the sandbox's MTProto endpoint, which
counts every uploaded part per account in its event log. Two rounds on fresh accounts:
- baseline (today's path before media reuse): the media carries no content key, so every send
  uploads the bytes again (``upload.saveBigFilePart`` x parts, then ``messages.sendMedia``);
- reuse: the first send uploads, the other 49 send the document by id + file reference.
Sends go one after another with no pacing gap (the engine's gap is the same for both and would
only add a constant); world rate limits are off.

Every baseline send uploads the same bytes, and an upload here runs at ~1 MB/s (Telethon's pure
Python AES without cryptg), so a full baseline round of 50 x 15 MB takes over 10 minutes: by
default it sends to ``--baseline-groups`` (5) groups and scales bytes and time to the round
linearly, and says so; ``--baseline-groups 50`` measures all of it.

``python -m bench.media_upload [--size-mb 15] [--groups 50] [--baseline-groups 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time

from accounts.gateway import AccountRef, GroupRef, Media, OutgoingMessage
from accounts.telethon import TelethonGateway
from accounts.telethon.sandbox import SandboxClientFactory
from config.settings import SandboxSettings, Settings
from sandbox.events import EventLog
from sandbox.mtproto import keys, start_mtproto
from sandbox.world import World

TARGET_RATIO = 1.1


def _world(groups: int) -> dict[str, object]:
    accounts = []
    for index, phone in enumerate(("+15550009001", "+15550009002")):
        accounts.append({"phone": phone, "first_name": f"Bench{index}", "groups": [
            {"id": 900_000 + index * 1000 + g, "title": f"Group {g}", "kind": "supergroup"}
            for g in range(groups)]})
    return {"accounts": accounts}


async def _login(world: World, gateway: TelethonGateway, phone: str) -> AccountRef:
    state = await gateway.send_code(f"login_{phone[-4:]}", phone)
    done = await gateway.sign_in(state, str(world.codes(phone)[0]["code"]))
    return AccountRef(account_id=int(phone[-4:]), session=done.session)


async def _round(world: World, gateway: TelethonGateway, phone: str, media: Media,
                 limit: int) -> tuple[int, float, int]:
    account = await _login(world, gateway, phone)
    groups = [g for g in await gateway.list_groups(account) if g.can_send][:limit]
    before = world.uploaded_bytes(phone)
    started = time.perf_counter()
    for group in groups:
        await gateway.send_message(account, GroupRef(group.peer_id, group.access_hash, group.kind),
                                   OutgoingMessage("New menu", [], media))
    elapsed = time.perf_counter() - started
    return world.uploaded_bytes(phone) - before, elapsed, len(groups)


async def run(size_mb: float, groups: int, baseline_groups: int) -> bool:
    rsa_key = keys.generate()
    world = World(SandboxSettings(rate_limits=False), EventLog(limit=2_000_000))
    world.seed(_world(groups))
    server = await start_mtproto(world, "127.0.0.1", 0, rsa_key)
    factory = SandboxClientFactory("127.0.0.1", server.port, keys.public_pem(rsa_key), timeout=120)
    data = b"\x00\x00\x00\x18ftypmp42" + os.urandom(int(size_mb * 1024 * 1024) - 12)
    thumb = b"\xff\xd8\xff\xe0" + os.urandom(6 * 1024)
    video = Media("video", data, "menu.mp4", "video/mp4", width=1280, height=720, duration=42.0, thumb=thumb,
                  key=hashlib.sha256(data).hexdigest())
    try:
        old_gateway = TelethonGateway(Settings(), factory=factory)
        new_gateway = TelethonGateway(Settings(), factory=factory)
        try:
            # no content key = no reuse: every send uploads, as the adapter did before
            measured_bytes, measured_time, measured = await _round(
                world, old_gateway, "+15550009001", Media(**{**video.__dict__, "key": ""}), baseline_groups)
            new_bytes, new_time, sent = await _round(world, new_gateway, "+15550009002", video, groups)
        finally:
            await old_gateway.close()
            await new_gateway.close()
    finally:
        await server.close()
    size = len(data)
    ratio = new_bytes / size
    scale = sent / measured
    old_bytes, old_time = measured_bytes * scale, measured_time * scale
    how = "measured" if measured == sent else f"{measured} sends measured, scaled x{scale:g}"
    print(f"workload: one round of a {size / 1e6:.1f} MB video (+{len(thumb) // 1024} KB thumbnail) to "
          f"{sent} groups, Telethon adapter over the sandbox MTProto endpoint, no pacing gap")
    print(f"baseline (upload every send): {old_bytes / 1e6:8.1f} MB uploaded = {old_bytes / size:5.2f}x "
          f"the file, round {old_time:6.2f} s ({how})")
    print(f"reuse (id + file reference):  {new_bytes / 1e6:8.1f} MB uploaded = {ratio:5.2f}x the file, "
          f"round {new_time:6.2f} s")
    print(f"bytes reuse/baseline = {new_bytes / old_bytes:.3f}; "
          f"wall time reuse/baseline = {new_time / old_time:.3f}")
    met = ratio <= TARGET_RATIO
    print(f"target <= {TARGET_RATIO}x the file size: {'met' if met else 'MISSED'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=15.0)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--baseline-groups", type=int, default=5)
    args = parser.parse_args()
    baseline = max(1, min(args.baseline_groups, args.groups))
    return 0 if asyncio.run(run(args.size_mb, args.groups, baseline)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
