"""API keys: an admin makes, lists and revokes them. A key's secret is shown once, at
creation, and stored only as a hash; a revoked key is refused from the next request."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from rag_api.deps import AdminDep, PrincipalDep, SettingsDep, StoreDep
from rag_api.errors import ApiError
from rag_api.schemas import ErrorResponse, KeyCreated, KeyIdentity, KeyIn, KeyOut
from rag_pipeline.core.registry import ApiKey, LastAdminKey, Role
from rag_pipeline.core.tenancy.api_keys import KeysService

router = APIRouter(prefix="/keys", tags=["keys"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)
}


def _out(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "collections": "*" if key.collections is None else list(key.collections),
        "created_at": datetime.fromtimestamp(key.created_at, UTC).isoformat(),
    }


@router.post("", status_code=201, response_model=KeyCreated, responses=_ERRORS)
def create_key(
    body: KeyIn, response: Response, settings: SettingsDep, store: StoreDep, _: AdminDep
) -> KeyCreated:
    """A new key with a role over some collections (an admin's: every one). The answer holds
    its secret, which cannot be read again.

    On an open API (RAG_OPEN_ACCESS, no key yet), the first key closes it to everyone without
    one, so it must be an admin key."""
    collections = None if body.collections == "*" else body.collections
    if not settings.api_key and not store.registry.tenancy.any_key() and body.role != Role.admin:
        raise ApiError(
            409,
            "first_key_admin",
            "the first key closes the open API: make it an admin key, or set RAG_API_KEY",
        )
    key, secret = KeysService(store.registry).create(body.name, body.role, collections)
    response.headers["Location"] = f"/keys/{key.id}"
    return KeyCreated(**_out(key), secret=secret)


@router.get("", response_model=list[KeyOut], responses=_ERRORS)
def list_keys(store: StoreDep, _: AdminDep) -> list[KeyOut]:
    """Every active key, oldest first, without secrets."""
    return [KeyOut(**_out(key)) for key in store.registry.tenancy.active_keys()]


@router.get("/me", response_model=KeyIdentity, responses=_ERRORS)
def who_am_i(settings: SettingsDep, store: StoreDep, principal: PrincipalDep) -> KeyIdentity:
    """The role and collections of the key this request carries, for any key: a client (the
    console) shows only what it may do."""
    collections = principal.collections
    return KeyIdentity(
        id=principal.key_id,
        role=principal.role,
        collections="*" if collections is None else sorted(collections),
        open=settings.open_access and not settings.api_key and not store.registry.tenancy.any_key(),
    )


@router.delete("/{key_id}", status_code=204, responses=_ERRORS)
def revoke_key(key_id: str, settings: SettingsDep, store: StoreDep, _: AdminDep) -> Response:
    """Revoke a key: it is refused from the next request on, and its event streams end.

    The last admin key cannot be revoked (409 `last_admin_key`) unless RAG_API_KEY is set,
    which stays a way in: revoking it must never leave the API without an admin, nor open it."""
    try:
        revoked = KeysService(store.registry).revoke(key_id, root_key_set=bool(settings.api_key))
    except LastAdminKey as exc:
        raise ApiError(
            409,
            "last_admin_key",
            "this is the last admin key: make another admin key first, or set RAG_API_KEY",
        ) from exc
    if not revoked:
        raise ApiError(404, "not_found", f"no key with id {key_id!r}")
    return Response(status_code=204)
