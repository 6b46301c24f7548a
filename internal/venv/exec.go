package venv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// buildEnv is a program's environment: the launch's, then the package's
// (which wins), one entry per name in the order names first appear, with
// HOME, USER, LOGNAME and PATH filled in when missing. Entries that are not
// NAME=value are dropped.
func buildEnv(launch, pkg []string, u User) []string {
	idx := make(map[string]int)
	var out []string
	set := func(kv string) {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range launch {
		set(kv)
	}
	for _, kv := range pkg {
		set(kv)
	}
	def := func(k, v string) {
		if _, ok := idx[k]; !ok && v != "" {
			set(k + "=" + v)
		}
	}
	def("HOME", u.Home)
	def("USER", u.Name)
	def("LOGNAME", u.Name)
	def("PATH", defaultPath)
	return out
}

// getenv returns the value of k in env.
func getenv(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v
		}
	}
	return ""
}

// execError is a launch that cannot work, with the kind a supervisor
// reports it as.
type execError struct {
	kind string
	err  error
}

func (e *execError) Error() string { return e.err.Error() }
func (e *execError) Unwrap() error { return e.err }

// chooseDir returns the directory a program starts in: want, or the home
// directory (else /) when the user cannot enter want, with a notice saying
// so. It must run as the user (asUser).
func chooseDir(want string, u User) (dir, notice string) {
	if want == "" {
		want = u.Home
	}
	err := canEnter(want)
	if err == nil {
		return want, ""
	}
	if want != u.Home && canEnter(u.Home) == nil {
		return u.Home, fmt.Sprintf("cannot enter %s (%v); starting in %s", want, err, u.Home)
	}
	return "/", fmt.Sprintf("cannot enter %s (%v); starting in /", want, err)
}

func canEnter(dir string) error {
	if !filepath.IsAbs(dir) {
		return errors.New("not an absolute path")
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	return unix.Faccessat2(unix.AT_FDCWD, dir, unix.X_OK, unix.AT_EACCESS)
}

// lookPath finds the program argv0 names, as the user sees the environment
// (it must run as the user): a name with a slash is taken relative to dir,
// one without is searched in env's PATH.
func lookPath(argv0, dir string, env []string) (string, error) {
	if argv0 == "" {
		return "", &execError{kindInvalid, errors.New("empty program name")}
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", err
		}
		return p, nil
	}
	var denied error
	for _, d := range filepath.SplitList(getenv(env, "PATH")) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, argv0)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		var ee *execError
		if denied == nil && errors.As(err, &ee) && ee.kind == kindPermission {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", &execError{kindNotFound, fmt.Errorf("%s: executable file not found in $PATH", argv0)}
}

// executable checks that p is a regular file the user may execute.
func executable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &execError{kindOf(err), fmt.Errorf("%s: %w", p, err)}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &execError{kindPermission, fmt.Errorf("%s: not a regular file", p)}
	}
	if err := unix.Faccessat2(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return &execError{kindOf(err), fmt.Errorf("%s: %w", p, err)}
	}
	return nil
}

func kindOf(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, unix.ENOTDIR):
		return kindNotFound
	case errors.Is(err, os.ErrPermission):
		return kindPermission
	}
	return ""
}
