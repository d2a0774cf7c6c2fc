"""Reading model.tar.gz safely: regular files only, no absolute paths, no '..', no links."""

from __future__ import annotations

import os
import tarfile

from .errors import InputError


def _safe_members(archive: str, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        parts = m.name.replace("\\", "/").split("/")
        if m.name.startswith(("/", "\\")) or ".." in parts or (len(m.name) > 1 and m.name[1] == ":"):
            raise InputError(f"{archive}: unsafe path {m.name!r} in archive (path traversal)")
        if not (m.isfile() or m.isdir()):
            raise InputError(f"{archive}: unsupported member {m.name!r} (links/devices are refused)")
    return members


def extract(archive: str, dest: str, names: set[str] | None = None) -> dict[str, str]:
    """Extract every member (or only the top-level files in ``names``) into ``dest``; returns
    {archive name: local path} of the extracted files. Missing names are an error."""
    found: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for m in _safe_members(archive, tar):
                name = m.name[2:] if m.name.startswith("./") else m.name
                if names is not None and name not in names:
                    continue
                target = os.path.join(dest, name)
                if m.isdir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target) or dest, exist_ok=True)
                with tar.extractfile(m) as src, open(target, "wb") as out:
                    out.write(src.read())
                found[name] = target
    except FileNotFoundError:
        raise InputError(f"{archive}: model archive not found") from None
    except tarfile.TarError as exc:
        raise InputError(f"{archive}: not a readable tar.gz archive ({exc})") from None
    missing = sorted(set(names or ()) - set(found))
    if missing:
        raise InputError(f"{archive}: missing {', '.join(missing)} (was the model trained by scripts/train.py?)")
    return found
