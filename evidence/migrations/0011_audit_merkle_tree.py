"""The audit log gets a Merkle tree (RFC 9162) over its events, kept as its complete subtrees.

Existing events are built into the tree here, in their chain order: leaf i is SHA-256(0x00 || the
32 bytes of event i + 1's hash), a node is SHA-256(0x01 || left || right), and every complete
subtree is stored once. The head row gets the tree's right edge (`frontier`). The computation is
written out in this file, so that the migration does not depend on code that may move.
"""

import hashlib

from django.db import migrations, models

BATCH = 5000


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def build_tree(apps, schema_editor):
    AuditEvent = apps.get_model("evidence", "AuditEvent")
    AuditTreeNode = apps.get_model("evidence", "AuditTreeNode")
    AuditChainHead = apps.get_model("evidence", "AuditChainHead")
    frontier: list[bytes] = []
    pending = []
    size = 0
    for seq, digest in AuditEvent.objects.order_by("seq").values_list("seq", "hash").iterator(5000):
        if seq != size + 1:
            raise RuntimeError(
                f"the audit chain has a gap before event {seq}: run audit_verify and resolve it "
                "before this migration"
            )
        node = hashlib.sha256(b"\x00" + bytes.fromhex(digest)).digest()
        pending.append(AuditTreeNode(level=0, index=size, hash=node))
        level = 0
        while size >> level & 1:
            node = _node(frontier.pop(), node)
            level += 1
            pending.append(AuditTreeNode(level=level, index=size >> level, hash=node))
        frontier.append(node)
        size += 1
        if len(pending) >= BATCH:
            AuditTreeNode.objects.bulk_create(pending)
            pending = []
    AuditTreeNode.objects.bulk_create(pending)
    AuditChainHead.objects.filter(id=1).update(frontier=b"".join(frontier))


def drop_tree(apps, schema_editor):
    # The table itself goes with the model; the head forgets the tree's edge.
    AuditChainHead = apps.get_model("evidence", "AuditChainHead")
    AuditChainHead.objects.filter(id=1).update(frontier=b"", published_size=0)


class Migration(migrations.Migration):
    # After every migration that writes audit events (the case holds): the tree is built from them.
    dependencies = [("evidence", "0010_case_closing"), ("retention", "0006_place_case_holds")]

    operations = [
        migrations.CreateModel(
            name="AuditTreeNode",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "level",
                        "index",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("level", models.PositiveSmallIntegerField()),
                ("index", models.BigIntegerField()),
                ("hash", models.BinaryField(max_length=32)),
            ],
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="frontier",
            field=models.BinaryField(default=b""),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="published_size",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(build_tree, drop_tree),
    ]
