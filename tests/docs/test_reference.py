"""docs/reference.md is generated from the code and cannot drift from it."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_files import _docs
from airflow_provider_files.operators.batches import BatchOperator

from .support import README, REPO_ROOT

REFERENCE = REPO_ROOT / _docs.DEFAULT_OUTPUT


def test_the_committed_reference_matches_the_code() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == _docs.render_reference(), (
        "docs/reference.md is out of date: run `make docs` and commit the result"
    )


def test_every_parameter_of_the_reference_has_a_meaning() -> None:
    assert _docs.undocumented() == [], "add a :param: line to the class docstring"


def test_every_keyword_the_classes_accept_is_in_their_table() -> None:
    for dotted in _docs.REFERENCE_CLASSES:
        cls = _docs.load_class(dotted)
        names = {row.name for row in _docs.reference_rows(cls)}
        own = {
            name
            for name, param in inspect.signature(cls.__dict__["__init__"]).parameters.items()
            if name != "self" and param.kind is not inspect.Parameter.VAR_KEYWORD
        }
        assert own <= names, (cls.__name__, own - names)
        templated = set(getattr(cls, "template_fields", ()))
        assert templated <= names, (cls.__name__, templated - names)


class _KnobbedBatchOperator(BatchOperator):
    """A batch operator with one more knob.

    :param extra_knob_s: how long the knob waits | in seconds.
    """

    __module__ = "airflow_provider_files.operators.fake_for_tests"
    template_fields: Sequence[str] = (*BatchOperator.template_fields, "extra_knob_s")

    def __init__(self, *, extra_knob_s: float = 7200.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_knob_s = extra_knob_s


def test_a_parameter_added_to_the_code_appears_with_its_type_default_template_and_text() -> None:
    rows = {row.name: row for row in _docs.reference_rows(_KnobbedBatchOperator)}
    knob = rows["extra_knob_s"]
    assert (knob.type, knob.default, knob.templated) == ("float", "`7200.0` (2 h)", True)
    assert knob.meaning == "how long the knob waits | in seconds."
    # The base class's parameters come through **kwargs, with the base's docstring text.
    assert rows["input_file_id"].default == "required" and rows["input_file_id"].templated
    assert rows["cancel_on_kill"].meaning == "cancel the batch when the task is killed."
    table = _docs.render_class(_KnobbedBatchOperator, [_KnobbedBatchOperator])
    assert (
        "| `extra_knob_s` | `float` | `7200.0` (2 h) | yes | how long the knob waits \\| in seconds. |"
        in table
    )


def test_param_docs_join_continuation_lines_and_stop_at_the_next_field() -> None:
    doc = """Summary.

    :param first: one line
        and its continuation.
    :param second: alone.
    :return: not a parameter.
    """
    assert _docs.param_docs(doc) == {"first": "one line and its continuation.", "second": "alone."}
    assert (
        _docs.to_markdown("see :class:`~airflow_provider_files.api.Batch` and ``x``") == "see `Batch` and `x`"
    )


def test_check_mode_fails_on_a_stale_file_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    target = tmp_path / "reference.md"
    target.write_text("# stale\n", encoding="utf-8")
    assert _docs.main(["--check", "--output", str(target)]) == 1
    assert _docs.main(["--output", str(target)]) == 0
    assert _docs.main(["--check", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == _docs.render_reference()


def test_readme_links_the_reference_and_make_docs_regenerates_it() -> None:
    assert "](docs/reference.md)" in README.read_text(encoding="utf-8")
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\ndocs: setup\n\t$(BIN)/python -m airflow_provider_files._docs\n" in makefile
