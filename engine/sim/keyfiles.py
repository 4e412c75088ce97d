"""Portal-format key files: generate them (`engine keygen`) and read their public half (`engine sim`).

Uses `cryptography`. The private key is written once to a 0600 file and never printed or logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from engine.errors import KeyFormatError


def generate_key_file(key_type: str, out: Path) -> str:
    """Write a new key in the portal's JSON (`name`, `privateKey`) to `out` (mode 0600); return its name."""
    if key_type == "es256":
        private = ec.generate_private_key(ec.SECP256R1())
        secret = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        name = f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"
    elif key_type == "ed25519":
        ed_private = ed25519.Ed25519PrivateKey.generate()
        seed = ed_private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = ed_private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        secret = base64.b64encode(seed + public).decode()  # the portal's form: seed ‖ public key
        name = str(uuid.uuid4())
    else:
        raise KeyFormatError("key type must be es256 or ed25519")
    payload = json.dumps({"name": name, "privateKey": secret}, indent=2) + "\n"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(payload)
    return name


def public_key_from_file(path: Path) -> tuple[str, str]:
    """(key name, SubjectPublicKeyInfo PEM) from a portal key file, whatever form its private key is in."""
    try:
        document = json.loads(path.read_text())
        name = document.get("name") or document.get("id")
        secret = document["privateKey"]
    except (OSError, ValueError, KeyError, AttributeError):
        raise KeyFormatError(f"{path}: not a key file with name/id and privateKey") from None
    if not isinstance(name, str) or not isinstance(secret, str):
        raise KeyFormatError(f"{path}: name and privateKey must be strings")
    secret = secret.replace("\\n", "\n").strip()
    public: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    if secret.startswith("-----BEGIN"):
        try:
            private = serialization.load_pem_private_key(secret.encode(), password=None)
        except (ValueError, TypeError):
            raise KeyFormatError(f"{path}: privateKey is not a readable PEM key") from None
        if isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            public = private.public_key()
        else:
            raise KeyFormatError(f"{path}: privateKey must be P-256 or Ed25519")
    else:
        try:
            raw = base64.b64decode("".join(secret.split()), validate=True)
        except (binascii.Error, ValueError):
            raise KeyFormatError(f"{path}: privateKey is neither PEM nor base64") from None
        if len(raw) not in (32, 64):
            raise KeyFormatError(f"{path}: an Ed25519 privateKey decodes to 32 or 64 bytes")
        public = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32]).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return name, pem.decode()
