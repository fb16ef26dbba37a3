"""An MTProto endpoint for the sandbox, so the real Telethon adapter can run against the simulated world.

``start_mtproto(world, host, port, rsa_private_key)`` (``server``) serves it; ``keys`` holds the
sandbox's RSA key, which clients register with ``telethon.crypto.rsa.add_key``.
"""

from sandbox.mtproto.server import MTProtoServer, start_beside_sandbox, start_mtproto, start_mtproto_dcs

__all__ = ["MTProtoServer", "start_beside_sandbox", "start_mtproto", "start_mtproto_dcs"]
