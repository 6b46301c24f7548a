// Package venv runs programs in virtual environments: one per user and
// package (later per connection group), in which the package's files appear
// at their native paths, the user's writes land in the user's copy-on-write
// directories, and the programs run as the user.
//
// # Environments and supervisors
//
// An environment is a Linux mount namespace kept by a supervisor process: a
// re-execution of the appv binary ([SupervisorMain]) that the [Manager]
// starts, as root, with a new mount namespace and nothing else new (IPC,
// network, PIDs, D-Bus and X11 stay the host's). The supervisor builds the
// view, then starts each program the Manager asks for, as the user, and
// reports its exit. A later [Manager.Launch] with the same [Spec.Key] joins
// the running environment: same namespace, same view, same user. The
// supervisor is a child subreaper, so it sees every descendant of its
// programs; when the last is gone and no request came for a grace period,
// it exits and the namespace, with every mount in it, goes with it.
// Nothing is ever mounted in the host's namespace.
//
// # The view
//
// Inside the namespace the supervisor makes / private (MS_REC|MS_PRIVATE)
// and mounts each [Layer] at its Target, parents first:
//
//   - with an Upper: an overlay, lowerdir=Lower…[:Target when Native],
//     upperdir=Upper, workdir=Work, read-write;
//   - without: a read-only overlay of the lowers, or a read-only bind mount
//     when there is a single one (overlayfs needs two without an upper).
//
// Every overlay also gets index=off,metacopy=off,redirect_dir=off,xino=off,
// and the flags nosuid and nodev. Every directory is handed to the kernel as
// /proc/self/fd/N of a descriptor opened beforehand, so a path cannot be
// swapped between the checks and the mount; symlinks are followed only when
// root owns them in a directory only root can write. Mounts the host has
// below a Native target are mounted again on top, so they stay visible.
//
// A Target missing on the host is not created there: its nearest existing
// ancestor gets a read-only overlay of a stub directory (under the run
// directory, holding the missing path) on top of the ancestor itself, and
// the layer is mounted in the stub's directory. When a user owns that
// ancestor (a directory in a home), its entries are bind-mounted back so
// they stay writable; only new entries directly in it fail with EROFS.
//
// # Copy-on-write
//
// The upper directories are the user's COW areas (App-V's COW roaming and
// COW local). The supervisor creates missing ones as the user (mode 0700)
// and refuses any the user does not own. Overlayfs creates new files with
// the writing process's ids, so everything a program writes is the user's.
// Before mounting, the supervisor also makes each directory of the layer's
// merged lowers in the upper directory, as the user, unless the user deleted
// it there: overlayfs shows a merged directory with the upper one's owner, so
// the package's directories are the user's and programs can create files in
// them. The package's files keep their owner (copy-up preserves it): a user
// may delete or replace one (by rename, as editors save), but change it in
// place only where its mode allows.
//
// # Processes
//
// Programs run with the user's uid, gid and supplementary groups, in a
// session of their own, with no_new_privs (set-user-ID programs such as
// sudo do not gain privileges inside an environment) and umask 022. Their
// standard input, output and error are the caller's descriptors, passed
// over the supervisor's socket (package internal/fdpass), or a new
// pseudo-terminal that becomes their controlling terminal. No other
// descriptor of the supervisor reaches them. Their exit code is reported as
// it is, or as 128+signal.
//
// # Security
//
// The Manager belongs to the root service. Supervisor sockets live in the
// root-only run directory; a request names the user it expects, and a
// supervisor refuses a launch for any other. Inside its namespace the
// supervisor does nothing as root that a user could redirect: the user's
// directories are created and checked with the user's file-system identity,
// and the pseudo-terminal's slave is opened from its master, never by path.
package venv
