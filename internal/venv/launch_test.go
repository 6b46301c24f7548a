package venv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Programs see the package at its installed path, run as the user, get the
// caller's streams and the package's environment, and their exit codes come
// back. All cases run in (join) one environment.
func TestLaunch(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	noEntry := filepath.Join(w.base, "private")
	must(t, os.Mkdir(noEntry, 0o700))

	tests := []struct {
		name       string
		req        Request
		stdin      string
		wantCode   int
		wantOut    string // exact, unless wantIn
		wantIn     []string
		wantStderr string // contained
	}{
		{name: "reads package data", req: Request{Argv: []string{w.app, "data"}}, wantOut: "hello from the package\n"},
		{name: "exit code passes through", req: Request{Argv: []string{w.app, "exit", "42"}}, wantCode: 42},
		{name: "runs as the user", req: Request{Argv: []string{w.app, "id"}}, wantOut: "65534\n65534\n65534 4242\n"},
		{name: "stdin passes through", req: Request{Argv: []string{w.app, "cat"}}, stdin: "echo input\n", wantOut: "echo input\n"},
		{name: "program found in PATH inside", req: Request{Argv: []string{"app", "exit", "3"}}, wantCode: 3},
		{
			name:   "package environment wins",
			req:    Request{Argv: []string{w.app, "env"}, Env: []string{"APPVTEST_PKG=0", "LANG=C.UTF-8"}},
			wantIn: []string{"APPVTEST_PKG=1\n", "LANG=C.UTF-8\n", "HOME=" + w.u1.Home + "\n", "USER=appvtest\n"},
		},
		{name: "no descriptor leaks", req: Request{Argv: []string{w.app, "fds"}}, wantOut: "0\n1\n2\n3\n"},
		{name: "working directory", req: Request{Argv: []string{w.app, "pwd"}, Dir: w.root + "/share"}, wantOut: w.root + "/share\n"},
		{
			name:       "unenterable directory falls back to home",
			req:        Request{Argv: []string{w.app, "pwd"}, Dir: noEntry},
			wantOut:    w.u1.Home + "\n",
			wantStderr: "appv: cannot enter " + noEntry,
		},
		{name: "stderr passes through", req: Request{Argv: []string{w.app, "nonsense"}}, wantCode: 99, wantStderr: "unknown command nonsense"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := w.run(spec, tt.req, tt.stdin)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if tt.wantIn != nil {
				for _, s := range tt.wantIn {
					if !strings.Contains(out, s) {
						t.Errorf("output lacks %q:\n%s", s, out)
					}
				}
			} else if out != tt.wantOut {
				t.Errorf("output %q, want %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantStderr)
			}
		})
	}
	if _, err := os.Lstat(w.root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists on the host: %v", w.root, err)
	}
}

// Writes land in the user's COW directories, owned by the user, never on the
// host or in the package; they persist into the next environment.
func TestCopyOnWrite(t *testing.T) {
	w := newWorld(t)
	u := w.u1
	spec := w.spec(u)
	stateUp, stateWork := w.cow(u, false, "XdgStateHome")
	// ~/.local/state does not exist on the host: it must not be created.
	spec.Layers = append(spec.Layers, Layer{Target: u.Home + "/.local/state", Upper: stateUp, Work: stateWork})
	writeFile(t, u.Home+"/.config/host.ini", "native\n", 0o644)

	code, out, errOut := w.run(spec, Request{Argv: []string{w.app, "write", "color=red"}}, "")
	if code != 0 {
		t.Fatalf("write: exit %d: %s%s", code, out, errOut)
	}
	files := []string{
		w.root + "/local.txt",                // package root: COW local
		u.Home + "/.local/state/appvtest/st", // missing native dir: COW local
		u.Home + "/.local/share/native.txt",  // not virtualized: the host's
	}
	if code, out, errOut := w.run(spec, Request{Argv: append([]string{w.app, "touch"}, files...)}, ""); code != 0 {
		t.Fatalf("touch: exit %d: %s%s", code, out, errOut)
	}

	cfgUp, _ := w.cow(u, true, "XdgConfigHome")
	rootUp, _ := w.cow(u, false, "Root")
	checks := []struct {
		name, path string
		want       string // content; "" means the file must not exist
	}{
		{"settings in COW roaming", cfgUp + "/appvtest/settings.ini", "color=red\n"},
		{"settings not in host home", u.Home + "/.config/appvtest/settings.ini", ""},
		{"settings not in package", w.pkgCfg + "/appvtest/settings.ini", ""},
		{"package root write in COW local", rootUp + "/local.txt", "touch\n"},
		{"package root write not in package", w.pkg + "/local.txt", ""},
		{"new directory write in COW local", stateUp + "/appvtest/st", "touch\n"},
		{"missing directory not created on host", u.Home + "/.local/state", ""},
		{"native write on host", u.Home + "/.local/share/native.txt", "touch\n"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(c.path)
			if c.want == "" {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s exists (%v)", c.path, err)
				}
				return
			}
			if err != nil || string(b) != c.want {
				t.Fatalf("%s: %q, %v; want %q", c.path, b, err, c.want)
			}
			if uid, gid := owner(t, c.path); uid != u.UID || gid != u.GID {
				t.Errorf("%s belongs to %d:%d, want %d:%d", c.path, uid, gid, u.UID, u.GID)
			}
		})
	}

	// A new environment (the first has ended) reads the user's changes
	// over the package's defaults and the native files.
	w.waitGone(spec.Key, 0)
	_, out, _ = w.run(spec, Request{Argv: []string{w.app, "read",
		u.Home + "/.config/appvtest/settings.ini",
		u.Home + "/.config/appvtest/defaults.ini",
		u.Home + "/.config/host.ini",
		w.root + "/local.txt",
	}}, "")
	if want := "color=red\ncolor=blue\nnative\ntouch\n"; out != want {
		t.Errorf("second environment reads %q, want %q", out, want)
	}
}

// A second launch with the same key joins the running environment: same
// mount namespace, same view, the first one's writes visible. The
// environment ends after its last process.
func TestJoin(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	holder, holderOut, _ := w.startHeld(spec, []string{w.app, "writehold", "joined=yes"})

	env := w.running(spec.Key)
	if !w.m.InUse(spec.Key) {
		t.Error("InUse is false while a program runs")
	}
	if !containsInt(env.PIDs, holder.PID()) {
		t.Errorf("Running lists %v, not the program %d", env.PIDs, holder.PID())
	}
	holderNS, err := os.Readlink("/proc/" + strconv.Itoa(holder.PID()) + "/ns/mnt")
	must(t, err)
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)
	if holderNS == hostNS {
		t.Fatalf("the program runs in the host's mount namespace %s", hostNS)
	}

	code, out, errOut := w.run(spec, Request{Argv: []string{w.app, "readns", w.u1.Home + "/.config/appvtest/settings.ini"}}, "")
	if code != 0 {
		t.Fatalf("second launch: exit %d: %s", code, errOut)
	}
	if want := "joined=yes\n" + holderNS + "\n"; out != want {
		t.Errorf("second launch printed %q, want %q", out, want)
	}
	if got := w.running(spec.Key).Supervisor; got != env.Supervisor {
		t.Errorf("supervisor changed from %d to %d", env.Supervisor, got)
	}

	holder.release()
	if code, err := holder.Wait(); code != 0 || err != nil {
		t.Errorf("first program: %d, %v (%s)", code, err, holderOut())
	}
	w.waitGone(spec.Key, env.Supervisor)
	if _, err := os.Stat(filepath.Join(w.runDir, spec.Key, socketName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

// heldProcess is a program that waits for its standard input to close.
type heldProcess struct {
	*Process
	release func()
}

// startHeld starts a program that prints "ready" and then blocks reading
// its standard input until release.
func (w *world) startHeld(spec Spec, argv []string) (*heldProcess, func() string, func() string) {
	w.t.Helper()
	inR, inW := pipe(w.t)
	outR, outW := pipe(w.t)
	errR, errW := pipe(w.t)
	p, err := w.m.Launch(context.Background(), spec, Request{Argv: argv, Stdin: inR, Stdout: outW, Stderr: errW})
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		w.t.Fatalf("Launch: %v", err)
	}
	line := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(outR, line); err != nil || string(line) != "ready\n" {
		w.t.Fatalf("program did not get ready: %q, %v", line, err)
	}
	return &heldProcess{p, func() { inW.Close() }}, collect(outR), collect(errR)
}

// Another user's environment sees neither the first user's changes nor a
// package it was not given, and cannot be joined by the first user.
func TestIsolation(t *testing.T) {
	w := newWorld(t)
	spec1 := w.spec(w.u1)
	holder, _, _ := w.startHeld(spec1, []string{w.app, "writehold", "secret=1"})
	defer holder.release()

	cfgUp, cfgWork := w.cow(w.u2, true, "XdgConfigHome")
	spec2 := Spec{Key: keyFor(w.u2, w.pkgID), User: w.u2, Layers: []Layer{
		{Target: w.u2.Home + "/.config", Lower: []string{w.pkgCfg}, Native: true, Upper: cfgUp, Work: cfgWork},
	}}
	script := `test -e ` + w.root + ` && echo package; ` +
		`test -e ` + w.u1.Home + `/.config/appvtest/settings.ini && echo settings; ` +
		`cat $HOME/.config/appvtest/defaults.ini; id -u`
	code, out, errOut := w.run(spec2, Request{Argv: []string{"/bin/sh", "-c", script}}, "")
	if code != 0 || out != "color=blue\n65533\n" {
		t.Errorf("second user: exit %d, output %q (stderr %q), want only the defaults and uid 65533", code, out, errOut)
	}

	// The first user's key, asked for by the second user.
	wrong := spec1
	wrong.User = w.u2
	_, err := w.m.Launch(context.Background(), wrong, Request{Argv: []string{"/bin/true"}})
	if !errors.Is(err, ErrWrongUser) {
		t.Errorf("launch into another user's environment: %v, want ErrWrongUser", err)
	}
}

// With TTY the program gets a terminal of its own as controlling terminal,
// sized as asked, and its output arrives through the master.
func TestTTY(t *testing.T) {
	w := newWorld(t)
	p, err := w.m.Launch(context.Background(), w.spec(w.u1), Request{Argv: []string{w.app, "tty"}, TTY: true, Rows: 33, Cols: 101})
	must(t, err)
	master := p.Master()
	if master == nil {
		t.Fatal("no master")
	}
	defer master.Close()
	out, err := io.ReadAll(master)
	var pe *fs.PathError
	if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, syscall.EIO)) {
		t.Fatalf("read master: %v", err)
	}
	code, err := p.Wait()
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %q", code, err, out)
	}
	lines := strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "/dev/pts/") || lines[1] != "33 101" {
		t.Fatalf("output %q, want the terminal's name and size 33 101", out)
	}
	var pgrp, ttyNr, tpgid int
	if _, err := fmt.Sscanf(lines[2], "pgrp=%d tty_nr=%d tpgid=%d", &pgrp, &ttyNr, &tpgid); err != nil {
		t.Fatalf("stat line %q: %v", lines[2], err)
	}
	if ttyNr == 0 || tpgid != pgrp {
		t.Errorf("no controlling terminal, or not in the foreground: %s", lines[2])
	}
}

// Stop ends every process of the environment, politely or not, and the
// environment with them.
func TestStop(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name     string
		argv     func(w *world) []string
		wantCode int
	}{
		{"SIGTERM", func(w *world) []string { return []string{w.app, "sleep", "60"} }, 128 + 15},
		{"SIGKILL after grace", func(w *world) []string { return []string{w.app, "stubborn", "60"} }, 128 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			spec := w.spec(w.u1)
			p, out, _ := w.start(spec, Request{Argv: tt.argv(w)}, "")
			sup := w.running(spec.Key).Supervisor
			waitFor(t, "the program to start", func() bool { return w.m.InUse(spec.Key) })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.m.Stop(ctx, spec.Key); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			code, err := p.Wait()
			if code != tt.wantCode || err != nil {
				t.Errorf("exit %d, %v; want %d (output %q)", code, err, tt.wantCode, out())
			}
			w.waitGone(spec.Key, sup)
		})
	}
}

// A process left behind by a program that exited keeps the environment in
// use; Stop ends it too.
func TestOrphanKeepsEnvironment(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	code, out, _ := w.run(spec, Request{Argv: []string{w.app, "daemon", "60"}}, "")
	if code != 0 || out != "started\n" {
		t.Fatalf("daemon: %d %q", code, out)
	}
	time.Sleep(3 * 200 * time.Millisecond) // longer than the idle grace
	env := w.running(spec.Key)
	if len(env.PIDs) == 0 || !w.m.InUse(spec.Key) {
		t.Fatalf("the orphan does not keep the environment: %+v", env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, w.m.Stop(ctx, spec.Key))
	w.waitGone(spec.Key, env.Supervisor)
	for _, pid := range env.PIDs {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d survived Stop", pid)
		}
	}
}

func TestSignal(t *testing.T) {
	w := newWorld(t)
	p, _, _ := w.start(w.spec(w.u1), Request{Argv: []string{w.app, "sleep", "60"}}, "")
	waitFor(t, "the program to start", func() bool { return len(w.m.Running()) == 1 && len(w.m.Running()[0].PIDs) > 0 })
	must(t, p.Signal(syscall.SIGINT))
	if code, err := p.Wait(); code != 128+int(syscall.SIGINT) || err != nil {
		t.Errorf("exit %d, %v; want %d", code, err, 128+int(syscall.SIGINT))
	}
	if err := p.Signal(syscall.SIGINT); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit: %v, want os.ErrProcessDone", err)
	}
}

// Launches that cannot work fail with errors that say why.
func TestLaunchErrors(t *testing.T) {
	w := newWorld(t)
	good := w.spec(w.u1)
	tests := []struct {
		name   string
		spec   func() Spec
		argv   []string
		target error    // for errors.Is, if not nil
		want   []string // substrings of the message
	}{
		{
			name:   "not executable by the user",
			spec:   func() Spec { return good },
			argv:   []string{w.root + "/bin/noexec"},
			target: fs.ErrPermission,
			want:   []string{"venv: launch", w.root + "/bin/noexec", "permission denied", "uid 65534"},
		},
		{
			name:   "no such program",
			spec:   func() Spec { return good },
			argv:   []string{"appvtest-nonexistent"},
			target: fs.ErrNotExist,
			want:   []string{"appvtest-nonexistent", "not found in $PATH"},
		},
		{
			name:   "no such file",
			spec:   func() Spec { return good },
			argv:   []string{w.root + "/bin/missing"},
			target: fs.ErrNotExist,
			want:   []string{w.root + "/bin/missing", "no such file"},
		},
		{
			name: "bad key",
			spec: func() Spec { s := good; s.Key = "../x"; return s },
			argv: []string{"true"},
			want: []string{"venv: spec", "key"},
		},
		{
			name: "target under /proc",
			spec: func() Spec {
				s := good
				s.Key = "bad-proc"
				s.Layers = []Layer{{Target: "/proc/sys", Lower: []string{w.pkg}}}
				return s
			},
			argv: []string{"true"},
			want: []string{"venv: spec bad-proc: layer 0: target /proc/sys lies under /proc"},
		},
		{
			name: "missing lower",
			spec: func() Spec {
				s := good
				s.Key = "bad-lower"
				s.Layers = []Layer{{Target: w.root, Lower: []string{w.base + "/nonexistent"}}}
				return s
			},
			argv: []string{"true"},
			want: []string{"venv: start bad-lower", "lower", "nonexistent"},
		},
		{
			name: "new top-level directory",
			spec: func() Spec {
				s := good
				s.Key = "bad-top"
				s.Layers = []Layer{{Target: "/appvtest-" + w.pkgID, Lower: []string{w.pkg}}}
				return s
			},
			argv: []string{"true"},
			want: []string{"venv: start bad-top: cannot add /appvtest-"},
		},
		{
			name: "upper owned by someone else",
			spec: func() Spec {
				s := good
				s.Key = "bad-upper"
				s.Layers = []Layer{{Target: w.root, Lower: []string{w.pkg}, Upper: w.pkg, Work: w.base + "/work"}}
				return s
			},
			argv: []string{"true"},
			want: []string{"copy-on-write directory", "belongs to uid 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := w.m.Launch(context.Background(), tt.spec(), Request{Argv: tt.argv})
			if err == nil {
				code, _ := p.Wait()
				t.Fatalf("Launch succeeded (exit %d)", code)
			}
			t.Log(err)
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("%v is not %v", err, tt.target)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
	// Failed setups leave nothing running.
	waitFor(t, "failed environments to go", func() bool {
		for _, e := range w.m.Running() {
			if e.Key != good.Key {
				return false
			}
		}
		return true
	})
}

// A new Manager (a restarted service) finds a running environment and
// joins it.
func TestAdopt(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	holder, _, _ := w.startHeld(spec, []string{w.app, "writehold", "adopted=1"})
	defer holder.release()
	sup := w.running(spec.Key).Supervisor

	m2, err := NewManager(context.Background(), w.m.opts)
	must(t, err)
	if got := m2.Running(); len(got) != 1 || got[0].Supervisor != sup {
		t.Fatalf("new manager sees %+v, want supervisor %d", got, sup)
	}
	old := w.m
	w.m = m2
	_, out, _ := w.run(spec, Request{Argv: []string{w.app, "read", w.u1.Home + "/.config/appvtest/settings.ini"}}, "")
	if out != "adopted=1\n" {
		t.Errorf("joined through the new manager: %q", out)
	}
	w.m = old
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Mounts the host has below a covered directory stay visible inside.
func TestHostMountsStayVisible(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	// Below a Native target.
	w.mountTmpfs(w.u1.Home+"/.config/mnt", "inner.txt", "under config\n")
	// Below the root-owned ancestor of a target missing on the host.
	sys := filepath.Join(w.base, "sys")
	w.mountTmpfs(sys+"/m", "f.txt", "under ancestor\n")
	app := sys + "/app-" + w.pkgID
	spec.Layers = append(spec.Layers, Layer{Target: app, Lower: []string{w.pkg}})

	code, out, errOut := w.run(spec, Request{Argv: []string{w.app, "read",
		w.u1.Home + "/.config/mnt/inner.txt",
		w.u1.Home + "/.config/appvtest/defaults.ini",
		sys + "/m/f.txt",
		app + "/share/data.txt",
	}}, "")
	if want := "under config\ncolor=blue\nunder ancestor\nhello from the package\n"; code != 0 || out != want {
		t.Errorf("exit %d, output %q (stderr %q), want %q", code, out, errOut, want)
	}
	if _, err := os.Lstat(app); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists on the host: %v", app, err)
	}
}

// A dead FUSE mount below a covered directory (its daemon gone: every
// access is ENOTCONN, as a crashed sshfs leaves) is left out; it does not
// stop the environment. It used to fail the supervisor's set-up.
func TestDeadMountBelowTarget(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	dead := w.u1.Home + "/.config/dead"
	must(t, os.MkdirAll(dead, 0o755))
	fuse, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("needs /dev/fuse: %v", err)
	}
	must(t, unix.Mount("appvtest", dead, "fuse", unix.MS_NOSUID|unix.MS_NODEV,
		fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", fuse.Fd())))
	t.Cleanup(func() { _ = unix.Unmount(dead, unix.MNT_DETACH) })
	fuse.Close() // no daemon: the connection is gone
	var st unix.Stat_t
	if err := unix.Stat(dead, &st); !errors.Is(err, unix.ENOTCONN) {
		t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
	}
	code, out, errOut := w.run(spec, Request{Argv: []string{w.app, "read", w.u1.Home + "/.config/appvtest/defaults.ini"}}, "")
	if code != 0 || out != "color=blue\n" {
		t.Errorf("exit %d, output %q (stderr %q): a dead mount below a target must not stop the environment", code, out, errOut)
	}
}

// A symlink a user could have planted does not redirect a mount.
func TestUserSymlinkRefused(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	link := w.u1.Home + "/.cfglink"
	must(t, os.Symlink(w.u1.Home+"/.config", link))
	must(t, os.Lchown(link, uid1, gid1))
	spec.Key += "-link"
	spec.Layers = append(spec.Layers, Layer{Target: link + "/sub", Lower: []string{w.pkg}})
	_, err := w.m.Launch(context.Background(), spec, Request{Argv: []string{"/bin/true"}})
	if err == nil || !strings.Contains(err.Error(), "a user could have made") {
		t.Errorf("Launch through a user's symlink: %v", err)
	}
}

// Launches arriving while an idle supervisor exits start a new one instead
// of failing.
func TestRelaunchDuringIdleExit(t *testing.T) {
	w := newWorldWith(t, func(o *Options) { o.IdleGrace = 5 * time.Millisecond })
	spec := w.spec(w.u1)
	sups := make(map[int]bool)
	for i := range 40 {
		p, out, errOut := w.start(spec, Request{Argv: []string{w.app, "exit", "7"}}, "")
		if env := w.m.Running(); len(env) == 1 {
			sups[env[0].Supervisor] = true
		}
		if code, err := p.Wait(); code != 7 || err != nil {
			t.Fatalf("launch %d: exit %d, %v (%s%s)", i, code, err, out(), errOut())
		}
		time.Sleep(time.Duration(i%8) * time.Millisecond)
	}
	t.Logf("%d supervisors, %d launches retried", len(sups), strings.Count(w.logs.String(), "supervisor was exiting"))
}

// What the user deletes from the package's directories stays deleted in
// later environments, also when they make the directory again.
func TestDeletionsPersist(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(w.u1)
	cfg := w.u1.Home + "/.config/appvtest"
	steps := []struct {
		name, script, want string
	}{
		{"package defaults visible", `ls ` + cfg, "defaults.ini\nthemes\n"},
		{"delete the directory", `rm -r ` + cfg + ` && echo gone`, "gone\n"},
		{"still deleted", `ls ` + cfg + ` 2>/dev/null || echo missing`, "missing\n"},
		{"make it again", `mkdir ` + cfg + ` && touch ` + cfg + `/new && ls ` + cfg, "new\n"},
		{"still without the defaults", `ls ` + cfg, "new\n"},
	}
	for _, st := range steps {
		// Each step in a new environment: the COW state is what persists.
		code, out, errOut := w.run(spec, Request{Argv: []string{"/bin/sh", "-c", st.script}}, "")
		if code != 0 || out != st.want {
			t.Fatalf("%s: exit %d, output %q (stderr %q), want %q", st.name, code, out, errOut, st.want)
		}
		w.waitGone(spec.Key, 0)
	}
}

// A layer over ~/.local/share whose COW directory lies inside it (the
// layout for XdgDataHome): writes land in it, and overlayfs refuses to show
// the COW directory itself inside the environment (ELOOP).
func TestUpperInsideTarget(t *testing.T) {
	w := newWorld(t)
	u := w.u1
	spec := w.spec(u)
	up, work := w.cow(u, true, "XdgDataHome")
	spec.Layers = append(spec.Layers, Layer{Target: u.Home + "/.local/share", Lower: []string{w.pkgCfg}, Native: true, Upper: up, Work: work})
	script := `echo x > $HOME/.local/share/appvtest/written && ls $HOME/.local/share/appvtest && ls ` + up
	code, out, errOut := w.run(spec, Request{Argv: []string{"/bin/sh", "-c", script}}, "")
	if code == 0 || out != "defaults.ini\nthemes\nwritten\n" || !strings.Contains(errOut, "Too many levels of symbolic links") {
		t.Errorf("exit %d, output %q, stderr %q", code, out, errOut)
	}
	if b, err := os.ReadFile(up + "/appvtest/written"); err != nil || string(b) != "x\n" {
		t.Errorf("write did not land in the COW directory: %q, %v", b, err)
	}
}

// A target missing under another layer is looked for in that layer's view:
// its made-up parent keeps what the layer shows (package and host files).
func TestNestedMissingTarget(t *testing.T) {
	w := newWorld(t)
	sys := filepath.Join(w.base, "sys")
	writeFile(t, sys+"/share/host.txt", "host\n", 0o644)
	pkgSys := filepath.Join(w.base, "pkg", "VFS", "Sys")
	writeFile(t, pkgSys+"/share/pkg.txt", "package\n", 0o644)
	spec := w.spec(w.u1)
	spec.Layers = append(spec.Layers,
		Layer{Target: sys + "/share/new", Lower: []string{w.pkg}}, // listed first on purpose
		Layer{Target: sys, Lower: []string{pkgSys}, Native: true},
	)
	code, out, errOut := w.run(spec, Request{Argv: []string{w.app, "read",
		sys + "/share/host.txt", sys + "/share/pkg.txt", sys + "/share/new/share/data.txt"}}, "")
	if want := "host\npackage\nhello from the package\n"; code != 0 || out != want {
		t.Errorf("exit %d, output %q (stderr %q), want %q", code, out, errOut, want)
	}
	if _, err := os.Lstat(sys + "/share/new"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s/share/new exists on the host: %v", sys, err)
	}
}

// A lower hiding parts of the lowers after it (a whiteout, an opaque
// directory) keeps them hidden, also from the directories given to the user.
func TestHidingLower(t *testing.T) {
	w := newWorld(t)
	hide := filepath.Join(w.base, "hide")
	must(t, os.MkdirAll(hide+"/extra/c", 0o755))
	must(t, unix.Mknod(hide+"/share", unix.S_IFCHR, 0)) // a whiteout
	must(t, unix.Setxattr(hide+"/extra", "trusted.overlay.opaque", []byte("y"), 0))
	must(t, os.MkdirAll(w.pkg+"/extra/a/b", 0o755))
	spec := w.spec(w.u1)
	spec.Layers[0].Lower = []string{hide, w.pkg}

	code, out, errOut := w.run(spec, Request{Argv: []string{"/bin/sh", "-c", "ls " + w.root + "; ls " + w.root + "/extra"}}, "")
	if want := "bin\nextra\nc\n"; code != 0 || out != want {
		t.Errorf("exit %d, output %q (stderr %q), want %q", code, out, errOut, want)
	}
	rootUp, _ := w.cow(w.u1, false, "Root")
	var got []string
	must(t, filepath.WalkDir(rootUp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != rootUp {
			rel, _ := filepath.Rel(rootUp, p)
			got = append(got, rel)
		}
		return err
	}))
	if want := []string{"bin", "extra", "extra/c"}; !slices.Equal(got, want) {
		t.Errorf("COW directory holds %q, want %q", got, want)
	}
}
