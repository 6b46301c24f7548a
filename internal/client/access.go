package client

import (
	"fmt"
	"path/filepath"
	"syscall"
)

// readableBy reports (nil) whether the user could open the file at p for
// reading: by the mode bits, every directory on its path searchable and the
// file readable for the user's uid, primary group and supplementary groups.
// Symbolic links are resolved first. ACLs are not consulted, so a file
// shared with the user only through an ACL is refused: the check errs on
// the side of refusing. It is for the root service acting on a user's
// behalf, which must not read for the user what the user could not.
func readableBy(p string, o Owner) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(real) {
		return fmt.Errorf("%s is not an absolute path", p)
	}
	groups := map[uint32]bool{uint32(o.GID): true}
	for _, g := range o.Groups {
		groups[g] = true
	}
	allowed := func(path string, want uint32) error {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var bits uint32
		switch {
		case int(st.Uid) == o.UID:
			bits = st.Mode >> 6 & 7
		case groups[st.Gid]:
			bits = st.Mode >> 3 & 7
		default:
			bits = st.Mode & 7
		}
		if bits&want != want {
			return fmt.Errorf("%s: %w", path, errUnreadable)
		}
		return nil
	}
	for d := filepath.Dir(real); ; d = filepath.Dir(d) {
		if err := allowed(d, 1); err != nil {
			return err
		}
		if d == "/" {
			break
		}
	}
	return allowed(real, 4)
}
