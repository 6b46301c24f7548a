package venv

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const maxSymlinks = 40

// walked is the result of walking a path.
type walked struct {
	// fd is an O_PATH descriptor of the deepest existing directory.
	fd int
	// path is that directory's path with every symlink resolved.
	path string
	// missing are the components after path that do not exist; none when
	// the whole path exists.
	missing []string
}

// fdPath names an open descriptor so that mount(2) and overlayfs reach
// exactly the file it refers to, whatever happens to its path.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// trustedLink reports whether a symlink may be followed by the supervisor:
// root owns it, and only root can write the directory holding it, so no user
// can have put it there or change it.
func trustedLink(link, dir *unix.Stat_t) bool {
	return link.Uid == 0 && dir.Uid == 0 && dir.Mode&0o022 == 0
}

// walk resolves an absolute path component by component from "/". It follows
// a symlink only when trustedLink allows it, stops at the first component
// that does not exist, and fails when a component is not a directory. The
// caller closes w.fd.
func walk(p string) (w walked, err error) {
	comps := splitPath(p)
	cur := "/"
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return walked{}, fmt.Errorf("open /: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return walked{}, fmt.Errorf("stat /: %w", err)
	}
	links := 0
	for i := 0; i < len(comps); i++ {
		name := comps[i]
		if name == ".." {
			// Only from a symlink's target: go back up by name. cur holds
			// no symlinks, so reopening it refuses any that appeared since.
			cur = filepath.Dir(cur)
			nfd, err := unix.Openat2(unix.AT_FDCWD, cur, &unix.OpenHow{
				Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
				Resolve: unix.RESOLVE_NO_SYMLINKS,
			})
			if err != nil {
				return walked{}, fmt.Errorf("open %s: %w", cur, err)
			}
			unix.Close(fd)
			fd = nfd
			if err := unix.Fstat(fd, &st); err != nil {
				return walked{}, fmt.Errorf("stat %s: %w", cur, err)
			}
			continue
		}
		next := filepath.Join(cur, name)
		nfd, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return walked{fd: fd, path: cur, missing: comps[i:]}, nil
		}
		if err != nil {
			return walked{}, fmt.Errorf("open %s: %w", next, err)
		}
		var nst unix.Stat_t
		if err := unix.Fstat(nfd, &nst); err != nil {
			unix.Close(nfd)
			return walked{}, fmt.Errorf("stat %s: %w", next, err)
		}
		switch nst.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			unix.Close(fd)
			fd, cur, st = nfd, next, nst
		case unix.S_IFLNK:
			target, err := readlinkFD(nfd)
			unix.Close(nfd)
			if err != nil {
				return walked{}, fmt.Errorf("readlink %s: %w", next, err)
			}
			if !trustedLink(&nst, &st) {
				return walked{}, fmt.Errorf("%s is a symlink (to %s) that a user could have made; give the resolved path", next, target)
			}
			if links++; links > maxSymlinks {
				return walked{}, fmt.Errorf("%s: %w", p, unix.ELOOP)
			}
			rest := append(splitPath(target), comps[i+1:]...)
			if filepath.IsAbs(target) {
				rfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return walked{}, fmt.Errorf("open /: %w", err)
				}
				unix.Close(fd)
				fd, cur = rfd, "/"
				if err := unix.Fstat(fd, &st); err != nil {
					return walked{}, fmt.Errorf("stat /: %w", err)
				}
			}
			comps, i = rest, -1
		default:
			unix.Close(nfd)
			return walked{}, fmt.Errorf("%s: %w", next, unix.ENOTDIR)
		}
	}
	return walked{fd: fd, path: cur}, nil
}

// openDir walks p, which must exist as a whole.
func openDir(p string) (fd int, resolved string, err error) {
	w, err := walk(p)
	if err != nil {
		return -1, "", err
	}
	if len(w.missing) > 0 {
		unix.Close(w.fd)
		return -1, "", fmt.Errorf("%s: %w", filepath.Join(w.path, filepath.Join(w.missing...)), unix.ENOENT)
	}
	return w.fd, w.path, nil
}

// splitPath splits a path into components, dropping empty ones and ".".
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// readlinkFD reads the target of the symlink an O_PATH descriptor refers to.
func readlinkFD(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
