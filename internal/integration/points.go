package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
)

// A point is claimed by a package (claimFile, claimDefault) and released
// (releaseFile, releaseDefault) following App-V's rules of backup,
// restore and ownership; see the package documentation.

// maxOwnedFile bounds a file compared with what appv wrote.
const maxOwnedFile = 16 << 20

// maxKept bounds the content kept in the state to write again.
const maxKept = 256 << 10

type liveness int

const (
	absent liveness = iota
	ours
	foreign
)

func hash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// fileLive says what is at a file point: nothing, what appv wrote (for
// one of the owners, or recognised as appv's), or something else.
func (s *session) fileLive(pt *point, recognize func([]byte) bool, extra ...*owner) (liveness, []byte, error) {
	data, ok, other, err := s.f.readRegular(pt.Path, maxOwnedFile)
	switch {
	case err != nil:
		return absent, nil, err
	case other:
		return foreign, nil, nil
	case !ok:
		return absent, nil, nil
	}
	h := hash(data)
	for _, o := range append(slices.Clone(pt.Owners), extra...) {
		if o.SHA256 == h {
			return ours, data, nil
		}
	}
	if recognize != nil && recognize(data) {
		return ours, data, nil
	}
	return foreign, data, nil
}

func (s *session) claimFile(pkg string, fi fileItem) error {
	key := pointKey(kindFile, fi.path, "")
	pt := s.st.Points[key]
	fresh := pt == nil
	if fresh {
		pt = &point{Kind: kindFile, Path: fi.path}
	}
	live, data, err := s.fileLive(pt, fi.recognize)
	if err != nil {
		return err
	}
	if fresh && live == ours {
		s.adoptLegacyBackup(pt)
	}
	if live == foreign {
		dst := path.Join(s.paths.backups, "files", fi.path)
		if pt.Backup != "" && pt.Backup != dst {
			if err := s.dropBackup(pt); err != nil {
				return fmt.Errorf("drop the superseded backup of %s: %w", fi.path, err)
			}
		}
		if err := s.move(fi.path, dst); err != nil {
			return fmt.Errorf("back up %s: %w", fi.path, err)
		}
		pt.Backup = dst
		s.st.Points[key] = pt
		live = absent
	}
	h := hash(fi.data)
	same := false
	if live == ours && hash(data) == h {
		if info, err := s.f.root.Lstat(fi.path); err == nil && info.Mode().Perm() == fi.mode.Perm() {
			same = true
		}
	}
	if !same {
		if err := s.f.writeFile(fi.path, fi.data, fi.mode); err != nil {
			return fmt.Errorf("write %s: %w", fi.path, err)
		}
		s.touched[fi.path] = true
	}
	o := &owner{PackageID: pkg, SHA256: h, Mode: fi.mode}
	if fi.keep && len(fi.data) <= maxKept {
		o.Content = fi.data
	}
	pt.push(o)
	s.st.Points[key] = pt
	return nil
}

func (s *session) releaseFile(pt *point, pkg string) error {
	i := pt.owner(pkg)
	if i < 0 {
		return nil
	}
	gone := pt.Owners[i]
	wasTop := i == len(pt.Owners)-1
	pt.Owners = slices.Delete(pt.Owners, i, i+1)
	if !wasTop {
		return nil
	}
	live, _, err := s.fileLive(pt, nil, gone)
	if err != nil {
		return err
	}
	s.touched[pt.Path] = true
	switch {
	case live == foreign:
		// Replaced since: that is what stays, and what appv displaced
		// before is superseded.
		s.log.Info("not restored: the file was replaced since it was integrated", "path", pt.Path)
		return s.dropBackup(pt)
	case len(pt.Owners) > 0:
		next := pt.top()
		if next.Content != nil {
			return s.f.writeFile(pt.Path, next.Content, next.Mode.Perm())
		}
		s.log.Warn("ownership passes to a package that must be integrated again to rewrite the file", "path", pt.Path, "packageId", next.PackageID)
		return s.removeFile(pt.Path)
	}
	if live == ours {
		if err := s.removeFile(pt.Path); err != nil {
			return err
		}
	}
	if pt.Backup == "" {
		return nil
	}
	if ok, err := s.f.exists(pt.Path); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("%s is in the way", pt.Path)
		}
		return fmt.Errorf("restore %s: %w", pt.Path, err)
	}
	if err := s.move(pt.Backup, pt.Path); err != nil {
		return fmt.Errorf("restore %s: %w", pt.Path, err)
	}
	pt.Backup = ""
	return nil
}

func (s *session) removeFile(name string) error {
	if err := s.f.root.Remove(name); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

func (s *session) dropBackup(pt *point) error {
	if pt.Backup == "" {
		return nil
	}
	err := s.f.root.RemoveAll(pt.Backup)
	pt.Backup = ""
	return err
}

// move renames src to dst, copying when they are on different file
// systems (a global target's backups in /var, its launchers in /usr).
func (s *session) move(src, dst string) error {
	if err := s.f.mkdirAll(path.Dir(dst)); err != nil {
		return err
	}
	if err := s.f.root.RemoveAll(dst); err != nil {
		return err
	}
	err := s.f.root.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	fi, err := s.f.root.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := s.f.root.Readlink(src)
		if err != nil {
			return err
		}
		if err := s.f.root.Symlink(target, dst); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		data, err := s.f.root.ReadFile(src)
		if err != nil {
			return err
		}
		if err := s.f.root.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
			return err
		}
		if err := s.f.root.Chmod(dst, fi.Mode()); err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if err := s.f.root.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s is a %s, which appv does not move across file systems", src, fi.Mode().Type())
	}
	return s.f.root.Remove(src)
}

// existsOK reports whether something is at name (false on errors).
func (s *session) existsOK(name string) bool {
	ok, err := s.f.exists(name)
	return ok && err == nil
}

// legacyBackup is where the client kept a launcher's backup before the
// state file existed.
func (s *session) legacyBackup(name string) string {
	return path.Join(s.paths.backups, "bin", name)
}

// adoptLegacyBackup takes over the backup of a launcher the client wrote
// before the state file existed.
func (s *session) adoptLegacyBackup(pt *point) {
	if path.Dir(pt.Path) != s.paths.bin {
		return
	}
	if b := s.legacyBackup(path.Base(pt.Path)); s.existsOK(b) {
		pt.Backup = b
	}
}

// legacyDeintegrate deintegrates a package integrated before the state
// file existed: its app-path launchers, found from the manifest.
func (s *session) legacyDeintegrate(p *Package) error {
	if p.Manifest == nil {
		return nil
	}
	var errs []error
	for _, x := range p.Manifest.Extensions() {
		a := x.AppPath
		if a == nil || a.Name == "" || a.Name == "." || a.Name == ".." || strings.ContainsAny(a.Name, "/\\\x00\n") {
			continue
		}
		dst := path.Join(s.paths.bin, a.Name)
		data, ok, _, err := s.f.readRegular(dst, maxOwnedFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok || !strings.Contains(string(data), launcherMarker) {
			continue
		}
		if err := s.removeFile(dst); err != nil {
			errs = append(errs, err)
			continue
		}
		if b := s.legacyBackup(a.Name); s.existsOK(b) {
			errs = append(errs, s.move(b, dst))
		}
	}
	return errors.Join(errs...)
}

// Default applications.

func (s *session) list(name string) (*mimeAppsList, error) {
	if l := s.lists[name]; l != nil {
		return l, nil
	}
	target, err := s.resolve(name)
	if err != nil {
		return nil, err
	}
	l := &mimeAppsList{name: target, mode: 0o644}
	data, ok, other, err := s.f.readRegular(target, maxOwnedFile)
	switch {
	case err != nil:
		return nil, err
	case other:
		return nil, fmt.Errorf("%s is not a regular file", name)
	case ok:
		if fi, err := s.f.root.Lstat(target); err == nil {
			l.mode = fi.Mode().Perm()
		}
	default:
		if !slices.Contains(s.st.Created, target) {
			s.st.Created = append(s.st.Created, target)
		}
	}
	l.kf = parseKeyFile(data)
	s.lists[name] = l
	return l, nil
}

// resolve follows symlinks at name (a dotfile manager's link to a
// mimeapps.list kept elsewhere in the home), as long as they stay in the
// root, so writing keeps the link.
func (s *session) resolve(name string) (string, error) {
	for range 16 {
		fi, err := s.f.root.Lstat(name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return name, nil
		}
		target, err := s.f.root.Readlink(name)
		if err != nil {
			return "", err
		}
		link := name
		if path.IsAbs(target) {
			r, err := s.t.rel("symlink target", target)
			if err != nil {
				return "", fmt.Errorf("%w: %s -> %s", ErrSymlinkOut, link, target)
			}
			name = r
		} else {
			name = path.Join(path.Dir(name), target)
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return "", fmt.Errorf("%w: %s -> %s", ErrSymlinkOut, link, target)
		}
	}
	return "", fmt.Errorf("%s: too many symlinks", name)
}

func (s *session) claimDefault(pkg string, a association) error {
	l, err := s.list(a.File)
	if err != nil {
		return err
	}
	key := pointKey(kindDefault, a.File, a.Type)
	pt := s.st.Points[key]
	if pt == nil {
		pt = &point{Kind: kindDefault, Path: a.File, Type: a.Type}
	}
	cur, present := l.kf.get(groupDefault, a.Type)
	if first := firstOf(cur); !present || !(pt.isOwnerValue(first) || isAppvID(first)) {
		// What is there now, set by the system or the user, is what
		// comes back when the last package goes. (An appv entry the
		// state does not know is not: it goes with its package.)
		pt.Native = nil
		if present {
			pt.Native = &cur
		}
	}
	if v := joinList([]string{a.DesktopID}); cur != v || !present {
		l.kf.set(groupDefault, a.Type, v)
		l.changed = true
	}
	pt.push(&owner{PackageID: pkg, Value: a.DesktopID})
	s.st.Points[key] = pt
	return nil
}

// isAppvID reports whether a desktop file id is one appv names.
func isAppvID(id string) bool {
	return strings.HasPrefix(id, "appv-") && strings.HasSuffix(id, ".desktop")
}

func (pt *point) isOwnerValue(v string, extra ...*owner) bool {
	return v != "" && slices.ContainsFunc(append(slices.Clone(pt.Owners), extra...), func(o *owner) bool { return o.Value == v })
}

func (s *session) releaseDefault(pt *point, pkg string) error {
	i := pt.owner(pkg)
	if i < 0 {
		return nil
	}
	gone := pt.Owners[i]
	wasTop := i == len(pt.Owners)-1
	pt.Owners = slices.Delete(pt.Owners, i, i+1)
	if !wasTop {
		return nil
	}
	l, err := s.list(pt.Path)
	if err != nil {
		return err
	}
	cur, present := l.kf.get(groupDefault, pt.Type)
	switch {
	case !present || !pt.isOwnerValue(firstOf(cur), gone):
		// Changed since: the new choice stays.
		pt.Native = nil
		return nil
	case len(pt.Owners) > 0:
		l.kf.set(groupDefault, pt.Type, joinList([]string{pt.top().Value}))
	case pt.Native != nil:
		l.kf.set(groupDefault, pt.Type, *pt.Native)
	default:
		l.kf.del(groupDefault, pt.Type)
	}
	l.changed = true
	return nil
}

func (s *session) addAssoc(a association) error {
	l, err := s.list(a.File)
	if err != nil {
		return err
	}
	cur, _ := l.kf.get(groupAdded, a.Type)
	ids := splitList(cur)
	if len(ids) > 0 && ids[0] == a.DesktopID {
		return nil
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == a.DesktopID })
	l.kf.set(groupAdded, a.Type, joinList(append([]string{a.DesktopID}, ids...)))
	l.changed = true
	return nil
}

func (s *session) removeAssoc(a association) error {
	l, err := s.list(a.File)
	if err != nil {
		return err
	}
	cur, present := l.kf.get(groupAdded, a.Type)
	ids := splitList(cur)
	if !present || !slices.Contains(ids, a.DesktopID) {
		return nil
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == a.DesktopID })
	if len(ids) == 0 {
		l.kf.del(groupAdded, a.Type)
	} else {
		l.kf.set(groupAdded, a.Type, joinList(ids))
	}
	l.changed = true
	return nil
}
