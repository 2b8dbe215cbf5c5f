"""The README's self-hosted Portkey connection is the one `make interop` runs (docs/gateways.md)."""

from __future__ import annotations

import json
import re

from tests.interop.support import doc_block

from .support import README


def test_readme_portkey_self_hosted_connection_is_the_tested_one() -> None:
    text = README.read_text()
    match = re.search(r"export AIRFLOW_CONN_PORTKEY_FILES='(.*?)'", text, re.S)
    assert match is not None, "the README has no AIRFLOW_CONN_PORTKEY_FILES example"
    assert json.loads(match.group(1)) == json.loads(doc_block("portkey-self-hosted"))
