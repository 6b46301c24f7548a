package venv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// supervisorEnv makes the test binary a supervisor (the usual re-exec
// pattern: the Manager starts os.Args[0] with it set).
const supervisorEnv = "APPV_VENV_TEST_SUPERVISOR"

func TestMain(m *testing.M) {
	if os.Getenv(supervisorEnv) == "1" {
		os.Exit(SupervisorMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mount namespaces, overlayfs and other users' ids")
	}
}

// Ids of the test users: no /etc/passwd entries needed.
const (
	uid1, gid1 = 65534, 65534
	uid2, gid2 = 65533, 65533
	extraGroup = 4242
)

// appScript is the packaged application: one shell script, told what to do
// by its first argument. @ROOT@ is replaced by the package's installed path.
const appScript = `#!/bin/sh
# appvtest: a stand-in for a packaged application.
cmd=$1
[ $# -gt 0 ] && shift
case "$cmd" in
data) cat @ROOT@/share/data.txt ;;
write) mkdir -p "$HOME/.config/appvtest" && printf '%s\n' "$1" > "$HOME/.config/appvtest/settings.ini" ;;
writehold)
	mkdir -p "$HOME/.config/appvtest" && printf '%s\n' "$1" > "$HOME/.config/appvtest/settings.ini"
	echo ready
	read -r line || true ;;
read) cat "$@" ;;
readns) cat "$1" && readlink /proc/self/ns/mnt ;;
touch) for f in "$@"; do mkdir -p "$(dirname "$f")" && echo "$cmd" > "$f" || exit 1; done ;;
id) id -u; id -g; id -G ;;
exit) exit "$1" ;;
cat) cat ;;
tty)
	tty; stty size
	# Fields 5, 7 and 8 of stat: process group, controlling tty, its
	# foreground process group.
	set -- $(cat /proc/$$/stat)
	echo "pgrp=$5 tty_nr=$7 tpgid=$8" ;;
sleep) echo sleeping; exec sleep "$1" ;;
stubborn) trap '' TERM; echo sleeping; sleep "$1" ;;
daemon) sleep "$1" >/dev/null 2>&1 </dev/null & echo started ;;
fds) ls /proc/self/fd ;;
pwd) pwd ;;
env) env ;;
*) echo "appvtest: unknown command $cmd" >&2; exit 99 ;;
esac
`

// world is what the integration tests share: a package, two users and a
// Manager, all removed (with every environment stopped) when the test ends.
type world struct {
	t      *testing.T
	m      *Manager
	logs   *syncBuffer
	base   string // a 0755 directory holding everything below
	runDir string
	pkgID  string
	root   string // the package root's installed path, missing on the host
	pkg    string // the package root's files (the Lower)
	pkgCfg string // the package's VFS/XdgConfigHome
	app    string // root + /bin/app
	u1, u2 User
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, nil)
}

// newWorldWith is newWorld with a chance to change the Manager's options.
func newWorldWith(t *testing.T, configure func(*Options)) *world {
	t.Helper()
	needRoot(t)
	w := &world{t: t, logs: &syncBuffer{}}
	base, err := os.MkdirTemp("", "appv-venv-")
	must(t, err)
	must(t, os.Chmod(base, 0o755))
	t.Cleanup(func() { removeAll(t, base) })
	w.base = base
	// Socket paths are short; MkdirTemp in /tmp keeps this one so.
	w.runDir, err = os.MkdirTemp("", "avr")
	must(t, err)
	t.Cleanup(func() { removeAll(t, w.runDir) })

	w.pkgID = randomHex(8)
	w.root = "/opt/appvtest-" + w.pkgID
	w.app = w.root + "/bin/app"
	w.pkg = filepath.Join(base, "pkg", "Root")
	w.pkgCfg = filepath.Join(base, "pkg", "VFS", "XdgConfigHome")
	writeFile(t, filepath.Join(w.pkg, "bin", "app"), strings.ReplaceAll(appScript, "@ROOT@", w.root), 0o755)
	writeFile(t, filepath.Join(w.pkg, "bin", "noexec"), "#!/bin/sh\necho should not run\n", 0o744)
	writeFile(t, filepath.Join(w.pkg, "share", "data.txt"), "hello from the package\n", 0o644)
	writeFile(t, filepath.Join(w.pkgCfg, "appvtest", "defaults.ini"), "color=blue\n", 0o644)
	writeFile(t, filepath.Join(w.pkgCfg, "appvtest", "themes", "dark.ini"), "dark\n", 0o644)
	for _, d := range []string{filepath.Join(base, "pkg"), w.pkg, filepath.Dir(w.pkgCfg), w.pkgCfg} {
		must(t, os.Chmod(d, 0o755))
	}

	w.u1 = w.newUser(uid1, gid1, []uint32{extraGroup})
	w.u2 = w.newUser(uid2, gid2, nil)

	opts := Options{
		Exe: os.Args[0],
		// A race-enabled supervisor would otherwise linger 1 s at exit.
		Env:       []string{supervisorEnv + "=1", "GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0"},
		RunDir:    w.runDir,
		Logger:    slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		IdleGrace: 200 * time.Millisecond,
		StopGrace: 300 * time.Millisecond,
	}
	if configure != nil {
		configure(&opts)
	}
	w.m, err = NewManager(context.Background(), opts)
	must(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, e := range w.m.Running() {
			if err := w.m.Stop(ctx, e.Key); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		// Supervisors' stderr (and so a race report) ends up in the log.
		if strings.Contains(w.logs.String(), "DATA RACE") {
			t.Error("a supervisor reported a data race")
		}
		if t.Failed() {
			t.Logf("manager log:\n%s", w.logs.String())
		}
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			if bytes.Contains(mi, []byte(w.pkgID)) || bytes.Contains(mi, []byte(base)) {
				t.Errorf("a mount of the test is visible on the host:\n%s", mi)
			}
		}
		if _, err := os.Lstat(w.root); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists on the host: %v", w.root, err)
		}
	})
	return w
}

// mountTmpfs mounts a tmpfs on the host at dir, holding one file, until the
// test ends.
func (w *world) mountTmpfs(dir, file, content string) {
	w.t.Helper()
	must(w.t, os.MkdirAll(dir, 0o755))
	must(w.t, unix.Mount("appvtest", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"))
	w.t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			w.t.Errorf("cleanup: unmount %s: %v", dir, err)
		}
	})
	writeFile(w.t, filepath.Join(dir, file), content, 0o644)
}

// newUser makes a home directory owned by the user, with a ~/.config and a
// ~/.local/share, as a desktop session has.
func (w *world) newUser(uid, gid uint32, groups []uint32) User {
	home := filepath.Join(w.base, "home", randomHex(4))
	for _, d := range []string{filepath.Dir(home), home, home + "/.config", home + "/.local", home + "/.local/share"} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			w.t.Fatal(err)
		}
		if d != filepath.Dir(home) {
			must(w.t, os.Chown(d, int(uid), int(gid)))
		} else {
			must(w.t, os.Chmod(d, 0o755))
		}
	}
	return User{UID: uid, GID: gid, Groups: groups, Name: "appvtest", Home: home}
}

// cow returns the COW roaming or local directory of a token, App-V's
// layout under XDG_DATA_HOME and XDG_CACHE_HOME.
func (w *world) cow(u User, roaming bool, token string) (upper, work string) {
	dir := filepath.Join(u.Home, ".cache", "appv", "vfs", w.pkgID)
	if roaming {
		dir = filepath.Join(u.Home, ".local", "share", "appv", "vfs", w.pkgID)
	}
	return filepath.Join(dir, token), filepath.Join(dir, ".work", token)
}

// spec is the package's environment for u: the package root (COW local)
// and its XdgConfigHome (COW roaming) merged over the user's ~/.config.
func (w *world) spec(u User) Spec {
	rootUp, rootWork := w.cow(u, false, "Root")
	cfgUp, cfgWork := w.cow(u, true, "XdgConfigHome")
	return Spec{
		Key:  keyFor(u, w.pkgID),
		User: u,
		Layers: []Layer{
			{Target: w.root, Lower: []string{w.pkg}, Upper: rootUp, Work: rootWork},
			{Target: filepath.Join(u.Home, ".config"), Lower: []string{w.pkgCfg}, Native: true, Upper: cfgUp, Work: cfgWork},
		},
		Env: []string{"APPVTEST_PKG=1", "PATH=" + w.root + "/bin:/usr/bin:/bin"},
	}
}

func keyFor(u User, id string) string {
	return strconv.Itoa(int(u.UID)) + "-" + id
}

// run launches argv and waits for it, returning its output.
func (w *world) run(spec Spec, req Request, stdin string) (code int, stdout, stderr string) {
	w.t.Helper()
	p, out, errb := w.start(spec, req, stdin)
	code, err := p.Wait()
	if err != nil {
		w.t.Fatalf("Wait: %v", err)
	}
	return code, out(), errb()
}

// start launches argv with pipes for its standard streams; the functions
// it returns give everything written to them once the program is done.
func (w *world) start(spec Spec, req Request, stdin string) (p *Process, stdout, stderr func() string) {
	w.t.Helper()
	inR, inW := pipe(w.t)
	outR, outW := pipe(w.t)
	errR, errW := pipe(w.t)
	req.Stdin, req.Stdout, req.Stderr = inR, outW, errW
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := w.m.Launch(ctx, spec, req)
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		w.t.Fatalf("Launch %q: %v", req.Argv, err)
	}
	go func() {
		_, _ = io.WriteString(inW, stdin)
		inW.Close()
	}()
	return p, collect(outR), collect(errR)
}

// collect reads r to its end in the background.
func collect(r *os.File) func() string {
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&buf, r)
		r.Close()
	}()
	return func() string {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			return "<output not closed>"
		}
		return buf.String()
	}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	must(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// waitGone waits until the environment key has ended: supervisor exited
// (when sup > 0), socket and directory removed.
func (w *world) waitGone(key string, sup int) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, statErr := os.Stat(filepath.Join(w.runDir, key))
		if !w.m.InUse(key) && len(w.m.Running()) == 0 && errors.Is(statErr, os.ErrNotExist) &&
			(sup <= 0 || errors.Is(unix.Kill(sup, 0), unix.ESRCH)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.t.Fatalf("environment %s (supervisor %d) still there: %+v", key, sup, w.m.Running())
}

func (w *world) running(key string) Env {
	w.t.Helper()
	for _, e := range w.m.Running() {
		if e.Key == key {
			return e
		}
	}
	w.t.Fatalf("environment %s is not running: %+v", key, w.m.Running())
	return Env{}
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), mode))
	must(t, os.Chmod(p, mode))
}

func removeAll(t *testing.T, p string) {
	if err := os.RemoveAll(p); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// owner returns a file's uid and gid.
func owner(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	st, err := os.Stat(p)
	must(t, err)
	s := st.Sys().(*syscall.Stat_t)
	return s.Uid, s.Gid
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the Manager's
// goroutines log into it).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
