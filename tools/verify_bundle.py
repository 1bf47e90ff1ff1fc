#!/usr/bin/env python3
"""Check a court export bundle offline. Needs Python 3.9+ and the `cryptography` package, nothing
else: not the server, not a network.

    python3 verify_bundle.py BUNDLE.zip [--public-key BASE64]

It checks, and exits 0 only when all of it holds:
  1. the ZIP's every structural byte (headers, data descriptors, central directory, end records)
     is exactly what the bundle writer produces, and every member's CRC matches its data;
  2. the Ed25519 signature in manifest.sig over manifest.json, with the key given by
     --public-key (the force publishes it) or, if none is given, the key named in the manifest
     (then the check shows only that the bundle is unchanged since it was signed by that key,
     whose fingerprint is printed so it can be compared with the published one);
  3. every file against the manifest: present, same size, same SHA-256, nothing unlisted; each
     original clip's SHA-256 equal to the hash computed when the dock uploaded it;
  4. the custody extract: each event's hash is SHA-256(prev_hash + body), its sequence number is
     the one in its body, consecutive events link, the events are in order; the signed audit
     checkpoint, when included, verifies and agrees with any event it names.
Anything wrong is printed with the file it concerns, and the exit status is 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import sys
import zlib

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - a message for the person running it
    sys.exit("verify_bundle.py needs the 'cryptography' package: pip install cryptography")

LIMIT = 0xFFFFFFFF
FLAGS = 0x0808
EXTERNAL_ATTR = 0o100644 << 16
CHUNK = 1 << 20


class Problem(Exception):
    """Something in the bundle does not hold; the message names the file."""


# -- The ZIP layout, rebuilt byte for byte ----------------------------------------------------------


def _local_header(name, zip64, time, date):
    version = 45 if zip64 else 20
    extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
    sizes = LIMIT if zip64 else 0
    head = struct.pack("<IHHHHHIIIHH", 0x04034B50, version, FLAGS, 0, time, date, 0, sizes, sizes,
                       len(name), len(extra))  # fmt: skip
    return head + name + extra


def _descriptor(crc, size, zip64):
    if zip64:
        return struct.pack("<IIQQ", 0x08074B50, crc, size, size)
    return struct.pack("<IIII", 0x08074B50, crc, size, size)


def _central(name, crc, size, offset, time, date):
    zip64 = size >= LIMIT or offset >= LIMIT
    version = 45 if zip64 else 20
    if zip64:
        extra = struct.pack("<HHQQQ", 1, 24, size, size, offset)
        size32 = offset32 = LIMIT
    else:
        extra, size32, offset32 = b"", size, offset
    head = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | version, version, FLAGS, 0,
                       time, date, crc, size32, size32, len(name), len(extra), 0, 0, 0,
                       EXTERNAL_ATTR, offset32)  # fmt: skip
    return head + name + extra, zip64


def _end(count, cd_offset, cd_size):
    zip64 = count >= 0xFFFF or cd_offset >= LIMIT or cd_size >= LIMIT
    out = b""
    if zip64:
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, (3 << 8) | 45, 45, 0, 0, count, count,
                           cd_size, cd_offset)  # fmt: skip
        out += struct.pack("<IIQI", 0x07064B50, 0, cd_offset + cd_size, 1)
        return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, LIMIT, LIMIT, 0)
    return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset, 0)


def _read_at(f, offset, n):
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise Problem(f"the ZIP is cut short at byte {offset + len(data)}")
    return data


def read_directory(f, length):
    """The members (name, crc, size, offset) from the central directory, every byte checked."""
    if length < 22:
        raise Problem("not a bundle: too short to be a ZIP file")
    eocd = _read_at(f, length - 22, 22)
    sig, _, _, count16, _, size32, offset32, comment = struct.unpack("<IHHHHIIH", eocd)
    if sig != 0x06054B50 or comment:
        raise Problem("the ZIP's end of central directory record is damaged")
    if count16 == 0xFFFF or size32 == LIMIT or offset32 == LIMIT:
        if length < 22 + 20 + 56:
            raise Problem("the ZIP's end records are damaged")
        locator = _read_at(f, length - 42, 20)
        _, _, eocd64_offset, _ = struct.unpack("<IIQI", locator)
        record = _read_at(f, length - 98, 56)
        fields = struct.unpack("<IQHHIIQQQQ", record)
        count, cd_size, cd_offset = fields[6], fields[8], fields[9]
        if eocd64_offset != length - 98:
            raise Problem("the ZIP's ZIP64 end records are damaged")
    else:
        count, cd_size, cd_offset = count16, size32, offset32
    # Parse the directory, then rebuild it and the end records and compare every byte.
    directory = _read_at(f, cd_offset, cd_size) if cd_offset + cd_size <= length else b""
    if len(directory) != cd_size:
        raise Problem("the ZIP's central directory is damaged (size or position)")
    members, pos = [], 0
    first_time = None
    for _ in range(count):
        if pos + 46 > len(directory):
            raise Problem("the ZIP's central directory is damaged (too short)")
        fields = struct.unpack("<IHHHHHHIIIHHHHHII", directory[pos : pos + 46])
        time, date, crc, name_len, extra_len = (
            fields[5],
            fields[6],
            fields[7],
            fields[10],
            fields[11],
        )
        name = directory[pos + 46 : pos + 46 + name_len]
        size, offset = fields[9], fields[16]
        extra = directory[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        if extra_len == 28 and extra[:4] == struct.pack("<HH", 1, 24):
            size, _, offset = struct.unpack("<QQQ", extra[4:])
        label = name.decode("utf-8", "replace")
        first_time = first_time or (time, date)
        expected, _ = _central(name, crc, size, offset, *first_time)
        if directory[pos : pos + len(expected)] != expected:
            raise Problem(f"{label}: its central directory entry is damaged")
        members.append((name, crc, size, offset))
        pos += len(expected)
    if pos != len(directory):
        raise Problem("the ZIP's central directory holds bytes that belong to no file")
    tail = _read_at(f, cd_offset + cd_size, length - cd_offset - cd_size)
    if tail != _end(count, cd_offset, cd_size):
        raise Problem("the ZIP's end of central directory records are damaged")
    return members, first_time or (0, 0), cd_offset


def read_members(f, members, when, cd_offset):
    """Walk the members in file order, check headers, CRC and descriptors; return each one's
    SHA-256 and size, and the small files' contents (manifest, signature, custody, checkpoint)."""
    results = {}
    position = 0
    for name, crc, size, offset in members:
        label = name.decode("utf-8", "replace")
        if offset != position:
            raise Problem(f"{label}: not where the central directory says (bytes added or removed)")
        zip64 = size >= LIMIT or offset >= LIMIT
        header = _local_header(name, zip64, *when)
        if _read_at(f, offset, len(header)) != header:
            raise Problem(f"{label}: its local header is damaged")
        digest, running, kept = hashlib.sha256(), 0, []
        f.seek(offset + len(header))
        left = size
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise Problem(f"{label}: cut short")
            digest.update(chunk)
            running = zlib.crc32(chunk, running)
            if not label.startswith(("footage/", "derived/")):
                kept.append(chunk)
            left -= len(chunk)
        if running != crc:
            raise Problem(f"{label}: its content was altered (CRC-32 does not match)")
        descriptor = _descriptor(crc, size, zip64)
        if _read_at(f, offset + len(header) + size, len(descriptor)) != descriptor:
            raise Problem(f"{label}: its data descriptor is damaged")
        position = offset + len(header) + size + len(descriptor)
        results[label] = (digest.hexdigest(), size, b"".join(kept) if kept else b"")
    if position != cd_offset:
        raise Problem("the ZIP holds bytes between its last file and its central directory")
    return results


# -- Manifest, signature, custody ----------------------------------------------------------------


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def key_id(raw):
    return hashlib.sha256(raw).hexdigest()[:16]


def check_signature(files, pinned_key):
    if "manifest.json" not in files or "manifest.sig" not in files:
        raise Problem("manifest.json or manifest.sig is missing")
    manifest_bytes = files["manifest.json"][2]
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise Problem("manifest.json: not valid JSON") from None
    try:
        signature = base64.b64decode(files["manifest.sig"][2].strip(), validate=True)
    except ValueError:
        raise Problem("manifest.sig: not a base64 signature") from None
    embedded = manifest.get("signing_key", {}).get("public_key", "")
    raw = base64.b64decode(pinned_key or embedded)
    if pinned_key and embedded and base64.b64decode(embedded) != raw:
        raise Problem("manifest.json: signed by a different key from the one given")
    try:
        public = Ed25519PublicKey.from_public_bytes(raw)
        public.verify(signature, manifest_bytes)
    except (InvalidSignature, ValueError):
        raise Problem("manifest.sig: the signature over manifest.json does not verify") from None
    return manifest, public, raw


def check_files(files, manifest):
    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
    for path, entry in listed.items():
        if path not in files:
            raise Problem(f"{path}: listed in the manifest but missing")
        sha, size, _ = files[path]
        if size != entry["size"] or sha != entry["sha256"]:
            raise Problem(f"{path}: its SHA-256 differs from the manifest")
        original = entry.get("recording", {}).get("ingest_sha256")
        if entry.get("role") == "original" and original != sha:
            raise Problem(f"{path}: differs from the clip the camera dock uploaded")
    for path in files:
        if path not in listed and path not in ("manifest.json", "manifest.sig"):
            raise Problem(f"{path}: in the bundle but not in the manifest")


def check_custody(files, manifest, public):
    path = manifest.get("custody_extract", "custody.jsonl")
    if path not in files:
        raise Problem(f"{path}: the custody extract is missing")
    previous = None
    hashes = {}
    for number, line in enumerate(files[path][2].decode("utf-8").splitlines(), 1):
        try:
            event = json.loads(line)
            seq, prev_hash, body, digest = (
                event["seq"],
                event["prev_hash"],
                event["body"],
                event["hash"],
            )
            body_seq = json.loads(body)["seq"]
        except (ValueError, KeyError, TypeError):
            raise Problem(f"{path}: line {number} is not a custody event") from None
        if hashlib.sha256((prev_hash + body).encode("ascii")).hexdigest() != digest:
            raise Problem(f"{path}: event {seq} (line {number}) does not match its hash")
        if body_seq != seq:
            raise Problem(f"{path}: event {seq} (line {number}) carries number {body_seq}")
        if previous is not None:
            if seq <= previous[0]:
                raise Problem(f"{path}: event {seq} (line {number}) is out of order")
            if seq == previous[0] + 1 and prev_hash != previous[1]:
                raise Problem(
                    f"{path}: event {seq} (line {number}) does not link to event {seq - 1}"
                )
        previous = (seq, digest)
        hashes[seq] = digest
    checkpoint_path = manifest.get("checkpoint")
    if checkpoint_path:
        if checkpoint_path not in files:
            raise Problem(f"{checkpoint_path}: missing")
        try:
            document = json.loads(files[checkpoint_path][2])
            statement = document["statement"]
            public.verify(base64.b64decode(document["signature"]), canonical(statement).encode())
        except InvalidSignature:
            raise Problem(f"{checkpoint_path}: its signature does not verify") from None
        except (ValueError, KeyError, TypeError):
            raise Problem(f"{checkpoint_path}: unreadable") from None
        seq = statement["seq"]
        if seq in hashes and hashes[seq] != statement["hash"]:
            raise Problem(f"{path}: event {seq} differs from the signed audit checkpoint")
        if previous is not None and previous[0] > seq:
            return len(hashes), f"events after {seq} are not yet covered by a signed checkpoint"
    return len(hashes), ""


def verify(path, pinned_key=None, out=sys.stdout):
    with open(path, "rb") as f:
        f.seek(0, 2)
        length = f.tell()
        members, when, cd_offset = read_directory(f, length)
        files = read_members(f, members, when, cd_offset)
    manifest, public, raw = check_signature(files, pinned_key)
    check_files(files, manifest)
    events, note = check_custody(files, manifest, public)
    originals = sum(1 for e in manifest.get("files", []) if e.get("role") == "original")
    trust = "the key given" if pinned_key else "the key named in the manifest (not pinned)"
    print(f"bundle {manifest.get('bundle_id', '?')}: {len(files)} files, {originals} original "
          f"clips, {events} custody events", file=out)  # fmt: skip
    print(f"signature: valid, by {trust}, key id {key_id(raw)}", file=out)
    if note:
        print(f"note: {note}", file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verify a court export bundle offline.")
    parser.add_argument("bundle")
    parser.add_argument("--public-key", help="the force's published Ed25519 public key, base64")
    args = parser.parse_args(argv)
    try:
        verify(args.bundle, args.public_key)
    except Problem as problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"FAILED: cannot read {args.bundle}: {exc}", file=sys.stderr)
        return 1
    except (struct.error, ValueError, KeyError, TypeError, UnicodeError) as exc:
        print(f"FAILED: the bundle is damaged and cannot be read ({exc})", file=sys.stderr)
        return 1
    print("OK: every check holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
