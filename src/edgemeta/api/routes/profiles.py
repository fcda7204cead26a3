"""Device profile routes, including YAML upload, basic info, tags, resources and commands."""

from __future__ import annotations

from typing import Any

import yaml
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api.body import decode_one, json_compatible, parse_json, read_body
from edgemeta.api.handlers import ApiContext, bind, correlation_id, endpoint, path, run_batch
from edgemeta.api.query import check_range, list_query
from edgemeta.api.responses import base, ok, respond
from edgemeta.api.yaml_profile import load_profile
from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.profiles import validate_profile
from edgemeta.domain.records import DeviceProfile
from edgemeta.ports import Page
from edgemeta.usecases import profiles as uc


def parse_profile_yaml(text: bytes) -> docs.DeviceProfileDTO:
    """A DeviceProfile from YAML; ContractInvalid naming what is wrong.

    What YAML can say and JSON cannot (byte strings, sets, integer keys, huge integers,
    ``.nan``) is refused here, before it reaches a store that keeps JSON.
    """
    try:
        data = load_profile(text)
    except yaml.YAMLError as exc:
        raise ContractInvalid(f"device profile YAML cannot be parsed: {exc}") from None
    except RecursionError:
        raise ContractInvalid("device profile YAML is nested too deeply") from None
    except ValueError as exc:
        # Python refuses to convert integers of more than 4,300 digits (a guard against
        # quadratic-time parsing); such a number is bad input, not a server fault.
        raise ContractInvalid(f"device profile YAML holds an unusable value: {exc}") from None
    return decode_one(json_compatible(data, "profile"), docs.DeviceProfileDTO, "profile")


def _consistent(item: docs.DeviceProfileRequest) -> None:
    """The whole-profile rules, which EdgeX checks while decoding the request (one 400)."""
    try:
        validate_profile(docs.profile_record(item.profile))
    except ContractInvalid as exc:
        raise ContractInvalid(f"profile: {exc.message}") from None


def _page(page: Page[DeviceProfile], counts: dict[str, int] | None) -> Response:
    body = base(200)
    body["totalCount"] = page.total
    body["profiles"] = [docs.profile_doc(p, (counts or {}).get(p.name, 0)) for p in page.items]
    return respond(200, body)


async def upload(api: ApiContext, request: Request) -> docs.DeviceProfileDTO:
    """The profile of a multipart YAML upload (field ``file``, as in EdgeX)."""
    # Read under the size limit first; Starlette's form parser then reuses the body.
    request._body = await read_body(request, api.max_body_bytes)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ContractInvalid("expected a multipart/form-data body with a 'file' field")
    try:
        form = await request.form(max_files=1, max_fields=16)
    except Exception as exc:  # python-multipart raises several types for bad input
        raise ContractInvalid(f"multipart body cannot be parsed: {exc}") from None
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise ContractInvalid("missing yaml file: the form has no 'file' field")
    return parse_profile_yaml(await file.read())


async def add(api: ApiContext, request: Request) -> Response:
    """``POST /deviceprofile``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.DeviceProfileRequest) -> dict[str, Any]:
        return {"id": await uc.add_profile(deps, docs.profile_record(item.profile), cid)}

    return await run_batch(request, api, docs.DeviceProfileRequest, one, 201, check=_consistent)


async def put(api: ApiContext, request: Request) -> Response:
    """``PUT /deviceprofile``."""
    deps = api.deps
    uc.check_strict_changes(deps)  # EdgeX refuses the whole request before decoding it
    cid = correlation_id(request)

    async def one(item: docs.DeviceProfileRequest) -> dict[str, Any]:
        await uc.update_profile(deps, docs.profile_record(item.profile), cid)
        return {}

    return await run_batch(request, api, docs.DeviceProfileRequest, one, 200, check=_consistent)


async def add_yaml(api: ApiContext, request: Request) -> Response:
    """``POST /deviceprofile/uploadfile``."""
    deps = api.deps
    dto = await upload(api, request)
    new_id = await uc.add_profile(deps, docs.profile_record(dto), correlation_id(request))
    body = base(201)
    body["id"] = new_id
    return respond(201, body)


async def put_yaml(api: ApiContext, request: Request) -> Response:
    """``PUT /deviceprofile/uploadfile``."""
    deps = api.deps
    dto = await upload(api, request)  # EdgeX checks for the file before the 423
    await uc.update_profile(deps, docs.profile_record(dto), correlation_id(request))
    return ok()


async def by_name(api: ApiContext, request: Request) -> Response:
    """``GET /deviceprofile/name/{name}``."""
    deps = api.deps
    profile, linked = await uc.get_profile(deps, path(request, "name"))
    return ok(profile=docs.profile_doc(profile, linked))


async def delete(api: ApiContext, request: Request) -> Response:
    """``DELETE /deviceprofile/name/{name}``."""
    deps = api.deps
    await uc.delete_profile(deps, path(request, "name"), correlation_id(request))
    return ok()


async def all_(api: ApiContext, request: Request) -> Response:
    """``GET /deviceprofile/all``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count)
    page, counts = await uc.list_profiles(deps, q, with_counts=True)
    check_range(page.total, q)
    return _page(page, counts)


def filtered(api: ApiContext, manufacturer: bool, model: bool) -> Any:
    """The endpoint listing profiles by manufacturer, model, or both (from the path)."""
    deps = api.deps

    @endpoint
    async def handler(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count, with_labels=False)
        page, _ = await uc.list_profiles(
            deps,
            q,
            manufacturer=path(request, "manufacturer") if manufacturer else None,
            model=path(request, "model") if model else None,
        )
        check_range(page.total, q)
        return _page(page, None)  # EdgeX leaves linkedDeviceCount at 0 here

    return handler


async def basic_info_all(api: ApiContext, request: Request) -> Response:
    """``GET /deviceprofile/basicinfo/all``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count)
    page, counts = await uc.list_profiles(deps, q, with_counts=True)
    check_range(page.total, q)
    body = base(200)
    body["totalCount"] = page.total
    body["profiles"] = [docs.basic_info_doc(p, counts.get(p.name, 0)) for p in page.items]
    return respond(200, body)


async def basic_info(api: ApiContext, request: Request) -> Response:
    """``PATCH /deviceprofile/basicinfo``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.BasicInfoRequest) -> dict[str, Any]:
        await uc.patch_basic_info(deps, docs.basic_info_patch(item.basic_info), cid)
        return {}

    return await run_batch(request, api, docs.BasicInfoRequest, one, 200)


async def tags(api: ApiContext, request: Request) -> Response:
    """``PATCH /deviceprofile/name/{name}/tags``."""
    deps = api.deps
    data = parse_json(await read_body(request, api.max_body_bytes))
    req = decode_one(data, docs.TagsRequest)
    await uc.patch_tags(
        deps,
        path(request, "name"),
        docs.tags_updates(req.device_resources),
        docs.tags_updates(req.device_commands),
        correlation_id(request),
    )
    return respond(200, base(200, request_id=req.request_id or ""))


async def resource(api: ApiContext, request: Request) -> Response:
    """``GET /deviceresource/profile/{profileName}/resource/{resourceName}``."""
    deps = api.deps
    return ok(
        resource=docs.resource_doc(
            await uc.get_resource(deps, path(request, "profileName"), path(request, "resourceName"))
        )
    )


async def add_resource(api: ApiContext, request: Request) -> Response:
    """``POST /deviceprofile/resource``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.AddResourceRequest) -> dict[str, Any]:
        await uc.add_resource(deps, item.profile_name, docs.resource_record(item.resource), cid)
        return {}

    return await run_batch(request, api, docs.AddResourceRequest, one, 201)


async def patch_resource(api: ApiContext, request: Request) -> Response:
    """``PATCH /deviceprofile/resource``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.UpdateResourceRequest) -> dict[str, Any]:
        await uc.patch_resource(deps, item.profile_name, docs.resource_patch(item.resource), cid)
        return {}

    return await run_batch(request, api, docs.UpdateResourceRequest, one, 200)


async def delete_resource(api: ApiContext, request: Request) -> Response:
    """``DELETE /deviceprofile/name/{name}/resource/{resourceName}``."""
    deps = api.deps
    await uc.delete_resource(
        deps, path(request, "name"), path(request, "resourceName"), correlation_id(request)
    )
    return ok()


async def add_command(api: ApiContext, request: Request) -> Response:
    """``POST /deviceprofile/deviceCommand``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.AddCommandRequest) -> dict[str, Any]:
        await uc.add_command(deps, item.profile_name, docs.command_record(item.device_command), cid)
        return {}

    return await run_batch(request, api, docs.AddCommandRequest, one, 201)


async def patch_command(api: ApiContext, request: Request) -> Response:
    """``PATCH /deviceprofile/deviceCommand``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.UpdateCommandRequest) -> dict[str, Any]:
        await uc.patch_command(
            deps, item.profile_name, docs.command_patch(item.device_command), cid
        )
        return {}

    return await run_batch(request, api, docs.UpdateCommandRequest, one, 200)


async def delete_command(api: ApiContext, request: Request) -> Response:
    """``DELETE /deviceprofile/name/{name}/deviceCommand/{commandName}``."""
    deps = api.deps
    await uc.delete_command(
        deps, path(request, "name"), path(request, "commandName"), correlation_id(request)
    )
    return ok()


def routes(api: ApiContext) -> list[Route]:
    """The device profile routes."""
    return [
        Route("/deviceprofile", bind(api, add), methods=["POST"]),
        Route("/deviceprofile", bind(api, put), methods=["PUT"]),
        Route("/deviceprofile/uploadfile", bind(api, add_yaml), methods=["POST"]),
        Route("/deviceprofile/uploadfile", bind(api, put_yaml), methods=["PUT"]),
        Route("/deviceprofile/all", bind(api, all_), methods=["GET"]),
        Route("/deviceprofile/basicinfo", bind(api, basic_info), methods=["PATCH"]),
        Route("/deviceprofile/basicinfo/all", bind(api, basic_info_all), methods=["GET"]),
        Route("/deviceprofile/resource", bind(api, add_resource), methods=["POST"]),
        Route("/deviceprofile/resource", bind(api, patch_resource), methods=["PATCH"]),
        Route("/deviceprofile/deviceCommand", bind(api, add_command), methods=["POST"]),
        Route("/deviceprofile/deviceCommand", bind(api, patch_command), methods=["PATCH"]),
        Route("/deviceprofile/name/{name}", bind(api, by_name), methods=["GET"]),
        Route("/deviceprofile/name/{name}", bind(api, delete), methods=["DELETE"]),
        Route("/deviceprofile/name/{name}/tags", bind(api, tags), methods=["PATCH"]),
        Route(
            "/deviceprofile/name/{name}/resource/{resourceName}",
            bind(api, delete_resource),
            methods=["DELETE"],
        ),
        Route(
            "/deviceprofile/name/{name}/deviceCommand/{commandName}",
            bind(api, delete_command),
            methods=["DELETE"],
        ),
        Route(
            "/deviceprofile/manufacturer/{manufacturer}/model/{model}",
            filtered(api, True, True),
            methods=["GET"],
        ),
        Route(
            "/deviceprofile/manufacturer/{manufacturer}",
            filtered(api, True, False),
            methods=["GET"],
        ),
        Route("/deviceprofile/model/{model}", filtered(api, False, True), methods=["GET"]),
        Route(
            "/deviceresource/profile/{profileName}/resource/{resourceName}",
            bind(api, resource),
            methods=["GET"],
        ),
    ]
