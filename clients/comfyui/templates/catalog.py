"""The template catalog: the built-in templates plus the film-maker's own files, never brought down by a bad one.

Plain Python: never imports bpy.

A user folder may hold, as ``*.json`` files (searched recursively):

(a) our template format: an object with ``workflow`` and usually ``params`` (see :class:`.schema.Template`); the id
    defaults to the file name;
(b) a plain ComfyUI API-format workflow ("Export (API)"): parameters are inferred, see :mod:`.convert`; in short,
    title a node ``param:<name>`` or ``$<name>`` to expose its first widget input as parameter ``<name>``; a
    checkpoint loader of ComfyUI's own becomes a ``checkpoint`` model parameter that keeps the saved file by default;
(c) a ComfyUI UI-format workflow (the normal "Save"): converted with the server's ``/object_info``, at load time when
    the catalog has it, otherwise later by :meth:`TemplateCatalog.resolve`.

A file that cannot be read is logged, listed in :attr:`TemplateCatalog.problems` and skipped. A user template with
the id of a built-in or of an earlier file replaces it, so a film-maker can adapt ``txt2img`` to their own server.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ....runtime.errors import InvalidRequestError, MovieDirectorError, NotFoundError
from ..models import MODEL_KINDS, kind_choices
from .convert import (
    guess_category,
    infer_params,
    is_api_workflow,
    ui_to_api,
)
from .requirements import missing_in_workflow
from .schema import BACKEND, Template
from .ui_graph import is_ui_workflow, ui_node_types

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "builtin"
#: Bigger files are not workflows; refusing them keeps a stray video from being read into memory.
MAX_FILE_BYTES = 20 * 1024 * 1024

ObjectInfo = Mapping[str, Any]
ObjectInfoProvider = ObjectInfo | Callable[[], ObjectInfo | None] | None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.strip().lower()).strip("-") or "template"


def _convert(template: Template, object_info: ObjectInfo) -> Template:
    """A UI-format template made usable: API-format workflow, and inferred parameters if it declared none."""
    try:
        workflow = ui_to_api(template.ui_workflow or {}, object_info)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as ex:
        raise InvalidRequestError(
            f"template {template.id!r} is a malformed UI-format workflow ({type(ex).__name__}: {ex})",
            backend=BACKEND,
            details={"template": template.id},
        ) from ex
    data = template.model_dump(exclude={"ui_workflow", "workflow"})
    data["workflow"] = workflow
    if not data["params"]:
        data["params"] = [p.model_dump() for p in infer_params(workflow)]
    try:
        return Template.model_validate(data)
    except ValidationError as ex:
        raise InvalidRequestError(
            f"template {template.id!r} is not usable after conversion: {_first_error(ex)}",
            backend=BACKEND,
            details={"template": template.id},
        ) from ex


def _first_error(ex: ValidationError) -> str:
    err = ex.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def template_from_data(
    data: Any, *, default_id: str, source: str = "", object_info: ObjectInfo | None = None
) -> Template:
    """A template from parsed JSON in any of the three accepted shapes; ValueError says why not."""
    if not isinstance(data, Mapping):
        raise ValueError("the file does not hold a JSON object")
    if "workflow" in data:
        fields = dict(data)
        fields.setdefault("id", default_id)
        if is_ui_workflow(fields["workflow"]):
            fields["ui_workflow"], fields["workflow"] = fields["workflow"], {}
            fields.setdefault("category", guess_category(ui_node_types(fields["ui_workflow"])))
        elif not fields.get("params") and is_api_workflow(fields["workflow"]):
            fields["params"] = infer_params(fields["workflow"])
        template = Template.model_validate({**fields, "source": source})
    elif is_ui_workflow(data):
        template = Template(
            id=default_id,
            category=guess_category(ui_node_types(data)),
            tags=["user"],
            ui_workflow=dict(data),
            source=source,
        )
    elif is_api_workflow(data):
        workflow = {str(k): v for k, v in data.items()}
        template = Template(
            id=default_id,
            category=guess_category({str(n["class_type"]) for n in workflow.values()}),
            tags=["user"],
            workflow=workflow,
            params=infer_params(workflow),
            source=source,
        )
    else:
        raise ValueError(
            "not a template: expected our template format (with 'workflow'), a ComfyUI API-format workflow "
            "or a ComfyUI UI-format workflow (with 'nodes')"
        )
    if template.needs_conversion and object_info is not None:
        template = _convert(template, object_info)
    return template


def load_template_file(path: str | Path, object_info: ObjectInfo | None = None) -> Template:
    """Read one template file; ValueError (or a MovieDirectorError from conversion) says what is wrong with it."""
    path = Path(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as ex:
        raise ValueError(f"not valid JSON: {ex}") from ex
    except UnicodeDecodeError as ex:
        raise ValueError("not a UTF-8 text file") from ex
    return template_from_data(data, default_id=_slug(path.stem), source=str(path), object_info=object_info)


def missing_requirements(template: Template, object_info: ObjectInfo) -> list[str]:
    """What the server lacks to run ``template``: node types, then model files and other unknown choices.

    Inputs set by an image parameter are skipped (their file is uploaded per job), and so are those of a model
    parameter (the server's list supplies the file per job): for those, only a server with no model of that kind at
    all is reported.
    """
    if template.needs_conversion:
        missing = [f"node type {t}" for t in sorted(template.required_nodes) if t not in object_info]
        if missing:
            return missing
        template = _convert(template, object_info)
    per_job = {
        (nid, target.input)
        for param in template.params
        if param.type in ("image", "model")
        for target in param.targets
        for nid in target.find(template.workflow)
    }
    found: list[str] = []
    for param in template.params:
        kind = MODEL_KINDS.get(str(param.kind)) if param.type == "model" else None
        if kind is not None and kind.node in object_info and not kind_choices(object_info, kind):
            found.append(f"a {kind.noun} for {param.name} (none in {kind.where})")
    found += missing_in_workflow(
        template.workflow, object_info, per_job=per_job, required_models=template.required_models
    )
    return list(dict.fromkeys(found))


class TemplateCatalog:
    """Built-in and user templates by id; bad user files end up in :attr:`problems`, never in an exception."""

    def __init__(
        self,
        object_info: ObjectInfoProvider = None,
        *,
        folders: Iterable[str | Path] = (),
        include_builtin: bool = True,
    ) -> None:
        self.object_info = object_info
        self.problems: list[tuple[Path, str]] = []
        self._templates: dict[str, Template] = {}
        self._folders: list[Path] = []
        self._include_builtin = include_builtin
        if include_builtin:
            self._load_dir(BUILTIN_DIR, builtin=True)
        for folder in folders:
            self.add_folder(folder)

    def _object_info(self) -> ObjectInfo | None:
        source = self.object_info
        if callable(source):
            try:
                return source()
            except MovieDirectorError as ex:
                log.info("no /object_info for template conversion: %s", ex)
                return None
        return source

    def _problem(self, path: Path, message: str) -> None:
        log.warning("skipped template %s: %s", path, message)
        self.problems.append((path, message))

    def _load_dir(self, folder: Path, *, builtin: bool = False) -> list[str]:
        loaded: list[str] = []
        object_info = None if builtin else self._object_info()
        for path in sorted(folder.glob("*.json") if builtin else folder.rglob("*.json")):
            try:
                template = load_template_file(path, object_info)
            except ValidationError as ex:
                self._problem(path, _first_error(ex))
                continue
            except MovieDirectorError as ex:
                self._problem(path, ex.message)
                continue
            except (OSError, ValueError) as ex:
                self._problem(path, str(ex))
                continue
            except Exception as ex:  # a user's odd file must never break the catalog
                self._problem(path, f"{type(ex).__name__}: {ex}")
                continue
            if builtin:
                template = template.model_copy(update={"source": "builtin"})
            elif template.id in self._templates:
                log.info(
                    "template %s from %s replaces the one from %s",
                    template.id,
                    path,
                    self._templates[template.id].source,
                )
            self._templates[template.id] = template
            loaded.append(template.id)
        return loaded

    def add_folder(self, path: str | Path) -> list[str]:
        """Load every ``*.json`` under ``path``; returns the ids loaded (problems go to :attr:`problems`)."""
        folder = Path(path).expanduser()
        if not folder.is_dir():
            self._problem(folder, "not a folder")
            return []
        if folder not in self._folders:
            self._folders.append(folder)
        return self._load_dir(folder)

    def add(self, template: Template) -> None:
        """Register a template made in code (it replaces one with the same id)."""
        self._templates[template.id] = template

    def reload(self) -> None:
        """Read the built-ins and every added folder again, e.g. after the film-maker edited a file."""
        self._templates.clear()
        self.problems.clear()
        if self._include_builtin:
            self._load_dir(BUILTIN_DIR, builtin=True)
        for folder in list(self._folders):
            self.add_folder(folder)

    @property
    def ids(self) -> list[str]:
        """Every template id, sorted."""
        return sorted(self._templates)

    def get(self, template_id: str) -> Template:
        """The template called ``template_id`` (possibly still needing conversion: see :meth:`resolve`)."""
        try:
            return self._templates[template_id]
        except KeyError:
            raise NotFoundError(
                f"no template {template_id!r}; known templates: {', '.join(self.ids) or 'none'}",
                backend=BACKEND,
                details={"id": template_id, "known": self.ids},
                hint="Pick one of the known templates, or add a folder of templates in the preferences.",
            ) from None

    def resolve(self, template_id: str, object_info: ObjectInfo | None = None) -> Template:
        """The template ready to build: a UI-format one is converted (and kept converted) with ``object_info``.

        Without ``object_info`` the catalog's own provider is asked; InvalidRequestError when neither has it.
        """
        template = self.get(template_id)
        if not template.needs_conversion:
            return template
        info = object_info if object_info is not None else self._object_info()
        if info is None:
            raise InvalidRequestError(
                f"template {template_id!r} is a UI-format workflow and needs the server's node list to be converted",
                backend=BACKEND,
                details={"template": template_id},
                hint="Connect to the ComfyUI server first.",
            )
        converted = _convert(template, info)
        self._templates[template_id] = converted
        return converted

    def missing_requirements(self, template: Template | str, object_info: ObjectInfo) -> list[str]:
        """Readable names of the node types and model files the server lacks for ``template`` (a template or id)."""
        if isinstance(template, str):
            template = self.get(template)
        return missing_requirements(template, object_info)

    def list(
        self,
        category: str | None = None,
        tags: str | Iterable[str] | None = None,
        backend: str | None = None,
    ) -> list[Template]:
        """Templates sorted by id, filtered by category, by backend, and to those carrying every tag in ``tags``."""
        wanted = {tags} if isinstance(tags, str) else set(tags or ())
        return [
            t
            for _, t in sorted(self._templates.items())
            if (category is None or t.category == category)
            and (backend is None or t.backend == backend)
            and wanted.issubset(t.tags)
        ]
