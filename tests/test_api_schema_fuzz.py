"""The APIs answer only what their OpenAPI schema documents: schemathesis against the live server.

Every operation of the review API (with a DRF token of a sergeant), of the ingest API (with a
real dock key) and of the force's systems' API (with a real OAuth 2.0 token) is fuzzed, with data
that fits the schema and data that does not, for a bounded number of examples each. Every answer
must be no 5xx, a documented status, the documented content type and headers, and a body that
matches the documented schema. Real ids (a recording that went
through the ingest, its flag, a case, an unfinished upload) replace about half of the generated
ones, so the fuzzer reaches past "not found".

The examples are derandomised, so a run is repeatable; a failure names the request to replay.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.roles import Role
from evidence.ingest import upload_create
from review.services import case_add_recording, case_create, recording_flag
from tests import factories as f
from tests.integrations.oauth import connect

EXAMPLES_PER_OPERATION = 30
# A tus PATCH body is raw bytes, sent as they are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def world(transactional_db, small_clip):
    """What a sergeant of Harrow and a Harrow dock can see: real objects to aim at."""
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    cam, _officer = f.issued_camera()
    dock, dock_key = f.dock()
    recording = f.ingested_recording(cam=cam, data=small_clip, dock_obj=dock)
    flag = recording_flag(
        recording=recording, actor=sergeant, kind="policing_purpose", reason="intelligence"
    )
    case = case_create(
        borough=cam.borough, actor=sergeant, crime_reference="5201234/26", title="Assault"
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    other = f.ingested_recording(cam=cam, dock_obj=dock)
    doubled = small_clip * 2
    upload = upload_create(dock=dock, length=len(doubled), metadata=f.clip_metadata(cam, doubled))
    return {
        "token": Token.objects.create(user=sergeant).key,
        "dock_key": dock_key,
        "ids": {
            "recording_id": [str(recording.pk), str(other.pk)],
            "flag_id": [flag.pk],
            "case_id": [case.pk],
            "upload_id": [str(upload.pk)],
        },
    }


def _strategy(operation, mode: GenerationMode, ids: dict[str, list]):
    """Generated cases, and as many aimed at real objects where the path names one."""
    names = [p.name for p in operation.path_parameters]
    generated = operation.as_strategy(mode)
    if not names or not all(name in ids for name in names):
        return generated
    aimed = st.fixed_dictionaries({name: st.sampled_from(ids[name]) for name in names})
    return st.one_of(
        generated, aimed.flatmap(lambda real: operation.as_strategy(mode, path_parameters=real))
    )


def _fuzz(operation, mode: GenerationMode, auth: str, ids: dict[str, list]) -> None:
    @given(case=_strategy(operation, mode, ids))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def fuzz(case):
        case.call_and_validate(headers={"Authorization": auth}, checks=CHECKS, timeout=60)

    fuzz()


def test_the_apis_answer_only_what_their_schema_documents(live_server, world):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17, "every operation of the three APIs is in the schema"
    # The force's systems' operations, with a real OAuth 2.0 token of a client with every scope.
    system = connect(live_server.url, name="Fuzzing system")
    integration_paths = ("/api/v1/incidents/", "/api/v1/crime-reports/", "/api/v1/outcomes/")
    failures = []
    for operation in operations:
        if operation.path.startswith("/api/v1/ingest/"):
            auth = f"Bearer {world['dock_key']}"
        elif operation.path.startswith((*integration_paths, "/api/v1/evidence/")):
            auth = f"Bearer {system.token}"
        else:
            auth = f"Token {world['token']}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, auth, world["ids"])
            except Unsatisfiable:
                # An operation that takes no input at all has no invalid input to make.
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # every operation, then all failures
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
