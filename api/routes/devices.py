"""Officers' devices (customs agencies register their handhelds' keys) and the sync of scans
the devices made offline (docs/scanner.md, "Offline queue and sync")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from api.deps import CurrentOrg, GatewayDep, SessionDep, require
from api.devices import (
    device_of,
    list_devices,
    register_device,
    revoke_device,
    sync_scans,
    syncing_device,
)
from api.models import Device, Role
from api.schemas import (
    DeviceCreate,
    DeviceOut,
    ErrorOut,
    SyncRequest,
    SyncResponse,
)

router = APIRouter(prefix="/v1", tags=["devices"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422)
}
DeviceId = Annotated[str, Path(pattern=r"^dev-[0-9a-f]{32}$", description="the device's deviceId")]


def _out(device: Device) -> DeviceOut:
    return DeviceOut(
        deviceId=device.device_id,
        name=device.name,
        publicKey=device.public_key,
        organizationId=device.organization_id,
        createdAt=device.created_at,
        revokedAt=device.revoked_at,
    )


@router.post(
    "/devices", status_code=status.HTTP_201_CREATED, response_model=DeviceOut, responses=ERRORS
)
def create_device(body: DeviceCreate, org: CurrentOrg, session: SessionDep) -> DeviceOut:
    """Register an officer's device key for the calling customs agency (or admin). Sending
    the same key again returns the same device; a key of another agency is a 409."""
    require(org, Role.CUSTOMS, Role.ADMIN)
    return _out(register_device(session, org, body.name, body.publicKey))


@router.get("/devices", response_model=list[DeviceOut], responses=ERRORS)
def get_devices(org: CurrentOrg, session: SessionDep) -> list[DeviceOut]:
    """The calling agency's devices, revoked ones included (an admin sees all)."""
    require(org, Role.CUSTOMS, Role.ADMIN)
    return [_out(d) for d in list_devices(session, org)]


@router.get("/devices/{device_id}", response_model=DeviceOut, responses=ERRORS)
def get_device(device_id: DeviceId, org: CurrentOrg, session: SessionDep) -> DeviceOut:
    require(org, Role.CUSTOMS, Role.ADMIN)
    return _out(device_of(session, org, device_id))


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut, responses=ERRORS)
def revoke(device_id: DeviceId, org: CurrentOrg, session: SessionDep) -> DeviceOut:
    """Revoke a lost or retired device: its syncs are refused from now on (idempotent)."""
    require(org, Role.CUSTOMS, Role.ADMIN)
    return _out(revoke_device(session, org, device_id))


@router.post("/scans/sync", response_model=SyncResponse, responses=ERRORS)
def sync(body: SyncRequest, org: CurrentOrg, session: SessionDep, gateway: GatewayDep) -> Any:
    """Scans a device made offline, each signed with its key. The device must be registered to
    the calling agency and not revoked (403). Each scan is answered on its own: `accepted`
    with the online verdict (and `verdictDisagrees` when the device's offline verdict
    differs), `duplicate` when already synced, or `rejected` with a reason. Safe to retry."""
    require(org, Role.CUSTOMS, Role.ADMIN)
    device = syncing_device(session, org, body.deviceId)
    results = sync_scans(gateway, org, device, [(s.record, s.signature) for s in body.scans])
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        counts[r.status] += 1
    return {
        "deviceId": device.device_id,
        "counts": counts,
        "results": [r.to_dict() for r in results],
    }
