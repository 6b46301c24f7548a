package integration

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Target is where extension points are integrated: a user's home or the
// machine. Every path is absolute and inside Root; everything is read and
// written through an os.Root on Root, so a symlink planted under it cannot
// lead a write (or a chown) outside it. Build one with UserTarget or
// GlobalTarget and adjust the fields if needed.
type Target struct {
	// Root is the directory everything below is in: the user's home, or "/".
	Root string
	// DataHome receives applications/, icons/hicolor/ and mime/: the user's
	// XDG_DATA_HOME, or /usr/local/share.
	DataHome string
	// BinDir receives the app-path launchers: ~/.local/bin or the client's
	// GlobalBinDir.
	BinDir string
	// MimeApps is the mimeapps.list default applications are set in.
	MimeApps string
	// BackupDir holds the state file and what integration displaced.
	BackupDir string
	// Chown makes every file and directory integration creates owned by
	// UID and GID, and runs the cache tools as that user when the caller is
	// root.
	Chown    bool
	UID, GID int
	// SystemDataDirs are the XDG_DATA_DIRS whose MIME databases say which
	// types and extensions the host already knows; nil means
	// /usr/local/share and /usr/share.
	SystemDataDirs []string
	// Log receives warnings (an icon that could not be read, a cache tool
	// that failed); nil discards them.
	Log *slog.Logger
}

// UserTarget is integration into a user's home: dataHome ("" for
// ~/.local/share) and configHome ("" for ~/.config) must be inside home.
// Files are owned by uid and gid.
func UserTarget(home, dataHome, configHome string, uid, gid int) *Target {
	if dataHome == "" {
		dataHome = filepath.Join(home, ".local", "share")
	}
	if configHome == "" {
		configHome = filepath.Join(home, ".config")
	}
	return &Target{
		Root:      home,
		DataHome:  dataHome,
		BinDir:    filepath.Join(home, ".local", "bin"),
		MimeApps:  filepath.Join(configHome, "mimeapps.list"),
		BackupDir: filepath.Join(dataHome, "appv", "integration", "backups"),
		Chown:     true,
		UID:       uid,
		GID:       gid,
	}
}

// GlobalMimeApps is where global publishing sets default applications: the
// mimeapps.list of the /usr/local/share data directory. It ranks below a
// user's own choices and an administrator's /etc/xdg/mimeapps.list, and
// above the distribution's defaults in /usr/share.
const GlobalMimeApps = "/usr/local/share/applications/mimeapps.list"

// GlobalTarget is integration for every user of the machine: entries,
// icons and MIME types under /usr/local/share, launchers in binDir (""
// for /usr/local/bin), defaults in GlobalMimeApps, state and backups in
// stateDir/integration/backups.
func GlobalTarget(stateDir, binDir string) *Target {
	if binDir == "" {
		binDir = "/usr/local/bin"
	}
	return &Target{
		Root:      "/",
		DataHome:  "/usr/local/share",
		BinDir:    binDir,
		MimeApps:  GlobalMimeApps,
		BackupDir: filepath.Join(stateDir, "integration", "backups"),
	}
}

// paths are a target's locations relative to its root ("/"-separated, as
// os.Root takes them).
type paths struct {
	data, bin, mimeApps, backups string
	apps, icons, mime            string
}

// rel returns p relative to the target's root, or an error if it is not
// an absolute path inside it.
func (t *Target) rel(what, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("integration: %s %q is not an absolute path", what, p)
	}
	r, err := filepath.Rel(filepath.Clean(t.Root), filepath.Clean(p))
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", fmt.Errorf("integration: %s %s is outside %s", what, p, t.Root)
	}
	return filepath.ToSlash(r), nil
}

func (t *Target) paths() (paths, error) {
	var p paths
	var errs []error
	get := func(what, abs string) string {
		r, err := t.rel(what, abs)
		errs = append(errs, err)
		return r
	}
	p.data = get("data directory", t.DataHome)
	p.bin = get("bin directory", t.BinDir)
	p.mimeApps = get("mimeapps.list", t.MimeApps)
	p.backups = get("backup directory", t.BackupDir)
	if p.mimeApps == "." {
		errs = append(errs, fmt.Errorf("integration: mimeapps.list %s is a directory", t.MimeApps))
	}
	p.apps = path.Join(p.data, "applications")
	p.icons = path.Join(p.data, "icons", "hicolor")
	p.mime = path.Join(p.data, "mime")
	return p, errors.Join(errs...)
}

func (t *Target) log() *slog.Logger {
	if t.Log != nil {
		return t.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (t *Target) systemDataDirs() []string {
	if t.SystemDataDirs != nil {
		return t.SystemDataDirs
	}
	return []string{"/usr/local/share", "/usr/share"}
}

// files is the root of a target with the operations integration needs:
// each records the directories it creates and gives what it creates to
// the target's owner.
type files struct {
	root *os.Root
	t    *Target
	// created receives each directory mkdirAll creates.
	created func(dir string)
}

// mkdirAll creates dir and its missing parents, owned by the target's
// owner.
func (f *files) mkdirAll(dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	var cur string
	for seg := range strings.SplitSeq(dir, "/") {
		cur = path.Join(cur, seg)
		err := f.root.Mkdir(cur, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if f.created != nil {
			f.created(cur)
		}
		if f.t.Chown {
			if err := f.root.Lchown(cur, f.t.UID, f.t.GID); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFile replaces name with data atomically (a temporary file renamed
// over it), with the given mode and the target's owner.
func (f *files) writeFile(name string, data []byte, mode fs.FileMode) error {
	if err := f.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	tmp := path.Join(path.Dir(name), ".appv-tmp-"+path.Base(name))
	if err := f.root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	w, err := f.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	if err == nil {
		err = w.Chmod(mode)
	}
	if err == nil && f.t.Chown {
		err = w.Chown(f.t.UID, f.t.GID)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.root.Rename(tmp, name)
	}
	if err != nil {
		_ = f.root.Remove(tmp)
		return err
	}
	return nil
}

// readRegular reads name if it is a regular file of at most limit bytes;
// ok is false if nothing is there, and other is true if something else (a
// directory, a symlink, a FIFO, a bigger file) is. It never blocks on a
// FIFO a user swapped in.
func (f *files) readRegular(name string, limit int64) (data []byte, ok, other bool, err error) {
	fi, err := f.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, false, true, nil
	}
	r, err := f.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	defer r.Close()
	if fi, err = r.Stat(); err != nil {
		return nil, false, false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, false, true, nil
	}
	data, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, false, err
	}
	if int64(len(data)) > limit {
		return nil, false, true, nil
	}
	return data, true, false, nil
}

// exists reports whether something is at name (not following a final
// symlink).
func (f *files) exists(name string) (bool, error) {
	_, err := f.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// checkDir fails if dir, or the part of it that exists, leads out of the
// root (a symlink to /etc planted in a home).
func (f *files) checkDir(dir string) error {
	_, err := f.root.Stat(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(pe.Err, fs.ErrNotExist) {
		return nil
	}
	return err
}
