"""Which folders a batch of filesystem changes asks to rescan. Pure functions (the library watcher's
rules; ``is_dir`` is the one question asked of the filesystem, passed in).

A batch of (change, path) events becomes a few ``Target``s per root, so a 500-file copy into a new
folder is one rescan of that folder, not 500:

- a path under no root, or under a hidden name (".x": the layout skips those, and so do partial
  downloads such as rsync's ".name.XXXX"), changes nothing;
- a folder that appeared or changed (moved in, copied in) is rescanned with its subfolders (``deep``):
  a folder moved in reports only itself, not its files;
- a file that appeared, changed or went is rescanned with its folder's other files (``deep`` off);
- a path that went and is not an audio file name may have been a folder: its place is rescanned
  deep (nothing is there any more, so its items go);
- in an audiobook root a book is its folder with its disc folders ("CD1", "Disc 2"): a change inside a
  disc folder rescans the book;
- targets inside a deep one are dropped; one root's targets never cover another root's items (a
  root inside another owns its folder).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from revenge.library.ids import relative_key
from revenge.library.layout import DISC_FOLDER_RE
from revenge.library.media_types import is_audio_name
from revenge.library.model import ItemType

Event = tuple[str, str]  # ("added" | "modified" | "deleted", absolute path)


@dataclass(frozen=True, slots=True, order=True)
class Target:
    root: Path
    type: ItemType
    folder: tuple[str, ...]  # relative to the root; () is the root itself
    deep: bool  # with its subfolders

    @property
    def relative(self) -> str:
        return relative_key(self.folder)


def _innermost_root(path: Path, roots: Sequence[tuple[Path, ItemType]]) -> tuple[Path, ItemType] | None:
    best: tuple[Path, ItemType] | None = None
    for root, kind in roots:
        if path.is_relative_to(root) and (best is None or len(root.parts) > len(best[0].parts)):
            best = (root, kind)
    return best


def _book_folder(kind: ItemType, folder: tuple[str, ...]) -> tuple[str, ...]:
    """A disc folder of a book stands for the book's folder."""
    if kind == "audiobook" and len(folder) > 1 and DISC_FOLDER_RE.fullmatch(folder[-1]):
        return folder[:-1]
    return folder


def _target(change: str, path: Path, roots: Sequence[tuple[Path, ItemType]],
            is_dir: Callable[[Path], bool]) -> Target | None:
    found = _innermost_root(path, roots)
    if found is None:
        return None
    root, kind = found
    parts = path.relative_to(root).parts
    if any(part.startswith(".") for part in parts):
        return None
    if not parts:
        return Target(root, kind, (), True)  # the root itself went or came back: all of it
    # A path that went can no longer be asked: by its name, an audio file or (maybe) a folder.
    folder_like = not is_audio_name(parts[-1]) if change == "deleted" else is_dir(path)
    if folder_like:
        book = _book_folder(kind, parts)
        return Target(root, kind, book, book == parts)
    return Target(root, kind, _book_folder(kind, parts[:-1]), False)


def _covered(target: Target, by: Target) -> bool:
    if target == by or target.root != by.root or not by.deep:
        return False
    return target.folder[:len(by.folder)] == by.folder


def rescan_targets(events: Iterable[Event], roots: Sequence[tuple[Path, ItemType]],
                   is_dir: Callable[[Path], bool]) -> list[Target]:
    """The folders to rescan for ``events`` (see the module's rules), each once, in a stable order."""
    targets: set[Target] = set()
    for change, raw in events:
        target = _target(change, Path(raw), roots, is_dir)
        if target is not None:
            targets.add(target)
    # A shallow target beside a deep one of the same folder is part of it.
    targets = {t for t in targets if t.deep or Target(t.root, t.type, t.folder, True) not in targets}
    return sorted(t for t in targets if not any(_covered(t, other) for other in targets))


def covers(target: Target, relative: str) -> bool:
    """Whether an item (or failure) at ``relative`` in ``target.root`` belongs to what rescanning
    ``target`` walks: if the rescan did not see it, it is gone."""
    parts = PurePosixPath(relative).parts if relative else ()
    folder = target.folder
    if parts[:len(folder)] != folder:
        return False
    if target.deep:
        return True
    rest = parts[len(folder):]
    if target.type != "audiobook":
        return len(rest) == 1  # a file of the folder
    if len(rest) == 1:
        return is_audio_name(rest[0])  # an .m4b of the folder, not a book in a subfolder
    # The folder's own book, and the .m4b files of its disc folders.
    return (not rest and bool(folder)) or (len(rest) == 2 and bool(DISC_FOLDER_RE.fullmatch(rest[0])))
