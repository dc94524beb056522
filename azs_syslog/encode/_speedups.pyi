"""The compiled half of the renderer's fused path (azs_syslog/encode/_speedups*.c); optional."""

from collections.abc import Callable
from typing import Any

Entry = tuple[str, int, bytes | None, int, str | None]

def compile_plan(
    size: int, nret: int, entries: tuple[Entry, ...], shape: tuple[str, ...] = ..., /
) -> object: ...
def render_text(line: str, plan: object, /) -> tuple[Any, ...] | None: ...
def compile_context(
    pri: tuple[bytes, ...],
    severities: tuple[int, ...],
    levels: int,
    rfc5424: bool,
    limit: int,
    middle: bytes,
    default_host: str,
    minutes: dict[int, str],
    headers: dict[tuple[str, int, str, int], str],
    task_names: dict[tuple[str, int | None, int], str],
    hosts: set[str],
    /,
) -> object: ...
def render_message(
    line: str, plan: object, context: object, accepted_ms: int, /
) -> bytes | bool | None: ...
def render_messages(
    lines: list[Any],
    start: int,
    plan: object,
    context: object,
    accepted_ms: int,
    frame: Callable[[bytes], bytes],
    out: list[bytes | None],
    /,
) -> tuple[int, int]: ...
def evtx_json(data: str, /) -> str | None: ...
def evtx_chunk(chunk: bytes | bytearray | memoryview, /) -> tuple[list[int], list[str]] | None: ...
