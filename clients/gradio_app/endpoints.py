"""What a Gradio app offers (its ``/info``), and finding the endpoint a client needs in apps that never named it.

Plain Python: this module never imports bpy. Gradio 4+ names every endpoint, after its Python function when the app
gave no ``api_name`` (``/text2audio``, ``/text2audio_1`` for a second one, ``/lambda`` for lambdas); Gradio 3.x apps
list them by index only. A :class:`EndpointQuery` finds an endpoint by those names first, then by its parameters
(name, label and component), and maps each *role* a client cares about ("text", "seed") to a parameter position, so
the client can build the arguments for whatever order the app uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...runtime.errors import InvalidRequestError, NotFoundError, ProtocolError, excerpt

_SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class Param:
    """One input of an endpoint, as ``/info`` describes it."""

    name: str  # the Python parameter name ("" for Gradio 3.x apps, which do not say)
    label: str
    component: str
    has_default: bool = False
    default: Any = None
    python_type: str = ""
    choices: tuple[Any, ...] = ()  # a Dropdown's or Radio's values, when the app lists them


@dataclass(frozen=True)
class EndpointInfo:
    """One callable endpoint: by ``api_name`` ("/text2audio") or, for unnamed ones, by ``fn_index``."""

    api_name: str | None
    fn_index: int | None
    params: tuple[Param, ...]
    returns: tuple[str, ...] = ()  # output component names

    @property
    def key(self) -> str | int:
        """What :meth:`GradioRunner.call` takes to call this endpoint."""
        return self.api_name if self.api_name is not None else int(self.fn_index or 0)

    def describe(self) -> str:
        """``/text2audio(text, duration, ...)``: for messages that say what an app offers."""
        names = ", ".join(p.name or p.label[:24] or p.component for p in self.params)
        return f"{self.api_name or f'#{self.fn_index}'}({names})"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True)
class AppInfo:
    """Everything ``/info`` says about an app."""

    url: str
    version: str
    endpoints: tuple[EndpointInfo, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def endpoint(self, name: str) -> EndpointInfo | None:
        name = "/" + name.lstrip("/")
        return next((e for e in self.endpoints if e.api_name == name), None)

    def describe(self) -> str:
        return "; ".join(e.describe() for e in self.endpoints) or "no endpoints"


def _param(raw: Any, where: str, backend: str) -> Param:
    if not isinstance(raw, Mapping):
        raise ProtocolError(f"/info describes a parameter of {where} as {type(raw).__name__}", backend=backend)
    type_info = raw.get("type") if isinstance(raw.get("type"), Mapping) else {}
    enum = type_info.get("enum") if isinstance(type_info, Mapping) else None
    python_type = raw.get("python_type")
    return Param(
        name=str(raw.get("parameter_name") or ""),
        label=str(raw.get("label") or ""),
        component=str(raw.get("component") or ""),
        has_default=bool(raw.get("parameter_has_default", False)),
        default=raw.get("parameter_default"),
        python_type=str(python_type.get("type", "")) if isinstance(python_type, Mapping) else "",
        choices=tuple(enum) if isinstance(enum, list) else (),
    )


def _endpoint(api_name: str | None, fn_index: int | None, raw: Any, backend: str) -> EndpointInfo:
    where = api_name or f"endpoint #{fn_index}"
    params: Any = raw.get("parameters", []) if isinstance(raw, Mapping) else None
    if not isinstance(params, list):
        raise ProtocolError(f"/info describes {where} in a shape Movie Director cannot read", backend=backend)
    returns: Any = raw.get("returns")
    return EndpointInfo(
        api_name=api_name,
        fn_index=fn_index,
        params=tuple(_param(p, where, backend) for p in params),
        returns=tuple(str(r.get("component", "")) for r in returns if isinstance(r, Mapping))
        if isinstance(returns, list)
        else (),
    )


def parse_info(raw: Any, *, url: str, version: str = "", backend: str = "") -> AppInfo:
    """``/info`` (or ``Client.view_api(return_format="dict")``) as an :class:`AppInfo`; malformed -> ProtocolError."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("named_endpoints", {}), Mapping):
        raise ProtocolError(f"{url} describes its API in a shape Movie Director cannot read", backend=backend)
    endpoints = [_endpoint(str(name), None, spec, backend) for name, spec in raw.get("named_endpoints", {}).items()]
    unnamed = raw.get("unnamed_endpoints") or {}
    if isinstance(unnamed, Mapping):
        for index, spec in unnamed.items():
            try:
                fn_index = int(index)
            except (TypeError, ValueError):
                raise ProtocolError(f"{url} lists an endpoint with index {index!r}", backend=backend) from None
            endpoints.append(_endpoint(None, fn_index, spec, backend))
    return AppInfo(url=url, version=version, endpoints=tuple(endpoints), raw=raw)


@dataclass(frozen=True)
class Role:
    """A parameter a client wants to fill, recognised by words in its name or label (case-insensitive)."""

    keywords: tuple[str, ...]
    components: tuple[str, ...] = ()  # e.g. ("Textbox",); empty = any component
    required: bool = True


@dataclass(frozen=True)
class EndpointQuery:
    """How to recognise one endpoint: by function/api name, or by having parameters for every required role."""

    names: tuple[str, ...] = ()
    roles: Mapping[str, Role] = field(default_factory=dict)
    what: str = "the endpoint"  # for messages: "a text-to-audio endpoint"


@dataclass(frozen=True)
class EndpointMatch:
    """The endpoint found, and which parameter position plays each role."""

    endpoint: EndpointInfo
    roles: Mapping[str, int]
    by: str  # "name" or "parameters"

    @property
    def key(self) -> str | int:
        return self.endpoint.key

    def has(self, role: str) -> bool:
        return role in self.roles

    def arguments(self, values: Mapping[str, Any], *, backend: str = "") -> list[Any]:
        """Positional arguments: each role's value at its position, the app's defaults everywhere else."""
        by_index = {index: role for role, index in self.roles.items()}
        args = []
        for index, param in enumerate(self.endpoint.params):
            role = by_index.get(index)
            if role is not None and role in values:
                args.append(values[role])
            elif param.has_default:
                args.append(param.default)
            else:
                raise InvalidRequestError(
                    f"{self.endpoint.describe()} needs {param.label or param.name or f'input {index}'!r}, "
                    "which Movie Director does not know how to fill",
                    backend=backend,
                    hint="Point this backend at an app of the kind it supports.",
                )
        return args


def _score(role: Role, param: Param) -> int:
    if role.components and param.component not in role.components:
        return 0
    name, label = param.name.lower(), param.label.lower()
    best = 0
    for word in (k.lower() for k in role.keywords):
        if name == word:
            best = max(best, 4)
        elif name and word in name:
            best = max(best, 3)
        elif label.startswith(word):
            best = max(best, 2)
        elif word in label:
            best = max(best, 1)
    return best


def assign_roles(endpoint: EndpointInfo, roles: Mapping[str, Role]) -> dict[str, int]:
    """Give each role its best-scoring free parameter (strongest evidence first, then role and parameter order)."""
    order = list(roles)
    pairs = [
        (-score, order.index(role_name), index, role_name)
        for role_name, role in roles.items()
        for index, param in enumerate(endpoint.params)
        if (score := _score(role, param)) > 0
    ]
    assigned: dict[str, int] = {}
    taken: set[int] = set()
    for _neg, _order, index, role_name in sorted(pairs):
        if role_name not in assigned and index not in taken:
            assigned[role_name] = index
            taken.add(index)
    return assigned


def _base_name(api_name: str | None) -> str:
    return _SUFFIX.sub("", (api_name or "").lstrip("/")).lower()


def match_endpoint(endpoints: Sequence[EndpointInfo], candidates: Sequence[EndpointQuery]) -> EndpointMatch | None:
    """The first candidate's best endpoint: an exact name, a numbered auto-name (``/text2audio_1``), then the
    endpoint whose parameters cover every required role with the fewest inputs left to defaults."""
    for query in candidates:
        wanted = [n.lstrip("/").lower() for n in query.names]
        for exact in (True, False):
            for endpoint in endpoints:
                name = (endpoint.api_name or "").lstrip("/").lower()
                if (name in wanted) if exact else (_base_name(endpoint.api_name) in wanted):
                    return EndpointMatch(endpoint, assign_roles(endpoint, query.roles), "name")
        required = {name for name, role in query.roles.items() if role.required}
        if not required:
            continue
        best: tuple[int, int, EndpointMatch] | None = None
        for position, endpoint in enumerate(endpoints):
            roles = assign_roles(endpoint, query.roles)
            if not required <= set(roles):
                continue
            unfilled = sum(1 for i, p in enumerate(endpoint.params) if i not in roles.values() and not p.has_default)
            rank = (unfilled, position)
            if best is None or rank < best[:2]:
                best = (*rank, EndpointMatch(endpoint, roles, "parameters"))
        if best is not None:
            return best[2]
    return None


def not_found(info: AppInfo, candidates: Sequence[EndpointQuery], backend: str) -> NotFoundError:
    what = candidates[0].what if candidates else "the endpoint"
    return NotFoundError(
        f"{info.url} has no {what}; it offers: {excerpt(info.describe(), 600)}",
        backend=backend,
        details={"endpoints": [e.describe() for e in info.endpoints]},
        hint="Check that the URL points at the right app (and that it is the app's current version).",
    )
