"""How structured content becomes text the chunker keeps whole: blocks, tables and lists.

The chunker splits at blank lines first, so every block (a paragraph, a heading, a list, one
table row) is joined to the next with a blank line and never contains one itself. A table
row is one block that repeats the header row's names (`Year: 1967 | Team: Toronto`): it stays
in one chunk where it fits, and a chunk of rows still says what each value is.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from rag_pipeline.core.stages.extract.model import ExtractionError, one_line_reason

BLOCK_SEPARATOR = "\n\n"


def one_line(text: str) -> str:
    """A cell's or a title's text on one line, whitespace collapsed."""
    return " ".join(text.split())


def join_blocks(blocks: Iterable[str]) -> str:
    """Blocks separated by blank lines; a block's own blank lines are closed up."""
    kept = []
    for block in blocks:
        lines = [line.rstrip() for line in block.strip().splitlines()]
        text = "\n".join(line for line in lines if line.strip())
        if text:
            kept.append(text)
    return BLOCK_SEPARATOR.join(kept)


def table_blocks(rows: Sequence[Sequence[str]], spans_repeat: bool = True) -> list[str]:
    """A table as blocks: the header row, then each row with the header's names repeated.

    The header is the first row that names at least two columns: documents mark header rows
    inconsistently, and nearly every table's first such row is its header (rows above it are
    captions). Cells a
    merged cell spans arrive repeated in Word and PowerPoint (`spans_repeat`); they are
    written once.
    """
    table = [[one_line(cell) for cell in row] for row in rows]
    if spans_repeat:
        table = [_unrepeated(row) for row in table]
    table = [row for row in table if any(row)]
    # Title rows above the header (a sheet's caption) name one column at most.
    start = next((i for i, row in enumerate(table) if sum(1 for cell in row if cell) >= 2), None)
    if start is None or start == len(table) - 1:
        return [_plain_row(row) for row in table]
    header = table[start]
    blocks = [_plain_row(row) for row in table[: start + 1]]
    for row in table[start + 1 :]:
        cells: list[str] = []
        for index, cell in enumerate(row):
            if not cell:
                continue
            name = header[index] if index < len(header) else ""
            cells.append(f"{name}: {cell}" if name and name != cell else cell)
        blocks.append(" | ".join(cells))
    return blocks


def _plain_row(row: Sequence[str]) -> str:
    return " | ".join(cell for cell in row if cell)


def _unrepeated(row: list[str]) -> list[str]:
    return [cell if not index or cell != row[index - 1] else "" for index, cell in enumerate(row)]


def list_item(text: str, level: int = 0) -> str:
    return "  " * level + "- " + text


@contextmanager
def reading(kind: str) -> Iterator[None]:
    """Any failure of a format's parser means a damaged file: `damaged_document`, one line."""
    try:
        yield
    except (ExtractionError, MemoryError):  # memory is the sandbox's to report
        raise
    except Exception as err:  # parsers raise many unrelated types on broken input
        raise ExtractionError(
            "damaged_document", f"the {kind} is damaged: {one_line_reason(err)}"
        ) from None
