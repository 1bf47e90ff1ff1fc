#!/usr/bin/env python3
"""Check a court export bundle offline, and say in plain words what it holds. Needs Python 3.9+
and the `cryptography` package, nothing else: not the server, not a network.

    python3 verify_bundle.py BUNDLE.zip --public-key KEY [--expect-case REF] [--html [PATH]]
    python3 verify_bundle.py --consistency PROOF.json --public-key KEY

KEY is the force's published public key (base64). Without it the bundle can still be shown to be
whole and unchanged since it was signed, but not who signed it, and the report says so.

It checks, and the verdict is "passed" only when all of it holds:
  1. the ZIP: no file name twice, and every structural byte (headers, data descriptors, central
     directory, end records) exactly what the bundle writer produces for the files, in the order
     and with the time the signed manifest gives; every check of a field comes before its use;
  2. the Ed25519 signature in manifest.sig over manifest.json;
  3. every file against the manifest: present, in its place, same size and SHA-256, nothing else;
  4. the custody extract: each event's hash is SHA-256(prev_hash + body) and its number the one in
     its body; each carries an inclusion proof (RFC 9162) to the signed tree head of the force's
     whole audit log in checkpoint.json, so each stands at its place in that log; the head extends
     the one published before it (consistency.json), when the bundle has one;
  5. each original clip against the event that recorded its arrival ("recording.ingested"): the
     SHA-256 and size the server computed when the camera dock uploaded it;
  6. with --expect-case, that the bundle was made for that crime reference.
The report names the case, the recipient, the purpose, who made the bundle and when, and each clip
with its officer, camera, times, fingerprint and every event on it. --html writes the same report
as a web page beside the bundle (or at PATH).

Exit status: 0 every check holds; 1 the bundle fails (do not rely on it); 2 the command itself was
wrong (a missing file, a malformed key, bad arguments).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import html
import json
import os
import re
import struct
import sys
import zlib
from datetime import datetime

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - a message for the person running it
    sys.exit("verify_bundle.py needs the 'cryptography' package: pip install cryptography")

BUNDLE_FORMAT = "bwv-export/2"
TREE_HEAD_FORMAT = "bwv-audit-tree-head/1"
CONSISTENCY_FORMAT = "bwv-audit-consistency/1"
LIMIT = 0xFFFFFFFF
FLAGS = 0x0808
EXTERNAL_ATTR = 0o100644 << 16
CHUNK = 1 << 20
MAX_SMALL_FILE = 64 << 20  # manifest, custody extract, heads, statement: read into memory
MAX_SIGNATURE = 1024
MAX_NAME = 255
MAX_PROOF = 64
WHAT_TO_DO = "Do not rely on this copy; ask the sender for a new one."
HEX64 = re.compile(r"[0-9a-f]{64}\Z")

ACTIONS = {
    "recording.ingested": "arrived from the camera dock",
    "recording.viewed": "viewed",
    "recording.flagged": "flagged",
    "recording.unflagged": "flag lifted",
    "recording.bookmarked": "bookmarked",
    "recording.redacted": "redacted copy made",
    "recording.exported": "chosen for export",
    "recording.disclosed": "handed over",
    "recording.shared": "shared by link",
    "recording.object_legal_hold": "storage legal hold changed",
    "recording.attached_to_request": "attached to a public access request",
    "case.created": "case opened",
    "case.recording_added": "added to the case",
    "case.recording_removed": "removed from the case",
    "hold.placed": "retention hold placed",
    "hold.lifted": "retention hold lifted",
}


class Problem(Exception):
    """Something in the bundle does not hold. `plain` says it for anyone; `member` names the
    file it concerns; `detail` is for technical staff."""

    def __init__(self, plain, member=None, detail=""):
        super().__init__(plain)
        self.plain, self.member, self.detail = plain, member, detail


class UsageError(Exception):
    """The command was wrong: exit status 2, nothing about the bundle is claimed."""


def label(value, limit=120):
    """Text from the bundle, made safe to print: control and invisible characters escaped,
    length bounded."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    value = str(value)
    out = "".join(
        ch if ch.isprintable() else (f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        for ch in value
    )
    return out if len(out) <= limit else out[:limit] + "..."


# -- RFC 9162 proofs -------------------------------------------------------------------------------


def _node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 2.1.3.2: the leaf stands at `index` in the tree of `size` leaves with `root`."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old, new, proof, old_root, new_root):
    """RFC 9162 2.1.4.2: the tree of `new` leaves extends the one of `old` leaves."""
    if old == 0:
        return not proof
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


# -- The ZIP layout, rebuilt byte for byte ----------------------------------------------------------


def dos_time(when):
    time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    return time, date


def _local_header(name, zip64, time, date):
    version = 45 if zip64 else 20
    extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
    sizes = LIMIT if zip64 else 0
    head = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        version,
        FLAGS,
        0,
        time,
        date,
        0,
        sizes,
        sizes,
        len(name),
        len(extra),
    )
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
    head = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        (3 << 8) | version,
        version,
        FLAGS,
        0,
        time,
        date,
        crc,
        size32,
        size32,
        len(name),
        len(extra),
        0,
        0,
        0,
        EXTERNAL_ATTR,
        offset32,
    )
    return head + name + extra


def _end(count, cd_offset, cd_size):
    zip64 = count >= 0xFFFF or cd_offset >= LIMIT or cd_size >= LIMIT
    out = b""
    if zip64:
        out += struct.pack(
            "<IQHHIIQQQQ",
            0x06064B50,
            44,
            (3 << 8) | 45,
            45,
            0,
            0,
            count,
            count,
            cd_size,
            cd_offset,
        )
        out += struct.pack("<IIQI", 0x07064B50, 0, cd_offset + cd_size, 1)
        return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, LIMIT, LIMIT, 0)
    return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset, 0)


DAMAGED = "The bundle file is damaged or was altered: it is not laid out as the system makes it."


def _read_at(f, offset, n):
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise Problem(DAMAGED, detail=f"the file ends at byte {offset + len(data)}, too early")
    return data


class Entry:
    __slots__ = ("name", "crc", "size", "offset", "time", "date")

    def __init__(self, name, crc, size, offset, time, date):
        self.name, self.crc, self.size, self.offset = name, crc, size, offset
        self.time, self.date = time, date


def read_directory(f, length):
    """The entries of the central directory, every field bounded before it is used, and where
    the directory starts and ends."""
    if length < 22:
        raise Problem("This file is too short to be a bundle.", detail=f"{length} bytes")
    eocd = _read_at(f, length - 22, 22)
    sig, disk, cd_disk, count_disk, count16, size32, offset32, comment = struct.unpack(
        "<IHHHHIIH", eocd
    )
    if sig != 0x06054B50 or comment or disk or cd_disk or count_disk != count16:
        raise Problem(DAMAGED, detail="no end of central directory record at the end of the file")
    end_start = length - 22
    if count16 == 0xFFFF or size32 == LIMIT or offset32 == LIMIT:
        if length < 98:
            raise Problem(DAMAGED, detail="ZIP64 end records missing")
        fields = struct.unpack("<IQHHIIQQQQ", _read_at(f, length - 98, 56))
        lsig, ldisk, eocd64_offset, disks = struct.unpack("<IIQI", _read_at(f, length - 42, 20))
        if (
            fields[0] != 0x06064B50
            or fields[1] != 44
            or fields[4]
            or fields[5]
            or fields[6] != fields[7]
            or lsig != 0x07064B50
            or ldisk
            or disks != 1
            or eocd64_offset != length - 98
        ):
            raise Problem(DAMAGED, detail="ZIP64 end records damaged")
        count, cd_size, cd_offset = fields[7], fields[8], fields[9]
        end_start = length - 98
    else:
        count, cd_size, cd_offset = count16, size32, offset32
    if cd_offset + cd_size != end_start:
        raise Problem(
            "The bundle holds bytes that belong to none of its files (added, removed or "
            "moved after it was made).",
            detail=f"central directory at {cd_offset}+{cd_size}, end records at {end_start}",
        )
    if count > cd_size // 46 or count < 2:
        raise Problem(DAMAGED, detail=f"{count} entries cannot fit a directory of {cd_size} bytes")
    directory = _read_at(f, cd_offset, cd_size)
    entries, pos = [], 0
    for number in range(1, count + 1):
        if pos + 46 > cd_size:
            raise Problem(DAMAGED, detail=f"central directory entry {number} cut short")
        fields = struct.unpack("<IHHHHHHIIIHHHHHII", directory[pos : pos + 46])
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        end = pos + 46 + name_len + extra_len + comment_len
        if fields[0] != 0x02014B50 or end > cd_size or name_len > MAX_NAME:
            raise Problem(DAMAGED, detail=f"central directory entry {number} damaged")
        name = directory[pos + 46 : pos + 46 + name_len]
        extra = directory[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        size, offset = fields[9], fields[16]
        if extra_len:
            if extra_len != 28 or extra[:4] != struct.pack("<HH", 1, 24):
                raise Problem(DAMAGED, detail=f"central directory entry {number}: unknown extra")
            size, _, offset = struct.unpack("<QQQ", extra[4:])
        if offset >= cd_offset or size > cd_offset:
            raise Problem(DAMAGED, detail=f"central directory entry {number} points outside")
        entries.append(Entry(name, fields[7], size, offset, fields[5], fields[6]))
        pos = end
    if pos != cd_size:
        raise Problem(DAMAGED, detail="the central directory holds bytes that belong to no file")
    seen = set()
    for entry in entries:
        text = _check_name(entry.name)
        if text in seen:
            raise Problem(
                f"The bundle holds two files named {label(text)}: one of them was added after "
                "the bundle was made, and a program opening it could show either.",
                member=text,
                detail="repeated name in the central directory",
            )
        seen.add(text)
    return entries, cd_offset, cd_size, directory


def _check_name(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(f"The bundle holds a file with an unreadable name ({label(raw)}).") from None
    parts = text.split("/")
    if (
        not text
        or not text.isprintable()
        or "\\" in text
        or text.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise Problem(f"The bundle holds a file with a name that is not allowed ({label(text)}).")
    return text


def read_member_data(f, entry, cd_offset, limit):
    """The data of a small member found through its directory entry (before the layout is known
    from the manifest), its local header checked against the entry."""
    name = entry.name.decode("utf-8")
    zip64 = entry.size >= LIMIT or entry.offset >= LIMIT
    header = _local_header(entry.name, zip64, entry.time, entry.date)
    if entry.size > limit or entry.offset + len(header) + entry.size > cd_offset:
        raise Problem(
            f"The file {label(name)} inside the bundle is damaged.",
            member=name,
            detail="its size or position is impossible",
        )
    if _read_at(f, entry.offset, len(header)) != header:
        raise Problem(
            f"The file {label(name)} inside the bundle is damaged.",
            member=name,
            detail="its local header does not match its directory entry",
        )
    return _read_at(f, entry.offset + len(header), entry.size)


# -- Manifest and signature ----------------------------------------------------------------------


def key_id(raw):
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_key(text):
    """The force's public key as given on the command line (base64 of 32 bytes), or UsageError."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        if len(raw) != 32:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(raw), raw
    except (ValueError, binascii.Error):
        raise UsageError(
            "the public key given is not an Ed25519 public key: it must be the base64 text of "
            "32 bytes, as the force publishes it (the output of `manage.py audit_checkpoint "
            "--public-key`)"
        ) from None


def check_signature(manifest_bytes, sig_bytes, pinned):
    """The manifest, parsed only as far as finding its key, and the key whose signature holds."""
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError
    except ValueError:
        raise Problem(
            "The list of contents (manifest.json) is damaged: it cannot be read.",
            member="manifest.json",
        ) from None
    try:
        signature = base64.b64decode(sig_bytes.strip(), validate=True)
        if len(signature) != 64 or sig_bytes != base64.b64encode(signature) + b"\n":
            raise ValueError
    except ValueError:
        raise Problem(
            "The signature file (manifest.sig) is damaged.",
            member="manifest.sig",
            detail="not one base64 Ed25519 signature and a newline",
        ) from None
    signing = manifest.get("signing_key")
    embedded = signing.get("public_key") if isinstance(signing, dict) else None
    try:
        embedded_raw = (
            base64.b64decode(embedded, validate=True) if isinstance(embedded, str) else b""
        )
        if len(embedded_raw) != 32:
            raise ValueError
    except ValueError:
        raise Problem(
            "The list of contents (manifest.json) does not name the key that signed it.",
            member="manifest.json",
        ) from None
    if pinned is not None and pinned[1] != embedded_raw:
        raise Problem(
            f"This bundle was signed with a different key (key id {key_id(embedded_raw)}) from "
            f"the one you gave (key id {key_id(pinned[1])}): it was not made by the holder of "
            "that key.",
            detail="the manifest's signing_key differs from --public-key",
        )
    public = pinned[0] if pinned else Ed25519PublicKey.from_public_bytes(embedded_raw)
    try:
        public.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise Problem(
            "The list of contents (manifest.json) or its signature (manifest.sig) was changed "
            "after the bundle was signed.",
            member="manifest.json",
            detail="the Ed25519 signature in manifest.sig does not verify over manifest.json",
        ) from None
    return manifest, public, embedded_raw


def _need(condition, what):
    if not condition:
        raise Problem(
            "The list of contents (manifest.json) is not in the form this checker knows.",
            member="manifest.json",
            detail=what,
        )


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value):
    return isinstance(value, str)


def _opt_text(value):
    return value is None or isinstance(value, str)


def _time(value):
    try:
        return datetime.strptime(value + "+0000", "%Y-%m-%dT%H:%M:%SZ%z")
    except (TypeError, ValueError):
        return None


def check_manifest(manifest):
    """Every field the checks and the report use, of the type they need."""
    _need(manifest.get("format") == BUNDLE_FORMAT, f"format is not {BUNDLE_FORMAT}")
    for name in (
        "bundle_id",
        "created_by",
        "recipient",
        "purpose",
        "custody_extract",
        "checkpoint",
        "statement",
    ):
        _need(_text(manifest.get(name)), f"{name} is missing")
    created = _time(manifest.get("created_at"))
    _need(created is not None and created.year >= 1980, "created_at is not a time")
    _need(_opt_text(manifest.get("consistency")), "consistency is not a file name")
    case = manifest.get("case")
    _need(
        case is None
        or (
            isinstance(case, dict)
            and _text(case.get("crime_reference"))
            and _text(case.get("title"))
        ),
        "case is malformed",
    )
    files = manifest.get("files")
    _need(isinstance(files, list) and files, "files is not a list")
    paths = set()
    for entry in files:
        _need(isinstance(entry, dict), "a file entry is not an object")
        path = entry.get("path")
        _need(_text(path) and path not in paths, "a file path is missing or repeated")
        _need(path not in ("manifest.json", "manifest.sig"), "the manifest lists itself")
        paths.add(path)
        _need(_is_int(entry.get("size")) and entry["size"] >= 0, f"{path}: size")
        _need(_text(entry.get("sha256")) and HEX64.match(entry["sha256"]), f"{path}: sha256")
        role = entry.get("role")
        _need(
            role in ("original", "derived", "custody", "checkpoint", "consistency", "statement"),
            f"{path}: role",
        )
        if role == "original":
            rec = entry.get("recording")
            _need(isinstance(rec, dict), f"{path}: recording")
            for name in ("id", "camera", "borough", "started_at", "ended_at"):
                _need(_text(rec.get(name)), f"{path}: recording {name}")
            _need(_opt_text(rec.get("officer")), f"{path}: recording officer")
            _need(
                rec.get("duration_seconds") is None
                or isinstance(rec["duration_seconds"], (int, float)),
                f"{path}: duration",
            )
        if role == "derived":
            source = entry.get("derived_from")
            _need(
                isinstance(source, dict)
                and _text(source.get("recording"))
                and _text(source.get("original_sha256")),
                f"{path}: derived_from",
            )
            for name in ("kind", "made_by", "made_at"):
                _need(_opt_text(source.get(name)), f"{path}: derived_from {name}")
    for name in ("custody_extract", "checkpoint", "statement"):
        _need(manifest[name] in paths, f"{name} names no listed file")
    if manifest.get("consistency") is not None:
        _need(manifest["consistency"] in paths, "consistency names no listed file")
    return created


# -- Layout and contents -------------------------------------------------------------------------


def check_layout(f, length, entries, cd_offset, directory, manifest, created, small):
    """Every byte of the ZIP against the layout the signed manifest implies; returns the small
    files' contents and each file's SHA-256."""
    listed = {e["path"]: e for e in manifest["files"]}
    expected = [e["path"] for e in manifest["files"]] + ["manifest.json", "manifest.sig"]
    actual = [e.name.decode("utf-8") for e in entries]
    for name in actual:
        if name not in listed and name not in ("manifest.json", "manifest.sig"):
            raise Problem(
                f"The bundle holds a file that is not in its signed list of contents: "
                f"{label(name)}. It was added after the bundle was made.",
                member=name,
            )
    for name in expected:
        if name not in actual:
            raise Problem(f"The file {label(name)} is missing from the bundle.", member=name)
    if actual != expected:
        raise Problem(
            "The files in the bundle are not in the order of its signed list of contents: the "
            "bundle was rearranged after it was made.",
            detail="member order differs from the manifest's",
        )
    time, date = dos_time(created)
    contents, position, central = {}, 0, []
    for number, name in enumerate(expected):
        entry = entries[number]
        raw = name.encode("utf-8")
        size = listed[name]["size"] if name in listed else entry.size
        zip64 = size >= LIMIT or position >= LIMIT
        header = _local_header(raw, zip64, time, date)
        if position + len(header) + size > cd_offset:
            raise Problem(
                f"The file {label(name)} inside the bundle is cut short or misplaced.",
                member=name,
                detail="its data runs into the central directory",
            )
        got = _read_at(f, position, len(header))
        if got != header:
            which = "its date or time" if got[10:14] != header[10:14] else "its header"
            raise Problem(
                f"The file {label(name)} inside the bundle is damaged or was altered: {which} in "
                "the ZIP is not what the signed list of contents implies.",
                member=name,
                detail="local header differs from the one rebuilt from the manifest",
            )
        digest, crc, kept, left = hashlib.sha256(), 0, [], size
        f.seek(position + len(header))
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise Problem(
                    f"The file {label(name)} inside the bundle is cut short.", member=name
                )
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            if name in small:
                kept.append(chunk)
            left -= len(chunk)
        sha = digest.hexdigest()
        if name in listed and sha != listed[name]["sha256"]:
            raise Problem(
                f"The file {label(name)} has been changed: its contents do not match the "
                "fingerprint (SHA-256) recorded in the signed list of contents when the bundle "
                "was made.",
                member=name,
                detail=f"SHA-256 of the file {sha}; in the signed manifest {listed[name]['sha256']}",
            )
        descriptor = _descriptor(crc, size, zip64)
        if _read_at(f, position + len(header) + size, len(descriptor)) != descriptor:
            raise Problem(
                f"The file {label(name)} inside the bundle is damaged: the record after its "
                "contents is wrong.",
                member=name,
                detail="data descriptor (CRC-32 and sizes) differs",
            )
        if name in small:
            contents[name] = b"".join(kept)
        central.append(_central(raw, crc, size, position, time, date))
        position += len(header) + size + len(descriptor)
    if position != cd_offset:
        raise Problem(
            "The bundle holds bytes that belong to none of its files (added after it was made).",
            detail=f"the last file ends at {position}, the central directory starts at {cd_offset}",
        )
    pos = 0
    for number, entry_bytes in enumerate(central):
        name = expected[number]
        if directory[pos : pos + len(entry_bytes)] != entry_bytes:
            raise Problem(
                f"The bundle's table of contents is damaged or was altered at the entry for "
                f"{label(name)}.",
                detail="central directory entry differs from the one rebuilt from the manifest",
            )
        pos += len(entry_bytes)
    tail = _read_at(f, cd_offset + len(directory), length - cd_offset - len(directory))
    if pos != len(directory) or tail != _end(len(expected), cd_offset, len(directory)):
        raise Problem(DAMAGED, detail="end of central directory records differ")
    return contents


# -- The custody extract, the signed head and the clips ---------------------------------------------


def _json_member(contents, path, what):
    try:
        value = json.loads(contents[path].decode("utf-8"))
        if not isinstance(value, dict):
            raise ValueError
        return value
    except ValueError:
        raise Problem(f"{what} ({label(path)}) cannot be read.", member=path) from None


def check_head(document, public, path):
    """A signed tree head: its signature with the bundle's key, and its fields."""
    statement = document.get("statement")
    signature = document.get("signature")
    bad = Problem(
        f"The signed state of the force's audit log ({label(path)}) is not genuine.",
        member=path,
        detail="signed tree head malformed or its signature does not verify",
    )
    if not isinstance(statement, dict) or not isinstance(signature, str):
        raise bad
    try:
        public.verify(base64.b64decode(signature, validate=True), _canonical(statement).encode())
    except (InvalidSignature, ValueError):
        raise bad from None
    size, root = statement.get("tree_size"), statement.get("root_hash")
    if (
        statement.get("format") != TREE_HEAD_FORMAT
        or not _is_int(size)
        or size < 1
        or statement.get("seq") != size
        or not _text(root)
        or not HEX64.match(root)
        or not _text(statement.get("hash"))
        or not HEX64.match(statement["hash"])
        or _time(statement.get("signed_at")) is None
    ):
        raise bad
    return statement


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def check_custody(contents, manifest, public):
    """Every event: its own hash, its number, its place in the signed log. Returns the events
    (parsed bodies with their numbers), the signed head, and the earlier head it extends."""
    path = manifest["custody_extract"]
    head_path = manifest["checkpoint"]
    head = check_head(
        _json_member(contents, head_path, "The signed state of the audit log"), public, head_path
    )
    size, root = head["tree_size"], bytes.fromhex(head["root_hash"])
    try:
        text = contents[path].decode("ascii")
    except UnicodeDecodeError:
        raise Problem("The custody record (custody.jsonl) is damaged.", member=path) from None
    if text and not text.endswith("\n"):
        raise Problem("The custody record (custody.jsonl) is cut short.", member=path)
    events, previous = [], None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}"
        try:
            event = json.loads(line)
            if not isinstance(event, dict) or set(event) != {
                "seq",
                "prev_hash",
                "hash",
                "body",
                "inclusion_proof",
            }:
                raise ValueError
            seq, prev_hash, digest, body_text = (
                event["seq"],
                event["prev_hash"],
                event["hash"],
                event["body"],
            )
            proof = event["inclusion_proof"]
            if not (
                _is_int(seq)
                and seq > 0
                and _text(prev_hash)
                and HEX64.match(prev_hash)
                and _text(digest)
                and HEX64.match(digest)
                and _text(body_text)
                and isinstance(proof, list)
                and len(proof) <= MAX_PROOF
                and all(_text(p) and HEX64.match(p) for p in proof)
            ):
                raise ValueError
            body = json.loads(body_text)
            if not isinstance(body, dict) or body.get("seq") != seq:
                raise ValueError
            for name in (
                "at",
                "actor",
                "action",
                "object_type",
                "object_id",
                "justification",
                "recipient",
                "borough",
            ):
                if not _text(body.get(name)):
                    raise ValueError
            if not isinstance(body.get("detail"), dict):
                raise ValueError
        except ValueError:
            raise Problem(
                f"The custody record (custody.jsonl) is damaged at {where}.",
                member=path,
                detail="not a custody event",
            ) from None
        if hashlib.sha256((prev_hash + body_text).encode("ascii")).hexdigest() != digest:
            raise Problem(
                f"Custody event {seq} was altered: it does not match its own hash.",
                member=path,
                detail=where,
            )
        if previous is not None:
            if seq <= previous[0]:
                raise Problem(f"The custody record is out of order at event {seq}.", member=path)
            if seq == previous[0] + 1 and prev_hash != previous[1]:
                raise Problem(f"Custody event {seq} does not follow event {seq - 1}.", member=path)
        if seq > size or (seq == size and digest != head["hash"]):
            raise Problem(
                f"Custody event {seq} is not covered by the signed state of the log.", member=path
            )
        leaf = leaf_hash(bytes.fromhex(digest))
        if not verify_inclusion(leaf, seq - 1, size, [bytes.fromhex(p) for p in proof], root):
            raise Problem(
                f"Custody event {seq} is not part of the force's audit log as it was signed on "
                f"{_when(head['signed_at'])}: the record of what happened to the footage was "
                "altered.",
                member=path,
                detail=f"the inclusion proof of event {seq} does not lead to the signed root",
            )
        previous = (seq, digest)
        events.append({**body, "seq": seq})
    earlier = None
    if manifest.get("consistency"):
        earlier = check_consistency(contents, manifest["consistency"], head, public)
    return events, head, earlier


def check_consistency(contents, path, head, public):
    document = _json_member(contents, path, "The proof that the audit log was only added to")
    proof = document.get("proof")
    earlier_doc = document.get("earlier")
    if (
        document.get("format") != CONSISTENCY_FORMAT
        or not isinstance(earlier_doc, dict)
        or not isinstance(proof, list)
        or len(proof) > MAX_PROOF
        or not all(_text(p) and HEX64.match(p) for p in proof)
    ):
        raise Problem("The proof that the audit log was only added to is damaged.", member=path)
    earlier = check_head(earlier_doc, public, path)
    if not verify_consistency(
        earlier["tree_size"],
        head["tree_size"],
        [bytes.fromhex(p) for p in proof],
        bytes.fromhex(earlier["root_hash"]),
        bytes.fromhex(head["root_hash"]),
    ):
        raise Problem(
            f"The force's audit log as signed for this bundle does not extend the one signed on "
            f"{_when(earlier['signed_at'])}: the log was rewritten in between.",
            member=path,
            detail="the consistency proof does not hold",
        )
    return earlier


def check_clips(manifest, events):
    """Each original clip against its ingest event; each derived copy against its original.
    Returns the clips and derived copies for the report."""
    on_object = {}
    for event in events:
        if event["object_type"] == "evidence.recording":
            on_object.setdefault(event["object_id"], []).append(event)
    clips, originals = [], {}
    for entry in manifest["files"]:
        if entry["role"] != "original":
            continue
        path, rec = entry["path"], entry["recording"]
        mine = on_object.get(rec["id"], [])
        ingests = [e for e in mine if e["action"] == "recording.ingested"]
        if len(ingests) != 1:
            raise Problem(
                f"The custody record does not show how the clip {label(path)} arrived (it needs "
                "exactly one record of its upload from the camera dock), so its origin cannot "
                "be shown.",
                member=path,
                detail=f"{len(ingests)} recording.ingested events for recording {label(rec['id'])}",
            )
        ingest = ingests[0]
        detail = ingest["detail"]
        if detail.get("sha256") != entry["sha256"] or detail.get("size") != entry["size"]:
            raise Problem(
                f"The clip {label(path)} is not the one the camera dock uploaded: its "
                f"fingerprint differs from the one recorded when it arrived (event "
                f"{ingest['seq']}).",
                member=path,
                detail="SHA-256 or size differs from the recording.ingested event",
            )
        originals[rec["id"]] = entry["sha256"]
        later = [e for e in mine if e["seq"] > ingest["seq"]]
        clips.append({"entry": entry, "ingest": ingest, "later": later})
    derived = []
    for entry in manifest["files"]:
        if entry["role"] == "derived":
            source = entry["derived_from"]
            if originals.get(source["recording"]) != source["original_sha256"]:
                raise Problem(
                    f"The derived copy {label(entry['path'])} does not name an original clip of "
                    "this bundle.",
                    member=entry["path"],
                )
            derived.append(entry)
    return clips, derived


# -- The report ------------------------------------------------------------------------------------


def _when(value):
    when = _time(value) if isinstance(value, str) else None
    if when is None:
        try:
            when = datetime.strptime(value + "+0000", "%Y-%m-%dT%H:%M:%S.%fZ%z")
        except (TypeError, ValueError):
            return label(value)
    return f"{when.day} {when:%B %Y} at {when:%H:%M:%S} UTC"


def _duration(seconds):
    if seconds is None:
        return "unknown"
    seconds = round(seconds)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes) + [f"{seconds} s"]
    return " ".join(parts)


def _event_line(event):
    what = ACTIONS.get(event["action"], event["action"])
    line = f"event {event['seq']}, {_when(event['at'])}: {what} by {event['actor']}"
    if event["justification"]:
        line += f"; why: {event['justification']}"
    if event["recipient"]:
        line += f"; for: {event['recipient']}"
    return label(line, 400)


class Report:
    """What is shown, as (heading, lines) sections, with the verdict; text or HTML."""

    def __init__(self):
        self.passed = False
        self.verdict = ""
        self.notes = []
        self.sections = []
        self.problem = None

    def text(self):
        out = [f"Court bundle check: {'PASSED' if self.passed else 'FAILED'}", ""]
        if self.problem is not None:
            out += [f"What is wrong: {self.problem.plain}", f"What to do: {WHAT_TO_DO}"]
            if self.problem.detail:
                out.append(f"Technical detail: {label(self.problem.detail, 300)}")
            out.append("")
        for heading, lines in self.sections:
            out.append(heading)
            out += [f"  {line}" for line in lines]
            out.append("")
        if self.passed:
            out.append(f"Verdict: {self.verdict}")
            out += [f"Note: {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def html(self):
        """The same report as a page of its own: every value escaped, no script, no link out."""
        e = html.escape
        title = "Court bundle check: " + ("passed" if self.passed else "FAILED")
        body = [f"<h1>{e(title)}</h1>"]
        if self.problem is not None:
            body.append('<div class="verdict">')
            body.append(f"<p><strong>What is wrong:</strong> {e(self.problem.plain)}</p>")
            body.append(f"<p><strong>What to do:</strong> {e(WHAT_TO_DO)}</p></div>")
            if self.problem.detail:
                body.append(f"<p>Technical detail: {e(label(self.problem.detail, 300))}</p>")
        if self.passed:
            body.append(f'<div class="verdict"><p><strong>Verdict:</strong> {e(self.verdict)}</p>')
            body += [f"<p>Note: {e(n)}</p>" for n in self.notes]
            body.append("</div>")
        for heading, lines in self.sections:
            body.append(f"<h2>{e(heading)}</h2><ul>")
            body += [f"<li>{e(line)}</li>" for line in lines]
            body.append("</ul>")
        return (
            '<!doctype html>\n<html lang="en-GB"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)}</title>\n<style>{PAGE_STYLE}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )


# A page read on its own, offline: plain type, long fingerprints wrapped, the verdict boxed.
PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.4}"
    "li,p,h2{overflow-wrap:anywhere}.verdict{border:5px solid #0b0c0c;padding:0 1em;margin:1em 0}"
)


def describe(report, manifest, key_raw, pinned, head, earlier, events, clips, derived):
    case = manifest["case"]
    about = [f"Bundle: {label(manifest['bundle_id'])}"]
    if case:
        about.append(
            f"Case: {label(case['title'])}, crime reference {label(case['crime_reference'])}"
        )
    else:
        about.append("Case: none (the bundle was made from chosen recordings)")
    about += [
        f"Made for: {label(manifest['recipient'], 200)}",
        f"Purpose: {label(manifest['purpose'], 300)}",
        f"Made by: {label(manifest['created_by'])} on {_when(manifest['created_at'])}",
    ]
    if pinned:
        about.append(f"Signed by: the key you gave (key id {key_id(key_raw)})")
    else:
        about.append(
            f"Signed by: NOT ESTABLISHED. No public key was given, so this check cannot say who "
            f"made the bundle; the key inside it has id {key_id(key_raw)}."
        )
    report.sections.append(("About this bundle", about))
    log = [
        f"{len(events)} custody events, each proven to stand in the force's audit log as signed "
        f"on {_when(head['signed_at'])} ({head['tree_size']} events in all).",
    ]
    if earlier is not None:
        log.append(
            f"That log extends the one signed on {_when(earlier['signed_at'])} "
            f"({earlier['tree_size']} events): nothing in it was changed or removed since."
        )
    else:
        report.notes.append(
            "The bundle carries no earlier signed state of the audit log to compare with, so it "
            "does not show that the log was only ever added to before it was made."
        )
    report.sections.append(("Audit log", log))
    for number, clip in enumerate(clips, 1):
        entry, rec, ingest = clip["entry"], clip["entry"]["recording"], clip["ingest"]
        lines = [
            f"Officer: {label(rec['officer'] or 'not attributed')}",
            f"Camera: {label(rec['camera'])} (borough {label(rec['borough'])})",
            f"Recorded: {_when(rec['started_at'])} to {_when(rec['ended_at'])} "
            f"({_duration(rec.get('duration_seconds'))})",
            f"SHA-256: {entry['sha256']} ({entry['size']} bytes)",
            f"Arrived: {_event_line(ingest)}; the fingerprint matches",
        ]
        lines += [f"Then: {_event_line(e)}" for e in clip["later"]]
        report.sections.append((f"Clip {number}: {label(entry['path'])}", lines))
    for entry in derived:
        source = entry["derived_from"]
        report.sections.append(
            (
                f"Derived copy: {label(entry['path'])}",
                [
                    f"A {label(source.get('kind') or 'derived')} copy of recording "
                    f"{label(source['recording'])}, made by {label(source.get('made_by') or 'unknown')} on "
                    f"{_when(source.get('made_at'))}",
                    f"SHA-256: {entry['sha256']} ({entry['size']} bytes)",
                ],
            )
        )
    who = label(manifest["created_by"])
    if pinned:
        report.verdict = (
            f"Every check holds. This bundle is exactly as {who} made it with the force's system "
            "and signed with the key you gave; each clip is identical to what the camera dock "
            "uploaded, and each custody event is part of the force's audit log."
        )
    else:
        report.verdict = (
            "The bundle is whole and unchanged since it was signed, and agrees with itself, but "
            "WHO MADE IT IS NOT ESTABLISHED: no public key was given. Compare the key id above "
            "with the one the force publishes, or run this again with --public-key."
        )


def verify(path, pinned=None, expect_case=None):
    """The report of one bundle. Raises UsageError when the file cannot be read at all."""
    report = Report()
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        f.seek(0, 2)
        length = f.tell()
        entries, cd_offset, _cd_size, directory = read_directory(f, length)
        last = [e.name for e in entries[-2:]]
        if last != [b"manifest.json", b"manifest.sig"]:
            raise Problem(
                "The bundle's signed list of contents is not where it should be (manifest.json "
                "and manifest.sig must come last).",
                detail="the last two central directory entries",
            )
        manifest_bytes = read_member_data(f, entries[-2], cd_offset, MAX_SMALL_FILE)
        sig_bytes = read_member_data(f, entries[-1], cd_offset, MAX_SIGNATURE)
        manifest, public, key_raw = check_signature(manifest_bytes, sig_bytes, pinned)
        created = check_manifest(manifest)
        small = {e["path"] for e in manifest["files"] if e["role"] not in ("original", "derived")}
        for entry in manifest["files"]:
            if entry["path"] in small and entry["size"] > MAX_SMALL_FILE:
                raise Problem(
                    f"The file {label(entry['path'])} is too large.", member=entry["path"]
                )
        contents = check_layout(f, length, entries, cd_offset, directory, manifest, created, small)
        events, head, earlier = check_custody(contents, manifest, public)
        clips, derived = check_clips(manifest, events)
        if expect_case is not None:
            case = manifest["case"]
            made_for = case["crime_reference"] if case else None
            if made_for is None or made_for.strip().upper() != expect_case.strip().upper():
                raise Problem(
                    f"This bundle is genuine but was made for "
                    f"{'case ' + label(made_for) if made_for else 'no case'}, not for case "
                    f"{label(expect_case)}.",
                    detail="--expect-case does not match the manifest's case",
                )
        describe(
            report, manifest, key_raw, pinned is not None, head, earlier, events, clips, derived
        )
        report.passed = True
    except Problem as problem:
        report.problem = problem
    except (struct.error, ValueError, KeyError, TypeError, UnicodeError) as exc:
        # Every field is checked before use; this is the last guard, and it prints no bundle bytes.
        report.problem = Problem(DAMAGED, detail=f"unreadable structure ({type(exc).__name__})")
    except OSError as exc:  # the disk, not the bundle: nothing can be said about it
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        f.close()
    return report


def verify_consistency_file(path, pinned):
    """The report on a consistency proof between two signed heads (audit_checkpoint
    --consistency-from)."""
    report = Report()
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SMALL_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        if len(raw) > MAX_SMALL_FILE:
            raise Problem("The proof file is too large to be a proof.")
        try:
            document = json.loads(raw.decode("utf-8"))
            later = document["later"] if isinstance(document, dict) else None
        except (ValueError, KeyError):
            raise Problem("The proof file cannot be read.") from None
        if not isinstance(later, dict):
            raise Problem("The proof file cannot be read.")
        head = check_head(later, pinned[0], "the later head")
        earlier = check_consistency({"proof": raw}, "proof", head, pinned[0])
        report.sections.append(
            (
                "Audit log",
                [
                    f"Earlier: {earlier['tree_size']} events, signed on {_when(earlier['signed_at'])}",
                    f"Later: {head['tree_size']} events, signed on {_when(head['signed_at'])}",
                ],
            )
        )
        report.verdict = (
            "The later audit log extends the earlier one: every event the force had signed by "
            "then is still there, unchanged and in place, signed with the key you gave."
        )
        report.passed = True
    except Problem as problem:
        report.problem = problem
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Check a court export bundle offline and report what it holds.",
        epilog="Exit status: 0 every check holds; 1 the bundle fails; 2 the command was wrong.",
    )
    parser.add_argument("bundle", nargs="?", help="the bundle (.zip)")
    parser.add_argument("--public-key", help="the force's published Ed25519 public key, base64")
    parser.add_argument(
        "--expect-case",
        metavar="REF",
        help="fail unless the bundle was made for this crime reference",
    )
    parser.add_argument(
        "--html",
        nargs="?",
        const="",
        metavar="PATH",
        help="also write the report as a web page (default: beside the bundle)",
    )
    parser.add_argument(
        "--consistency",
        metavar="PROOF",
        help="check a proof that a later audit log extends an earlier one",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        pinned = parse_key(args.public_key) if args.public_key is not None else None
        if args.consistency is not None:
            if args.bundle is not None or pinned is None:
                raise UsageError("--consistency takes a proof file and --public-key, no bundle")
            report = verify_consistency_file(args.consistency, pinned)
            target = args.consistency
        else:
            if args.bundle is None:
                raise UsageError("name the bundle to check (a .zip file)")
            report = verify(args.bundle, pinned, args.expect_case)
            target = args.bundle
        html_path = None
        if args.html is not None:
            html_path = args.html or os.path.splitext(target)[0] + ".report.html"
            if os.path.abspath(html_path) == os.path.abspath(target):
                raise UsageError("the report would overwrite the file being checked")
    except UsageError as exc:
        print(f"verify_bundle.py: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(report.text())
    if html_path is not None:
        try:
            with open(html_path, "w", encoding="utf-8") as out:
                out.write(report.html())
        except OSError as exc:
            print(f"verify_bundle.py: cannot write {html_path}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"The same report as a web page: {html_path}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
