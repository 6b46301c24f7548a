package venv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// User is the account a virtual environment belongs to. Its programs run
// with exactly these ids; the ids need no entry in /etc/passwd.
type User struct {
	UID, GID uint32
	// Groups are the supplementary groups; nil means none.
	Groups []uint32
	// Name becomes USER and LOGNAME when the launch does not set them.
	Name string
	// Home is the user's home directory: HOME when the launch does not set
	// it, and the working directory when the requested one cannot be
	// entered. It must be absolute.
	Home string
}

// Layer is one directory of the virtual view: what appears at Target inside
// the environment.
type Layer struct {
	// Target is the native path the layer appears at, e.g. /opt/hello,
	// /usr or /home/u/.config. It must be absolute and clean, and may not be
	// "/" or lie under /proc, /sys or /dev. Symlinks on the way are followed
	// only when root owns them in a directory only root can write. A Target
	// missing on the host is not created there (see the package comment).
	Target string
	// Lower are the read-only directories merged at Target (in production
	// the package's files on the streaming filesystem), highest priority
	// first.
	Lower []string
	// Native merges the host's own Target beneath Lower (true), or hides it
	// so that the package replaces the directory (false: App-V's opaque
	// folder).
	Native bool
	// Upper and Work are the user's copy-on-write directory for this layer
	// and overlayfs's work directory. Both must be on the same filesystem,
	// neither inside the other. The supervisor creates them as the user
	// (mode 0700) when they are missing and refuses them unless the user
	// owns them. Empty means the layer is read-only.
	Upper, Work string
}

// Spec describes a virtual environment.
type Spec struct {
	// Key identifies the environment, e.g. "1000-<PackageId>": launches
	// with the same Key join the same environment. 1 to 64 characters of
	// A-Z a-z 0-9 . _ - starting with a letter or digit.
	Key  string
	User User
	// Layers are mounted parents first (shorter Target first); the order
	// of layers at the same depth does not matter.
	Layers []Layer
	// Env are the package's environment variables ("NAME=value"), added
	// to every launch's and winning over them.
	Env []string
}

// Request is one program to start in an environment.
type Request struct {
	// Argv is the program and its arguments. A name without a slash is
	// looked up in the PATH of the launch's environment, inside the
	// virtual environment.
	Argv []string
	// Env is the program's environment ("NAME=value"); Spec.Env is added.
	// HOME, USER, LOGNAME and PATH get defaults when missing.
	Env []string
	// Dir is the working directory; when the user cannot enter it the
	// program starts in User.Home and says so on its standard error.
	// Empty means User.Home.
	Dir string
	// Stdin, Stdout and Stderr are passed to the program as they are (a nil
	// one means /dev/null): the program gets duplicates, so the caller may
	// close its own once Launch has returned. They are ignored when TTY is
	// set.
	Stdin, Stdout, Stderr *os.File
	// TTY allocates a pseudo-terminal: the program gets its slave side as
	// standard input, output, error and controlling terminal; the caller
	// gets the master from Process.Master.
	TTY bool
	// Rows and Cols are the terminal's initial size when TTY is set (0
	// leaves the kernel's default).
	Rows, Cols uint16
}

// Env describes a running virtual environment.
type Env struct {
	Key string
	// Supervisor is the process id of the environment's supervisor.
	Supervisor int
	// PIDs are the processes in the environment other than the supervisor:
	// every process in its mount namespace and every descendant of the
	// supervisor, sorted.
	PIDs []int
}

const maxKeyLen = 64

// validKey reports whether k may name an environment (and a directory).
func validKey(k string) bool {
	if k == "" || len(k) > maxKeyLen {
		return false
	}
	for i, c := range k {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// forbiddenTargets are trees a layer may not cover: the kernel's and the
// devices' views must stay the host's.
var forbiddenTargets = []string{"/proc", "/sys", "/dev"}

func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// validate checks what can be checked without touching the filesystem.
func (s *Spec) validate() error {
	if !validKey(s.Key) {
		return fmt.Errorf("venv: spec %q: key must be 1 to %d characters of A-Z a-z 0-9 . _ - starting with a letter or digit", s.Key, maxKeyLen)
	}
	if !filepath.IsAbs(s.User.Home) {
		return fmt.Errorf("venv: spec %s: user home %q is not an absolute path", s.Key, s.User.Home)
	}
	seen := make(map[string]bool)
	for i, l := range s.Layers {
		if err := l.validate(); err != nil {
			return fmt.Errorf("venv: spec %s: layer %d: %w", s.Key, i, err)
		}
		if seen[l.Target] {
			return fmt.Errorf("venv: spec %s: layer %d: target %s given twice", s.Key, i, l.Target)
		}
		seen[l.Target] = true
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("venv: spec %s: environment entry %q is not NAME=value", s.Key, kv)
		}
	}
	return nil
}

func (l *Layer) validate() error {
	t := l.Target
	if !filepath.IsAbs(t) || filepath.Clean(t) != t {
		return fmt.Errorf("target %q is not a clean absolute path", t)
	}
	if t == "/" {
		return errors.New("target may not be /")
	}
	for _, f := range forbiddenTargets {
		if under(t, f) {
			return fmt.Errorf("target %s lies under %s", t, f)
		}
	}
	for _, p := range l.Lower {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("target %s: lower %q is not an absolute path", t, p)
		}
	}
	if (l.Upper == "") != (l.Work == "") {
		return fmt.Errorf("target %s: upper and work must be given together", t)
	}
	if l.Upper != "" {
		if !filepath.IsAbs(l.Upper) || !filepath.IsAbs(l.Work) {
			return fmt.Errorf("target %s: upper %q and work %q must be absolute paths", t, l.Upper, l.Work)
		}
		u, w := filepath.Clean(l.Upper), filepath.Clean(l.Work)
		if under(u, w) || under(w, u) {
			return fmt.Errorf("target %s: upper %s and work %s must be separate directories", t, u, w)
		}
	}
	return nil
}

// depth is the number of components of a clean absolute path.
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
