"""Helpers shared by the CLI commands: settings from the context, one console, tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from livectx.settings import Settings


def settings_from(ctx: click.Context) -> Settings:
    """The settings, loaded once per invocation (after ``--config`` is known)."""
    from livectx.settings import get_settings

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    if "settings" not in obj:
        obj["settings"] = get_settings(obj.get("config_file"), reload=True)
        root.obj = obj
    return obj["settings"]


def feature_service_of(ctx: click.Context, service: str | None) -> str:
    """``service``, or the repo's only feature service; one readable error when that is ambiguous."""
    from livectx.errors import LivectxError
    from livectx.repo import current_repo

    services = current_repo(settings_from(ctx)).services
    if service is not None:
        if service not in services:
            raise LivectxError(
                f"unknown feature service {service!r}; the repo declares: {', '.join(services) or 'none'}"
            )
        return service
    if len(services) != 1:
        raise LivectxError(f"name a feature service with --service: the repo declares {', '.join(services) or 'none'}")
    return next(iter(services))


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@contextmanager
def progress(message: str, line: Callable[[Any], str]) -> Iterator[Callable[[Any], None]]:
    """A spinner on stderr that shows ``message``, then ``line(report)`` at each report: yields the callback
    a worker takes as its ``on_progress``."""
    with console(stderr=True).status(message) as status:
        yield lambda report: status.update(line(report))


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A rich table. Plain values are shown literally (``[embeddings]`` is not markup); pass
    :func:`styled` values for colour."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    table = Table(title=escape(title), title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(v if isinstance(v, Text) else escape("" if v is None else str(v)) for v in row))
    console().print(table)


def print_figures(title: str, figures: Mapping[str, Any], float_format: str = ",.1f") -> None:
    """A worker's or benchmark's figures as a two-column table: thousands separators, ``-`` for none."""
    print_table(
        title,
        ["figure", "value"],
        [
            (name, "-" if value is None else format(value, float_format if isinstance(value, float) else ","))
            for name, value in figures.items()
        ],
    )


def styled(value: str, style: str) -> Any:
    from rich.text import Text

    return Text(value, style=style)
