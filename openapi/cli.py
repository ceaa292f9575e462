"""``qala openapi``: build and check the open-API mandate documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openapi.build import MANDATE_DIR, drift, spec_errors, write_all
from qala.cli import CliError
from schemas import SchemaRegistry

app = typer.Typer(help="The open-API mandate: one OpenAPI 3.1 document per collection.", no_args_is_help=True)
out = Console(highlight=False)


@app.command()
def build(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write <collection>.yaml into.")] = MANDATE_DIR,
) -> None:
    """Generate openapi/<collection>.yaml from the canonical schemas."""
    for path in write_all(SchemaRegistry.load(), out_dir):
        out.print(f"wrote {path}")


@app.command()
def check(
    directory: Annotated[Path, typer.Option("--dir", help="Folder holding the documents.")] = MANDATE_DIR,
) -> None:
    """Fail when the checked-in documents differ from the generated ones or are not valid OpenAPI 3.1."""
    problems = drift(SchemaRegistry.load(), directory)
    if not problems:
        for path in sorted(directory.glob("*.yaml")):
            problems.extend(spec_errors(path))
    if problems:
        for line in problems[:-1]:
            out.print(line)
        raise CliError(problems[-1], exit_code=1)
    out.print(f"{len(list(directory.glob('*.yaml')))} mandate documents are current and valid OpenAPI 3.1")
