"""Reading ComfyUI's UI ("Save") format: its links, its frontend-only nodes and its subgraphs, flattened.

Plain Python: never imports bpy, and needs neither the server's ``/object_info`` nor the template model (both
:mod:`.convert` and :mod:`.schema` use this module; it uses neither).

Subgraphs (the frontend's reusable groups; facts from ComfyUI_frontend ``ExecutableNodeDTO.ts``, recorded in
``docs/protocols/comfyui.md``): a workflow keeps each definition once in ``definitions.subgraphs[]`` (with its
own ``nodes``, ``links`` as objects, ``inputs`` and ``outputs``), and a node whose ``type`` is a definition's ``id``
instances it; definitions nest. Inside a definition, a link from node ``-10`` leaves the subgraph's input
``origin_slot`` (the instance's input in that slot), and a link to node ``-20`` reaches its output
``target_slot``. When the frontend queues a prompt it inlines every instance: an inner node's id becomes the path of
instance ids down to it joined by ``:`` (``"12:5"``, ``"12:7:3"``). An instance input left unconnected gives the inner
input the instance's widget value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Node types that exist only in ComfyUI's frontend and never reach the server.
FRONTEND_ONLY_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
MODE_MUTED = 2
MODE_BYPASSED = 4
#: The pseudo nodes a subgraph definition's links start from (its inputs) and end at (its outputs).
SUBGRAPH_INPUT_ID = "-10"
SUBGRAPH_OUTPUT_ID = "-20"
#: Deeper nesting than this is refused as a loop (a definition that contains itself).
MAX_SUBGRAPH_DEPTH = 16
#: Key of a flattened node's input values that come from its subgraph instance, not its own widgets.
OVERRIDES = "_md_overrides"

#: ``(origin node, origin slot, target node, target slot, type)``
Link = tuple[str, int, str, int, str]


def is_ui_workflow(data: Any) -> bool:
    """True for ComfyUI's UI ("Save") format: a top-level ``nodes`` list."""
    return isinstance(data, Mapping) and isinstance(data.get("nodes"), list)


def parse_links(raw: Any) -> dict[int, Link]:
    """Links by id, from list-style (``[id, from, slot, to, slot, type]``) or object-style (schema 0.4+, subgraphs);
    a damaged link raises ValueError (a damaged file is reported, never half converted)."""
    links: dict[int, Link] = {}
    for link in raw if isinstance(raw, list) else []:
        try:
            if isinstance(link, (list, tuple)) and len(link) >= 5:
                kind = str(link[5]) if len(link) > 5 else "*"
                links[int(link[0])] = (str(link[1]), int(link[2]), str(link[3]), int(link[4]), kind)
            elif isinstance(link, Mapping) and "id" in link:
                links[int(link["id"])] = (
                    str(link["origin_id"]),
                    int(link["origin_slot"]),
                    str(link.get("target_id", "")),
                    int(link.get("target_slot", 0)),
                    str(link.get("type", "*")),
                )
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"link {str(link)[:80]} is malformed") from None
    return links


def is_active(node: Mapping[str, Any]) -> bool:
    return node.get("type") not in FRONTEND_ONLY_TYPES and node.get("mode", 0) not in (MODE_MUTED, MODE_BYPASSED)


@dataclass
class _Level:
    """One graph being inlined: the root, or one instance of a subgraph definition."""

    nodes: dict[str, Mapping[str, Any]]
    links: dict[int, Link]
    path: tuple[str, ...] = ()
    instance: Mapping[str, Any] | None = None
    parent: _Level | None = None
    definition: Mapping[str, Any] | None = None
    #: ``{(inner node id, input name): value}`` from the instance's promoted widgets.
    promoted: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: ``{subgraph input name: value}``: the instance's own widgets (``proxyWidgets`` entries ``["-1", name]``).
    input_values: dict[str, Any] = field(default_factory=dict)


class _Inliner:
    def __init__(self, ui_workflow: Mapping[str, Any]) -> None:
        definitions = ui_workflow.get("definitions")
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, Mapping) else None
        self.defs: dict[str, Mapping[str, Any]] = {
            str(d["id"]): d for d in subgraphs or [] if isinstance(d, Mapping) and "id" in d
        }
        self.root = _Level(_nodes_by_id(ui_workflow.get("nodes")), parse_links(ui_workflow.get("links")))
        self.flat_nodes: list[dict[str, Any]] = []
        self.flat_links: list[list[Any]] = []

    def is_instance(self, node: Mapping[str, Any]) -> bool:
        return str(node.get("type")) in self.defs and node.get("mode", 0) not in (MODE_MUTED, MODE_BYPASSED)

    def child(self, level: _Level, node_id: str, node: Mapping[str, Any]) -> _Level:
        definition = self.defs[str(node.get("type"))]
        if len(level.path) >= MAX_SUBGRAPH_DEPTH:
            raise ValueError(f"subgraph {node.get('type')} nests deeper than {MAX_SUBGRAPH_DEPTH} levels (a loop?)")
        child = _Level(
            _nodes_by_id(definition.get("nodes")),
            parse_links(definition.get("links")),
            (*level.path, node_id),
            node,
            level,
            definition,
        )
        props = node.get("properties")
        proxies = props.get("proxyWidgets") if isinstance(props, Mapping) else None
        values = node.get("widgets_values")
        if isinstance(proxies, list) and isinstance(values, list):
            for proxy, value in zip(proxies, values, strict=False):
                if isinstance(proxy, (list, tuple)) and len(proxy) == 2:
                    if str(proxy[0]) == "-1":  # a widget of the subgraph's own input of that name
                        child.input_values[str(proxy[1])] = value
                    else:
                        child.promoted[(str(proxy[0]), str(proxy[1]))] = value
        return child

    def resolve(self, level: _Level, link_id: Any, depth: int = 0) -> tuple[str, int, str] | tuple[None, Any]:
        """Where a link of ``level`` really starts: ``(flat node id, slot, type)``, or ``(None, widget value)``
        when it starts at an unconnected instance input (the value is ``_MISSING`` when there is none)."""
        if link_id is None or depth > 4 * MAX_SUBGRAPH_DEPTH:
            return None, _MISSING
        try:
            link = level.links.get(int(link_id))
        except (TypeError, ValueError):
            return None, _MISSING
        if link is None:
            return None, _MISSING
        origin, slot, _, _, kind = link
        if origin == SUBGRAPH_INPUT_ID and level.instance is not None and level.parent is not None:
            name = _definition_input_name(level, slot)
            inputs = [i for i in level.instance.get("inputs") or [] if isinstance(i, Mapping)]
            # By name: an instance saves only some of its inputs (those promoted as widgets are left out), so
            # the slot number is the definition's, not the instance's list position; by slot only without a name.
            if name is not None:
                outer = next((i for i in inputs if i.get("name") == name), None)
            else:
                outer = inputs[slot] if slot < len(inputs) else None
            if outer is not None and outer.get("link") is not None:
                return self.resolve(level.parent, outer.get("link"), depth + 1)
            if name is not None and name in level.input_values:
                return None, level.input_values[name]
            return None, _instance_widget_value(level.instance, outer) if outer is not None else _MISSING
        node = level.nodes.get(origin)
        if node is None:
            return None, _MISSING
        if self.is_instance(node):
            inner = self.child(level, origin, node)
            inner_link = _output_link(inner, slot)
            return self.resolve(inner, inner_link, depth + 1) if inner_link is not None else (None, _MISSING)
        return ":".join((*level.path, origin)), slot, kind

    def walk(self, level: _Level) -> None:
        for node_id, node in level.nodes.items():
            if self.is_instance(node):
                self.walk(self.child(level, node_id, node))
                continue
            flat = dict(node)
            flat["id"] = ":".join((*level.path, node_id))
            overrides: dict[str, Any] = {}
            inputs = []
            for ui_input in node.get("inputs") or []:
                if not isinstance(ui_input, Mapping):
                    continue
                new_input = dict(ui_input)
                new_input["link"] = None
                name = str(ui_input.get("name", ""))
                if ui_input.get("link") is not None:
                    where = self.resolve(level, ui_input.get("link"))
                    if where[0] is not None:
                        origin, slot, kind = where  # type: ignore[misc]
                        link_id = len(self.flat_links) + 1
                        self.flat_links.append([link_id, origin, slot, flat["id"], 0, kind])
                        new_input["link"] = link_id
                    elif where[1] is not _MISSING:
                        overrides[name] = where[1]
                if (node_id, name) in level.promoted and new_input["link"] is None:
                    overrides[name] = level.promoted[(node_id, name)]
                inputs.append(new_input)
            flat["inputs"] = inputs
            if overrides:
                flat[OVERRIDES] = overrides
            self.flat_nodes.append(flat)


_MISSING = object()


def _nodes_by_id(raw: Any) -> dict[str, Mapping[str, Any]]:
    return {str(n["id"]): n for n in raw if isinstance(n, Mapping) and "id" in n} if isinstance(raw, list) else {}


def _definition_input_name(level: _Level, slot: int) -> str | None:
    inputs = (level.definition or {}).get("inputs")
    if isinstance(inputs, list) and slot < len(inputs) and isinstance(inputs[slot], Mapping):
        name = inputs[slot].get("name")
        return str(name) if name is not None else None
    return None


def _output_link(level: _Level, slot: int) -> int | None:
    """The link inside a definition that feeds its output ``slot`` (its ``linkIds`` may list stale ids)."""
    for link_id, (_, _, target, target_slot, _) in level.links.items():
        if target == SUBGRAPH_OUTPUT_ID and target_slot == slot:
            return link_id
    return None


def _instance_widget_value(instance: Mapping[str, Any], ui_input: Mapping[str, Any]) -> Any:
    """The value an instance's own widget gives an unconnected input (widgets_values follow widget inputs)."""
    values = instance.get("widgets_values")
    if not isinstance(values, list) or not isinstance(ui_input.get("widget"), Mapping):
        return _MISSING
    widget_inputs = [i for i in instance.get("inputs") or [] if isinstance(i, Mapping) and i.get("widget")]
    index = next((n for n, i in enumerate(widget_inputs) if i is ui_input), None)
    return values[index] if index is not None and index < len(values) else _MISSING


def flatten(ui_workflow: Mapping[str, Any]) -> dict[str, Any]:
    """The UI workflow with every subgraph instance inlined (nested ones too), as the frontend does before it queues.

    Returns a UI-format graph ``{"nodes": [...], "links": [...]}`` of plain nodes whose ids are execution ids
    (``"12:5"`` inside instance 12). Raises ValueError for subgraphs nested in a loop or a damaged link.
    """
    inliner = _Inliner(ui_workflow)
    if not inliner.defs:
        return {"nodes": list(inliner.root.nodes.values()), "links": ui_workflow.get("links") or []}
    inliner.walk(inliner.root)
    return {"nodes": inliner.flat_nodes, "links": inliner.flat_links}


def ui_node_types(ui_workflow: Mapping[str, Any]) -> set[str]:
    """The node types a UI-format workflow needs on the server (active, non-frontend nodes, subgraphs expanded)."""
    try:
        nodes = flatten(ui_workflow)["nodes"]
    except ValueError:
        nodes = [n for n in ui_workflow.get("nodes") or [] if isinstance(n, Mapping)]
    return {str(n.get("type")) for n in nodes if isinstance(n, Mapping) and is_active(n)}
