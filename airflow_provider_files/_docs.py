"""Generate ``docs/reference.md``, the parameter reference of the operators and sensors, from the code.

Each table is read from the class itself: its ``__init__`` signature (and the signatures of the
provider base classes it passes ``**kwargs`` to) gives the names, types and defaults,
``template_fields`` says what is templated, and the ``:param:`` lines of the docstrings give the
meaning. Nothing is written by hand, so the reference cannot drift from the code: a test compares
the committed file with a fresh rendering.

Regenerate with ``make docs`` (``python -m airflow_provider_files._docs``); ``--check`` exits 1 when
the file is out of date.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "airflow_provider_files"
DEFAULT_OUTPUT = Path("docs") / "reference.md"

#: The public classes of the reference, in the order a DAG uses them.
REFERENCE_CLASSES: tuple[str, ...] = (
    "airflow_provider_files.operators.files.UploadJsonlOperator",
    "airflow_provider_files.operators.files.ChunkedUploadOperator",
    "airflow_provider_files.sensors.files.UploadCompleteSensor",
    "airflow_provider_files.operators.batches.BatchOperator",
    "airflow_provider_files.operators.batch_results.DownloadBatchResultsOperator",
    "airflow_provider_files.sensors.batches.BatchCompleteSensor",
)

#: Parameters without the ``_s`` suffix that are nevertheless seconds (Airflow's sensor arguments).
SECONDS_PARAMETERS = frozenset({"poke_interval", "timeout"})
MIB_BYTES = 1024 * 1024

_PARAM_LINE = re.compile(r"^:param\s+(?:[\w\[\], |.]+\s+)?(\w+):\s*(.*)$")
_ROLE = re.compile(r":(?:class|mod|meth|func|attr|exc|data|obj):`~?([^`]+)`")


@dataclass(frozen=True)
class ParameterDoc:
    """One row of a reference table.

    :param name: the keyword argument.
    :param type: its annotation, as written in the code.
    :param default: its default, rendered (``required`` when it has none).
    :param templated: whether it is one of the class's ``template_fields``.
    :param meaning: the ``:param:`` text of the docstrings, in Markdown.
    """

    name: str
    type: str
    default: str
    templated: bool
    meaning: str


def load_class(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not isinstance(cls, type):
        raise TypeError(f"{dotted} is not a class")
    return cls


def _is_provider_class(cls: type) -> bool:
    return cls.__module__.split(".")[0] == PACKAGE


def _own_init_parameters(cls: type) -> tuple[list[inspect.Parameter], bool]:
    """The keyword parameters ``cls.__init__`` declares, and whether it passes on ``**kwargs``."""
    signature = inspect.signature(cls.__dict__["__init__"])
    params: list[inspect.Parameter] = []
    passes_kwargs = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            passes_kwargs = True
        elif param.name != "self" and param.kind is not inspect.Parameter.VAR_POSITIONAL:
            params.append(param)
    return params, passes_kwargs


def declared_parameters(cls: type) -> list[tuple[inspect.Parameter, type]]:
    """Every keyword argument the class takes from the provider's code, with the class declaring it.

    The class's own ``__init__`` first, then each provider base class its ``**kwargs`` reach;
    Airflow's own ``BaseOperator``/``BaseSensorOperator`` arguments are left out.
    """
    found: dict[str, tuple[inspect.Parameter, type]] = {}
    for klass in cls.__mro__:
        if not _is_provider_class(klass):
            break
        if "__init__" not in klass.__dict__:
            continue
        params, passes_kwargs = _own_init_parameters(klass)
        for param in params:
            found.setdefault(param.name, (param, klass))
        if not passes_kwargs:
            break
    return list(found.values())


def param_docs(docstring: str | None) -> dict[str, str]:
    """``{name: text}`` of the ``:param name: text`` fields of a docstring (continuation lines joined)."""
    docs: dict[str, str] = {}
    current: str | None = None
    for raw in inspect.cleandoc(docstring or "").splitlines():
        line = raw.strip()
        match = _PARAM_LINE.match(line)
        if match:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif current is not None and line and not line.startswith(":") and raw[:1].isspace():
            docs[current] = f"{docs[current]} {line}".strip()
        else:
            current = None
    return docs


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?\.)(\s|$)", text)
    return match.group(1) if match else text


def to_markdown(text: str) -> str:
    """reStructuredText inline markup as Markdown, on one line."""
    text = _ROLE.sub(lambda m: "``" + m.group(1).rsplit(".", 1)[-1] + "``", text)
    text = text.replace("``", "`")
    return " ".join(text.split())


def _meaning(name: str, cls: type, owner: type, all_classes: Sequence[type]) -> str:
    """The parameter's text: from the class and its bases (Airflow's own cut to one sentence), else
    from another documented class that inherits the parameter from the same base."""
    for klass in cls.__mro__:
        text = param_docs(klass.__doc__).get(name)
        if text:
            return text if _is_provider_class(klass) else _first_sentence(text)
    for other in all_classes:
        if other is not cls and issubclass(other, owner):
            text = param_docs(other.__doc__).get(name)
            if text:
                return text
    return ""


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return ""


def render_default(name: str, param: inspect.Parameter) -> str:
    if param.default is inspect.Parameter.empty:
        return "required"
    value = param.default
    shown = repr(value)
    hint = ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if name.endswith("_bytes") and value >= MIB_BYTES:
            hint = f"{value / MIB_BYTES:g} MiB"
        elif name.endswith("_s") or name in SECONDS_PARAMETERS:
            hint = _duration(float(value))
    return f"`{shown}` ({hint})" if hint else f"`{shown}`"


def _annotation(param: inspect.Parameter) -> str:
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def reference_rows(cls: type, all_classes: Sequence[type] = ()) -> list[ParameterDoc]:
    templated = set(getattr(cls, "template_fields", ()))
    return [
        ParameterDoc(
            name=param.name,
            type=_annotation(param),
            default=render_default(param.name, param),
            templated=param.name in templated,
            meaning=to_markdown(_meaning(param.name, cls, owner, all_classes or (cls,))),
        )
        for param, owner in declared_parameters(cls)
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _summary(cls: type) -> str:
    doc = inspect.cleandoc(cls.__doc__ or "")
    return to_markdown(doc.split("\n\n", 1)[0])


def _base_note(cls: type) -> str:
    names = [
        klass.__name__ for klass in cls.__mro__ if klass.__name__ in ("BaseSensorOperator", "BaseOperator")
    ]
    if "BaseSensorOperator" in names:
        return (
            "Plus the arguments of Airflow's `BaseSensorOperator` (`mode`, `soft_fail`, "
            "`exponential_backoff` ...) and `BaseOperator` (`task_id`, `retries`, `pool` ...)."
        )
    return "Plus the arguments of Airflow's `BaseOperator` (`task_id`, `retries`, `pool`, `execution_timeout` ...)."


def render_class(cls: type, all_classes: Sequence[type]) -> str:
    lines = [
        f"## {cls.__name__}",
        "",
        f"`from {cls.__module__} import {cls.__name__}`",
        "",
        _summary(cls),
        "",
        "| name | type | default | templated | meaning |",
        "|---|---|---|---|---|",
    ]
    for row in reference_rows(cls, all_classes):
        lines.append(
            f"| `{row.name}` | `{_cell(row.type)}` | {_cell(row.default)} | "
            f"{'yes' if row.templated else 'no'} | {_cell(row.meaning)} |"
        )
    lines += ["", _base_note(cls), ""]
    return "\n".join(lines)


def render_config() -> str:
    """The provider's options of Airflow's configuration, from ``get_provider_info()["config"]``."""
    from airflow_provider_files.get_provider_info import get_provider_info

    lines = [
        "## Configuration",
        "",
        "Options of Airflow's configuration (`airflow.cfg`, or the environment variable shown), read",
        "from the provider's `get_provider_info()`.",
        "",
    ]
    for section, spec in get_provider_info()["config"].items():
        lines += [
            f"### [{section}]",
            "",
            spec["description"],
            "",
            "| option | environment variable | type | default | meaning |",
            "|---|---|---|---|---|",
        ]
        for option, entry in spec["options"].items():
            default = "none" if entry.get("default") is None else f"`{entry['default']}`"
            example = f" Example: `{entry['example']}`." if entry.get("example") else ""
            lines.append(
                f"| `{option}` | `AIRFLOW__{section.upper()}__{option.upper()}` | {entry['type']} | "
                f"{default} | {_cell(entry['description'] + example)} |"
            )
        lines.append("")
    return "\n".join(lines)


def render_reference(class_names: Sequence[str] = REFERENCE_CLASSES) -> str:
    classes = [load_class(name) for name in class_names]
    header = [
        "# Parameter reference",
        "",
        "<!-- Generated from the code by `make docs` (python -m airflow_provider_files._docs); do not edit. -->",
        "",
        "Every operator and sensor of the provider: keyword arguments with their type, default, whether",
        "they are templated (Jinja, or an XComArg resolved at run time) and what they do. Read from each",
        "class's signature, `template_fields` and docstring; a test fails when this file is out of date.",
        "",
        *[f"- [{cls.__name__}](#{cls.__name__.lower()})" for cls in classes],
        "- [Configuration](#configuration)",
        "",
    ]
    classes_text = "\n".join(render_class(cls, classes) for cls in classes)
    return "\n".join(header) + "\n" + classes_text + "\n" + render_config()


def undocumented(class_names: Sequence[str] = REFERENCE_CLASSES) -> list[str]:
    """``Class.param`` for every parameter of the reference that has no ``:param:`` text."""
    classes = [load_class(name) for name in class_names]
    return [
        f"{cls.__name__}.{row.name}"
        for cls in classes
        for row in reference_rows(cls, classes)
        if not row.meaning
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_files._docs", description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not up to date")
    args = parser.parse_args(argv)
    text = render_reference()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    for name in undocumented():
        print(f"warning: {name} has no :param: text", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
