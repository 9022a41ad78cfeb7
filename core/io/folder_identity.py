"""Who owns a folder and who may read it: what a replaced folder hands to the one that takes its place.

Why: an output folder is replaced by a new one (``core.io.swap``), and a new folder gets the writer's owner, the
umask's mode and no ACL. A user's private 0700 folder, a setgid project folder or one shared by an ACL must stay
so; where that cannot be kept (another user's folder and we may not give it away), it is not replaced at all.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .disk import OutputError

_NOT_SUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA, errno.EPERM)
# What passes to the new folder: POSIX ACLs and the user's own attributes. Security labels (SELinux) are the
# system's to give, and setting them may be denied to the user.
_KEPT = ("system.posix_acl_access", "system.posix_acl_default", "user.")


@dataclass(frozen=True)
class FolderIdentity:
    """A folder's owner, group, mode bits (setgid, sticky included) and extended attributes (ACLs included)."""

    path: Path
    uid: int
    gid: int
    mode: int
    xattrs: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, folder: Path) -> FolderIdentity:
        info = os.lstat(folder)
        return cls(folder, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), _xattrs(folder))

    def check_keepable(self) -> None:
        """Refuse (before any work) to replace a folder whose owner or group this process cannot give the new
        one: the user's folder would silently change hands."""
        if os.geteuid() == 0:
            return
        if self.uid != os.geteuid():
            raise OutputError(f"{self.path} belongs to another user: replacing it would change its owner; choose a "
                              f"new folder")
        if self.gid != os.getegid() and self.gid not in os.getgroups():
            raise OutputError(f"{self.path} belongs to a group you are not in: replacing it would change its group; "
                              f"choose a new folder")

    def apply(self, folder: Path) -> None:
        """Give ``folder`` this identity: owner and group first (they clear setgid), then ACLs, then the mode."""
        info = os.lstat(folder)
        if (info.st_uid, info.st_gid) != (self.uid, self.gid):
            try:
                os.chown(folder, self.uid, self.gid, follow_symlinks=False)
            except PermissionError:
                raise OutputError(f"cannot give the new {self.path} the owner and group of the folder it replaces; "
                                  f"nothing was replaced, choose a new folder") from None
        for name, value in self.xattrs:
            try:
                os.setxattr(folder, name, value, follow_symlinks=False)
            except OSError:
                raise OutputError(f"cannot give the new {self.path} the access rules ({name}) of the folder it "
                                  f"replaces; nothing was replaced, choose a new folder") from None
        os.chmod(folder, self.mode)


def _xattrs(folder: Path) -> tuple[tuple[str, bytes], ...]:
    """The extended attributes of ``folder`` a new folder keeps (``_KEPT``); none where the system or the file
    system has none."""
    if not hasattr(os, "listxattr"):
        return ()
    try:
        names = os.listxattr(folder, follow_symlinks=False)
    except OSError as e:
        if e.errno in _NOT_SUPPORTED:
            return ()
        raise
    found = []
    for name in names:
        if not name.startswith(_KEPT):
            continue
        try:
            found.append((name, os.getxattr(folder, name, follow_symlinks=False)))
        except OSError as e:
            if e.errno not in _NOT_SUPPORTED:
                raise
    return tuple(found)
