"""``revenge serve|scan|user|secret|bench``: argparse in front of config, app and library."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from revenge.config import ConfigError, Settings, load_settings
from revenge.errors import StoreUnavailable
from revenge.security.keys import ROLES, UserDirectory, UserError, UserExists


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (keys as in the README table)")
    parser.add_argument("--data-dir", type=Path, help="where catalog, users and progress live")


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    overrides: dict[str, object] = {"data_dir": getattr(args, "data_dir", None), **extra}
    return load_settings(args.config, **overrides)


def _subfolder_names(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []  # reported by the directory check or the scan


def _library_settings(args: argparse.Namespace, **extra: object) -> Settings:
    """Settings for `serve`/`scan` with the DIR arguments as the library. A DIR holding Music/,
    Podcasts/ or Audiobooks/ (the usual names, any case: ``layout.SUBFOLDER_TYPES``) gives each
    such subfolder its item type, unless podcast or audiobook folders are configured explicitly."""
    from revenge.library.layout import media_folder_roots

    dirs = tuple(p.expanduser().resolve() for p in args.library)
    if dirs:
        extra["library"] = dirs
    settings = _settings(args, **extra)
    if not dirs or settings.podcasts or settings.audiobooks:
        return settings
    roots: dict[str, list[Path]] = {"track": [], "episode": [], "audiobook": []}
    for folder in dirs:
        for kind, paths in media_folder_roots(folder, _subfolder_names(folder)).items():
            roots[kind].extend(paths)
    if len(roots["track"]) == len(dirs) and not roots["episode"] and not roots["audiobook"]:
        return settings
    for kind, label in (("track", "music"), ("episode", "podcasts"), ("audiobook", "audiobooks")):
        shown = [str(p) for p in roots[kind] if p not in dirs]
        if shown:
            print(f"{label}: {', '.join(shown)}", flush=True)
    return dataclasses.replace(settings, library=tuple(roots["track"]), podcasts=tuple(roots["episode"]),
                               audiobooks=tuple(roots["audiobook"]))


def _user_store(settings: Settings) -> UserDirectory:
    from revenge.security.shared import open_user_store

    return open_user_store(settings)  # users.db, or the shared store with store = "redis://…"


def cmd_serve(args: argparse.Namespace) -> int:
    from revenge import server
    from revenge.app import create_app

    settings = _library_settings(args, host=args.host, port=args.port)
    for root in settings.library + settings.podcasts + settings.audiobooks:
        if not root.is_dir():
            raise ConfigError("library", f"{root} is not a directory")
    users = _user_store(settings)
    try:
        shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        print(f"Revenge is serving on http://{shown_host}:{settings.port}/", flush=True)
        if users.count() == 0:
            try:
                _, key = users.add_user("admin")
            except UserExists:  # another instance on the shared store made it at the same moment
                pass
            else:
                print("Created user 'admin'. Its API key (shown only this once):", flush=True)
                print(f"  {key}", flush=True)
                print("Use it as:  Authorization: Bearer <key>", flush=True)
    finally:
        users.close()
    server.run(create_app(settings), settings.host, settings.port, settings.log_level,
               server.http_limits(settings))
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from revenge.library.art_index import ArtIndex
    from revenge.library.catalog import Catalog
    from revenge.library.scan import scan_library
    from revenge.library.scan_status import ScanStatus

    settings = _library_settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(settings.data_dir / "catalog.db", settings.artist_separators)
    art = ArtIndex(settings.data_dir / "art.db")
    catalog.on_removed(art.forget)  # a removed item's picture rows go with it
    try:
        status = ScanStatus()
        report = scan_library(settings, catalog, status, show_progress=sys.stderr.isatty(),
                              on_unit=art.index_unit)
    finally:
        art.close()
        catalog.close()
    print(report.summary())
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    settings = _settings(args)
    users = _user_store(settings)
    try:
        if args.user_cmd == "add":
            user, key = users.add_user(args.name, args.role)
            print(f"Created {user.role} {args.name!r}. API key (shown only this once):")
            print(key)
        elif args.user_cmd == "role":
            user = users.set_role(args.name, args.role)
            print(f"{user.name!r} is now {user.role}.")
        elif args.user_cmd == "key":
            print(users.new_key(args.name))
        elif args.user_cmd == "list":
            for user, keys in users.list_users():
                print(f"{user.name}\t{user.role}\t{keys} key(s)")
        elif args.user_cmd == "remove":
            users.remove_user(args.name)
            print(f"Removed user {args.name!r} and its keys.")
        elif args.user_cmd == "subsonic-password":
            from revenge.security.app_passwords import new_app_password
            from revenge.security.crypto import SecretBox
            from revenge.security.shared import secrets_key

            password = new_app_password(users, SecretBox(secrets_key(settings)), args.name)
            print(f"Subsonic app password of {args.name!r} (shown only this once; the previous one stops "
                  "working):")
            print(password)
    finally:
        users.close()
    return 0


def cmd_secret(args: argparse.Namespace) -> int:
    from revenge.redis_scripts import redacted_url
    from revenge.security import secrets as stream_secrets
    from revenge.security.shared import is_shared, rotate_stream_secrets

    settings = _settings(args)
    if args.secret_cmd == "rotate":
        rotate_stream_secrets(settings)
        if is_shared(settings):
            print(f"Rotated the stream-signing secret in the shared store {redacted_url(settings.store)}.")
            print(f"Every instance signs with it within {stream_secrets.REFRESH_SECONDS:g} s, no restart.")
        else:
            print(f"Rotated the stream-signing secret in {settings.data_dir / stream_secrets.FILE_NAME}.")
            print("Restart the server to sign with it.")
        print("URLs signed before keep working until they expire; rotating again drops the previous")
        print("secret, and with it those URLs.")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from revenge.loadtest.command import cmd_bench as run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="revenge", description="Self-hosted audio streaming server")
    sub = parser.add_subparsers(dest="cmd", required=True)

    serve = sub.add_parser("serve", help="run the server (scans the library in the background)")
    _common(serve)
    serve.add_argument("library", nargs="*", type=Path,
                       help="music folders (default: settings.library); subfolders named Music, Podcasts, "
                            "Audiobooks get their item type unless podcasts/audiobooks are configured")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 7700)")
    serve.set_defaults(func=cmd_serve)

    scan = sub.add_parser("scan", help="scan the library once and exit")
    _common(scan)
    scan.add_argument("library", nargs="*", type=Path, help="as for serve")
    scan.set_defaults(func=cmd_scan)

    user = sub.add_parser("user", help="manage users and API keys")
    _common(user)
    user_sub = user.add_subparsers(dest="user_cmd", required=True)
    for name, text in (("add", "create a user and print its API key"),
                       ("key", "print a new extra API key for a user"),
                       ("remove", "delete a user and its keys"),
                       ("role", "make a user an admin or a listener"),
                       ("subsonic-password", "print a new app password for Subsonic apps' token login")):
        p = user_sub.add_parser(name, help=text)
        p.add_argument("name")
        if name == "add":
            p.add_argument("--role", choices=ROLES, default=None,
                           help="admin or listener (default: admin for the first user, else listener)")
        elif name == "role":
            p.add_argument("role", choices=ROLES)
    user_sub.add_parser("list", help="list users")
    user.set_defaults(func=cmd_user)

    secret = sub.add_parser("secret", help="manage the secret that signs stream URLs")
    secret_sub = secret.add_subparsers(dest="secret_cmd", required=True)
    rotate = secret_sub.add_parser("rotate", help="sign with a new secret; the previous one still verifies")
    _common(rotate)
    secret.set_defaults(func=cmd_secret)

    from revenge.loadtest.arguments import add_arguments as bench_arguments

    bench = sub.add_parser("bench", help="simulate N listeners against a running server (load test)")
    bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"revenge: configuration error: {exc}", file=sys.stderr)
        return 2
    except (UserError, StoreUnavailable) as exc:
        print(f"revenge: {exc}", file=sys.stderr)
        return 1
