"""The settings' documentation, made from the class itself: the variables each field is read
from, its default as `.env.example` writes it, and the configuration table of
docs/configuration.md (`python -m rag_pipeline.settings --update docs/configuration.md`)."""

import argparse
import json
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from rag_pipeline.settings import ENV_PREFIX, Settings, get_settings

# Where the generated table sits in a Markdown page.
TABLE_BEGIN, TABLE_END = "<!-- settings:begin -->\n", "<!-- settings:end -->"


def env_names(field: FieldInfo, name: str) -> list[str]:
    """The variables a field is read from, the preferred one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"{ENV_PREFIX}{name.upper()}"]


def shown_default(field: FieldInfo) -> str:
    """A field's default as it is written in `.env.example`."""
    value = field.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return str(value) if value.is_absolute() else f"./{value}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def markdown_table() -> str:
    """The configuration table, one row per field."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        first, *older = env_names(field, name)
        variable = f"`{first}`" + "".join(f" (or `{old}`)" for old in older)
        default = shown_default(field)
        meaning = " ".join((field.description or "").split())
        rows.append(f"| {variable} | {f'`{default}`' if default else 'empty'} | {meaning} |")
    return "\n".join(rows) + "\n"


def with_current_table(page: str) -> str:
    """`page` with the table between its settings markers replaced by the current one."""
    if page.count(TABLE_BEGIN) != 1 or page.count(TABLE_END) != 1:
        raise ValueError(f"expected one {TABLE_BEGIN.strip()} and one {TABLE_END}")
    head, rest = page.split(TABLE_BEGIN)
    tail = rest.split(TABLE_END)[1]
    return head + TABLE_BEGIN + markdown_table() + TABLE_END + tail


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rag_pipeline.settings", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="print the configuration table")
    parser.add_argument(
        "--update", type=Path, metavar="PAGE", help="rewrite the table in PAGE between its markers"
    )
    args = parser.parse_args()
    if args.update:
        args.update.write_text(with_current_table(args.update.read_text()))
    elif args.markdown:
        print(markdown_table(), end="")
    else:
        print(json.dumps(get_settings().redacted(), indent=2))
