"""YAML files that users hand daaf, read so that they mean what they say.

PyYAML keeps the later of two equal keys in one mapping without a word, so a config that sets
``lr`` twice trains with whichever comes last: :class:`UniqueKeyLoader` refuses the second and
names both lines. :func:`read_yaml_file` says what a path that is no regular file is (a
directory, a device, a FIFO), before opening it, since reading a FIFO waits for a writer, and
refuses an empty file instead of reading it as no settings at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from daaf.errors import ConfigError, short_repr, shorten
from daaf.utils.files import UnreadableFile, open_regular


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping, at 1-based lines ``first`` and ``second``."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(problem=f"key {short_repr(key)} given twice, lines {first} and {second}")
        self.key, self.first, self.second = key, first, second


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (keys equal as dict
    keys, so ``1`` and ``true`` too). A ``<<`` merge may still bring keys the mapping sets again."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=deep), key_node.start_mark.line + 1
            try:
                if key in lines:
                    raise DuplicateKeyError(key, lines[key], line)
                lines[key] = line
            except TypeError:  # an unhashable key: SafeLoader's own message names it
                continue
        return super().construct_mapping(node, deep)


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (checked before it is opened, so a FIFO
    cannot make the read wait) of at most ``max_bytes``."""
    try:
        file = open_regular(path, "config file")
    except UnreadableFile as exc:
        missing = exc.problem == "missing"
        raise ConfigError(f"config file {path} does not exist" if missing else str(exc)) from None
    with file:
        size = os.fstat(file.fileno()).st_size
        if size > max_bytes:  # PyYAML would parse a huge file for minutes
            raise ConfigError(
                f"{path}: {size:,} bytes is not a daaf config (at most {max_bytes:,} bytes)"
            )
        return file.read(max_bytes + 1)


def read_yaml_file(path: str | Path, max_bytes: int) -> Any:
    """The YAML document of the file ``path``, read with :class:`UniqueKeyLoader`; a
    ConfigError of one line names the file and what is wrong: missing, no regular file (which
    kind), over ``max_bytes``, empty, not UTF-8, not YAML, nested too deeply, or a key given
    twice."""
    path = Path(path)
    data = _read_regular_file(path, max_bytes)
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: more than {max_bytes:,} bytes is not a daaf config")
    try:
        values = yaml.load(data.decode("utf-8"), Loader=UniqueKeyLoader)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte {exc.start}); save the config as UTF-8 YAML"
        ) from None
    except DuplicateKeyError as exc:
        raise ConfigError(
            f"{path}: key {short_repr(exc.key)} is given twice in one mapping, at lines "
            f"{exc.first} and {exc.second}; keep one"
        ) from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())  # the parser's message spans several lines
        raise ConfigError(f"{path}: not valid YAML: {shorten(problem, 200)}") from None
    except RecursionError:  # PyYAML parses nesting recursively
        raise ConfigError(f"{path}: nested too deeply to be a daaf config") from None
    if values is None:
        raise ConfigError(f"{path}: empty: no settings in it (a config is a mapping of sections)")
    return values
