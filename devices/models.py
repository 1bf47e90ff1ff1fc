"""Boroughs, units, officers, cameras, who held which camera when, and the docks that upload.

`CameraAssignment` is the history that puts an officer's name on evidence: it is only appended to
(a return closes the open row, it never edits an old one), and the database itself refuses a second
open assignment of the same camera, so two admins racing cannot both win.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Force(models.Model):
    """The force as a whole (one row): what it aims for across its boroughs and departments.

    Boroughs carry their own camera targets; the force's target also counts specialist departments
    (overt firearms officers and others), so it is set here as data, not summed."""

    camera_target = models.PositiveIntegerField(
        default=0, help_text="Cameras the force means to have in use, e.g. 22,000 for the Met"
    )

    class Meta:
        verbose_name = "force"

    def __str__(self) -> str:
        return f"force (target {self.camera_target} cameras)"


class Borough(models.Model):
    """A Basic Command Unit area of the force; every camera, officer and recording belongs to one."""

    code = models.CharField(max_length=8, unique=True, help_text="Short code, e.g. 'HA' for Harrow")
    name = models.CharField(max_length=100, unique=True)
    go_live_date = models.DateField(
        null=True, blank=True, help_text="Body-worn video roll-out date"
    )
    target_cameras = models.PositiveIntegerField(default=270)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Unit(models.Model):
    """A team or specialist department (e.g. overt firearms), force-wide or within a borough."""

    name = models.CharField(max_length=120)
    borough = models.ForeignKey(
        Borough,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="units",
        help_text="Empty for force-wide specialist departments",
    )
    specialist = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name", "borough"], name="unit_name_unique_in_borough"),
        ]

    def __str__(self) -> str:
        return self.name


class Rank(models.TextChoices):
    PCSO = "pcso", "PCSO"
    CONSTABLE = "pc", "Police Constable"
    SERGEANT = "ps", "Police Sergeant"
    INSPECTOR = "insp", "Inspector"
    CHIEF_INSPECTOR = "ci", "Chief Inspector"
    SUPERINTENDENT = "supt", "Superintendent"
    STAFF = "staff", "Police staff"


class Officer(models.Model):
    """A person who wears a camera or works with footage: officers, PCSOs and police staff.

    `collar_number` is the warrant/collar or staff number, unique across the force. `user` is set for
    those who sign in to the staff site.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="officer",
    )
    collar_number = models.CharField(max_length=20, unique=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    rank = models.CharField(max_length=8, choices=Rank.choices, default=Rank.CONSTABLE)
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="officers")
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.SET_NULL, related_name="officers"
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["last_name", "first_name"]
        indexes = [models.Index(fields=["borough", "last_name"], name="officer_borough_name")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return (
            f"{self.get_rank_display()} {self.first_name} {self.last_name} ({self.collar_number})"
        )


class CameraStatus(models.TextChoices):
    IN_STOCK = "in_stock", "In stock"
    ISSUED = "issued", "Issued"
    DOCKED = "docked", "Docked"
    FAULTY = "faulty", "Faulty"
    LOST = "lost", "Lost"
    RETIRED = "retired", "Retired"


class CameraKind(models.TextChoices):
    BODY = "body", "Body-worn"
    HEAD = "head", "Head-mounted (specialist)"


class Camera(models.Model):
    """A body-worn camera of the force's estate.

    Personal cameras are issued to one officer; shared-pool cameras are checked out by officers at
    the start of a shift and back in at its end. Either way every holder is a CameraAssignment."""

    serial = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=8, choices=CameraKind.choices, default=CameraKind.BODY)
    shared_pool = models.BooleanField(
        default=False,
        help_text="Checked out per shift from a pool instead of issued to one officer",
    )
    firmware = models.CharField(max_length=50, blank=True)
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="cameras")
    status = models.CharField(
        max_length=10, choices=CameraStatus.choices, default=CameraStatus.IN_STOCK
    )
    status_reason = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_docked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["serial"]
        indexes = [models.Index(fields=["borough", "status"], name="camera_borough_status")]

    def __str__(self) -> str:
        return self.serial

    @property
    def accepts_uploads(self) -> bool:
        """A retired or lost camera's clips are refused at the dock (a lost one may be in the
        wrong hands); every other camera's are taken."""
        return self.status not in (CameraStatus.RETIRED, CameraStatus.LOST)


class CameraAssignment(models.Model):
    """One period during which an officer held a camera. Open while `returned_at` is empty."""

    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="assignments")
    officer = models.ForeignKey(Officer, on_delete=models.PROTECT, related_name="assignments")
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    returned_at = models.DateTimeField(null=True, blank=True)
    returned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            # The rule that keeps the wrong name off evidence, enforced where no race can get past.
            models.UniqueConstraint(
                fields=["camera"],
                condition=Q(returned_at__isnull=True),
                name="one_open_assignment_per_camera",
            ),
            models.CheckConstraint(
                condition=Q(returned_at__isnull=True) | Q(returned_at__gte=models.F("issued_at")),
                name="assignment_returned_after_issued",
            ),
        ]
        indexes = [
            # Attribution looks up "who held camera C at time T".
            models.Index(fields=["camera", "issued_at"], name="assignment_camera_issued"),
        ]

    def __str__(self) -> str:
        return f"{self.camera} → {self.officer.collar_number}"


class Dock(models.Model):
    """A docking station that uploads clips. Its API key is shown once and only its hash is kept.

    The key has the form `bwvdock_<key_id>_<secret>`; `key_id` finds the row, the SHA-256 of the
    whole key is compared in constant time. A 256-bit random key needs no slow password hash.
    """

    name = models.CharField(max_length=100)
    station = models.CharField(max_length=120)
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="docks")
    key_id = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    key_rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["borough__name", "station", "name"]

    def __str__(self) -> str:
        return f"{self.name}, {self.station}"

    @property
    def audit_label(self) -> str:
        """How the audit log names a dock that acts (custody's actor protocol)."""
        return f"dock:{self.key_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class CameraStatusChange(models.Model):
    """One step of a camera's lifecycle, with its reason. Appended to, never edited."""

    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(max_length=10, choices=CameraStatus.choices)
    to_status = models.CharField(max_length=10, choices=CameraStatus.choices)
    reason = models.CharField(max_length=300)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.camera} {self.from_status} → {self.to_status}"


class LostCameraAlert(models.Model):
    """Raised when a camera is reported lost: a possible data breach until it is found or every
    clip on it is accounted for. Lists its last dock time and what may still be on it."""

    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="lost_alerts")
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField()
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300)
    last_docked_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return f"lost {self.camera} {self.raised_at:%Y-%m-%d}"
