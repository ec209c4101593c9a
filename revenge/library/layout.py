"""How folders become items: walk one library root lazily and yield one ``Unit`` per future item.

- Music and podcast roots: every audio file is one item (``track`` / ``episode``).
- Audiobook roots: every ``.m4b`` is one book; a folder holding other audio files is ONE book whose
  files play in natural order ("2" before "10"), including the files of disc subfolders ("CD1",
  "Disc 2", …) after its own; an audio file lying directly in the root is a one-file book.

Hidden entries (".name") are skipped; symbolic links are followed, except a link back to a folder
being walked (a loop). Only one directory listing is held per level of depth, so a library of any
size is walked in constant memory. Unreadable folders are reported, and make the walk incomplete so
the scanner does not mistake their items for vanished ones. A root inside another (``skip``) is
left out of the outer root's walk: its files are items of its own root only.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from revenge.library.ids import natural_key, relative_key
from revenge.library.media_types import is_audio_name
from revenge.library.model import ItemType

BOOK_FILE_SUFFIX = ".m4b"
DISC_FOLDER_RE = re.compile(r"(?:cd|disc|disk)\s*[-_.]?\s*\d+", re.IGNORECASE)
_DISC_NUMBER_RE = re.compile(r"\d+")

# The usual names of a media folder's subfolders (compared case-insensitively) and the item type
# each one holds: `revenge serve ~/Media` over Music/, Podcasts/, Audiobooks/ needs no settings.
SUBFOLDER_TYPES: dict[str, ItemType] = {
    "music": "track",
    "podcasts": "episode",
    "podcast": "episode",
    "audiobooks": "audiobook",
    "audiobook": "audiobook",
    "books": "audiobook",
}


def subfolder_type(name: str) -> ItemType | None:
    """The item type a subfolder of this name holds (``SUBFOLDER_TYPES``), or None for any other name."""
    return SUBFOLDER_TYPES.get(unicodedata.normalize("NFC", name).strip().casefold())


def media_folder_roots(folder: Path, subfolders: Iterable[str]) -> dict[ItemType, tuple[Path, ...]]:
    """The roots one folder given on the command line stands for, from the names of its subfolders:
    each subfolder with a usual name (``subfolder_type``) is a root of its type, and ``folder`` itself
    stays a music root for everything else in it (the typed subfolders are left out of its walk)."""
    roots: dict[ItemType, list[Path]] = {"track": [folder], "episode": [], "audiobook": []}
    for name in sorted(subfolders, key=natural_key):
        kind = subfolder_type(name)
        if kind is not None:
            roots[kind].append(folder / name)
    return {kind: tuple(paths) for kind, paths in roots.items()}


@dataclass(frozen=True, slots=True)
class Unit:
    """Files that become one item. ``relative`` (the file's or the book folder's path relative to the
    root) is what the item id is derived from."""

    type: ItemType
    root: Path
    relative: str
    files: tuple[Path, ...]
    folder_book: bool = False


@dataclass(frozen=True, slots=True)
class WalkProblem:
    path: Path
    reason: str


@dataclass
class RootWalk:
    """One root's walk. Iterate ``units()`` once; afterwards ``complete`` says whether every folder
    was read and ``problems`` lists those that were not (bounded: the first 100)."""

    root: Path
    type: ItemType
    skip: tuple[Path, ...] = ()  # other roots inside this one
    complete: bool = True
    problems: list[WalkProblem] = field(default_factory=list)
    problem_count: int = 0
    _skip_keys: set[tuple[int, int]] = field(default_factory=set, repr=False)

    def units(self) -> Iterator[Unit]:
        yield from self.units_in((), deep=True)

    def units_in(self, parts: tuple[str, ...], *, deep: bool) -> Iterator[Unit]:
        """The units of the folder ``parts`` (relative to the root) as the whole walk makes them,
        and with ``deep`` those of its subfolders (the library watcher's rescans). A folder that is
        gone yields nothing and leaves the walk complete: its items are gone too."""
        try:
            st = self.root.stat()
        except OSError as exc:
            self._problem(self.root, f"library folder unreadable: {exc.strerror or exc}")
            return
        if not self.root.is_dir():
            self._problem(self.root, "library folder is not a directory")
            return
        for path in self.skip:
            try:
                inner = path.stat()
            except OSError:
                continue  # its own walk reports it
            self._skip_keys.add((inner.st_dev, inner.st_ino))
        ancestors = {(st.st_dev, st.st_ino)}
        folder = self.root
        for part in parts:
            folder = folder / part
            try:
                at = folder.stat()
            except FileNotFoundError:
                return
            except OSError as exc:
                self._problem(folder, f"folder unreadable: {exc.strerror or exc}")
                return
            if (at.st_dev, at.st_ino) in self._skip_keys:
                return  # another root's folder
            ancestors.add((at.st_dev, at.st_ino))
        if parts and not folder.is_dir():
            return  # a folder replaced by a file: its items are gone
        yield from self._walk(folder, parts, ancestors, deep)

    # -----------------------------------------------------------------------------------------

    def _problem(self, path: Path, reason: str) -> None:
        self.complete = False
        self.problem_count += 1
        if len(self.problems) < 100:
            self.problems.append(WalkProblem(path, reason))

    def _list(self, folder: Path) -> tuple[list[os.DirEntry[str]], list[os.DirEntry[str]]] | None:
        """(audio files, subfolders) of ``folder`` in natural order, or None if it cannot be read."""
        files: list[os.DirEntry[str]] = []
        dirs: list[os.DirEntry[str]] = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir():
                            dirs.append(entry)
                        elif entry.is_file() and is_audio_name(entry.name):
                            files.append(entry)
                    except OSError:
                        continue  # a dangling link or an entry that vanished while listing
        except OSError as exc:
            self._problem(folder, f"folder unreadable: {exc.strerror or exc}")
            return None
        files.sort(key=lambda e: natural_key(e.name))
        dirs.sort(key=lambda e: natural_key(e.name))
        return files, dirs

    def _unit(self, parts: tuple[str, ...], files: list[Path], folder_book: bool = False) -> Unit:
        return Unit(self.type, self.root, relative_key(parts), tuple(files), folder_book)

    def _walk(self, folder: Path, parts: tuple[str, ...], ancestors: set[tuple[int, int]],
              deep: bool = True) -> Iterator[Unit]:
        listing = self._list(folder)
        if listing is None:
            return
        files, dirs = listing
        subfolders = dirs
        if self.type != "audiobook" or not parts:
            for entry in files:
                yield self._unit((*parts, entry.name), [Path(entry.path)])
        else:
            book: list[Path] = []
            for entry in files:
                if entry.name.lower().endswith(BOOK_FILE_SUFFIX):
                    yield self._unit((*parts, entry.name), [Path(entry.path)])
                else:
                    book.append(Path(entry.path))
            # "CD 2" after "CD1": by disc number, whatever the spacing.
            discs = sorted((d for d in dirs if DISC_FOLDER_RE.fullmatch(d.name)),
                           key=lambda d: (int(_DISC_NUMBER_RE.findall(d.name)[-1]), natural_key(d.name)))
            subfolders = [d for d in dirs if not DISC_FOLDER_RE.fullmatch(d.name)]
            for disc in discs:
                disc_listing = self._list(Path(disc.path))
                if disc_listing is None:
                    continue
                for entry in disc_listing[0]:
                    if entry.name.lower().endswith(BOOK_FILE_SUFFIX):
                        yield self._unit((*parts, disc.name, entry.name), [Path(entry.path)])
                    else:
                        book.append(Path(entry.path))
            if book:
                yield self._unit(parts, book, folder_book=True)
        if not deep:
            return
        for entry in subfolders:
            try:
                st = entry.stat()  # follows links: a link to an ancestor would loop forever
            except OSError as exc:
                self._problem(Path(entry.path), f"folder unreadable: {exc.strerror or exc}")
                continue
            key = (st.st_dev, st.st_ino)
            if key in ancestors or key in self._skip_keys:
                continue
            ancestors.add(key)
            try:
                yield from self._walk(Path(entry.path), (*parts, entry.name), ancestors)
            finally:
                ancestors.discard(key)
