"""Officers' devices (customs agencies register their handhelds' keys) and the sync of scans
the devices made offline (docs/scanner.md, "Offline queue and sync")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from api.deps import GatewayDep, OfficerDep, SessionDep
from api.devices import (
    device_of,
    list_devices,
    register_device,
    revoke_device,
    sync_scans,
    syncing_device,
)
from api.models import Device
from api.openapi import DEFAULT_PAGE, PageLimit
from api.schemas import (
    DeviceCreate,
    DevicePublic,
    ErrorResponse,
    SyncRequest,
    SyncResponse,
)

router = APIRouter(prefix="/v1", tags=["devices"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)
}
DeviceId = Annotated[str, Path(pattern=r"^dev-[0-9a-f]{32}$", description="the device's deviceId")]


def _out(device: Device) -> DevicePublic:
    return DevicePublic(
        deviceId=device.device_id,
        name=device.name,
        publicKey=device.public_key,
        organizationId=device.organization_id,
        createdAt=device.created_at,
        revokedAt=device.revoked_at,
    )


@router.post(
    "/devices", status_code=status.HTTP_201_CREATED, response_model=DevicePublic, responses=ERRORS
)
def create_device(body: DeviceCreate, principal: OfficerDep, session: SessionDep) -> DevicePublic:
    """Register an officer's device key for the calling customs agency (or admin). Sending
    the same key again returns the same device; a key of another agency is a 409."""
    return _out(register_device(session, principal.organization, body.name, body.publicKey))


@router.get("/devices", response_model=list[DevicePublic], responses=ERRORS)
def get_devices(
    principal: OfficerDep, session: SessionDep, limit: PageLimit = DEFAULT_PAGE
) -> list[DevicePublic]:
    """The calling agency's devices, revoked ones included (an admin sees all), oldest first."""
    return [_out(d) for d in list_devices(session, principal, limit)]


@router.get("/devices/{device_id}", response_model=DevicePublic, responses=ERRORS)
def get_device(device_id: DeviceId, principal: OfficerDep, session: SessionDep) -> DevicePublic:
    return _out(device_of(session, principal, device_id))


@router.post("/devices/{device_id}/revoke", response_model=DevicePublic, responses=ERRORS)
def revoke(device_id: DeviceId, principal: OfficerDep, session: SessionDep) -> DevicePublic:
    """Revoke a lost or retired device: its syncs are refused from now on (idempotent)."""
    return _out(revoke_device(session, principal, device_id))


@router.post("/scans/sync", response_model=SyncResponse, responses=ERRORS)
def sync(body: SyncRequest, principal: OfficerDep, session: SessionDep, gateway: GatewayDep) -> Any:
    """Scans a device made offline, each signed with its key. The device must be registered to
    the calling agency and not revoked (403). Each scan is answered on its own: `accepted`
    with the online verdict (and `verdictDisagrees` when the device's offline verdict
    differs), `duplicate` when already synced, or `rejected` with a reason. Safe to retry."""
    device = syncing_device(session, principal.organization, body.deviceId)
    results = sync_scans(
        gateway,
        principal.organization,
        device,
        [(s.record, s.signature) for s in body.scans],
        principal=principal,
    )
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        counts[r.status] += 1
    return {
        "deviceId": device.device_id,
        "counts": counts,
        "results": [r.to_dict() for r in results],
    }
