// Package e2e runs appv end to end: the real binary, a real client service
// (FUSE, mount namespaces, overlays), real users, a real program built in the
// test, and packages served over HTTP. It needs root and /dev/fuse and skips
// cleanly without them; CI runs it as root.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appv/appv/internal/harness"
)

// env is one test machine: an appv binary, a running client service with its
// own state and run directories, and test users.
type env struct {
	t     *testing.T
	svc   *harness.Service
	users []*harness.User
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces, FUSE, overlayfs); CI runs it as root")
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		t.Skipf("needs /dev/fuse: %v", err)
	} else {
		f.Close()
	}
	for _, tool := range []string{"useradd", "userdel", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// buildAppv builds the appv binary where every user can run it.
func buildAppv(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "appv")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/appv/appv/cmd/appv")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build appv: %v\n%s", err, out)
	}
	return bin
}

func newEnv(t *testing.T, nusers int) *env {
	needRoot(t)
	base, err := os.MkdirTemp("", "appv-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(base, 0o755)
	t.Cleanup(func() { os.RemoveAll(base) })
	e := &env{t: t}
	for i := range nusers {
		u, err := harness.AddUser(fmt.Sprintf("appve2e%d%d", os.Getpid()%10000, i), filepath.Join(base, "home"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(u.Remove)
		e.users = append(e.users, u)
	}
	if e.svc, err = harness.StartService(buildAppv(t, base), base); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.svc.Stop()
		if t.Failed() {
			t.Logf("service log:\n%s", e.svc.Logs())
		}
	})
	return e
}

// appvAs runs appv as a user (nil: root) and returns its exit code and
// output.
func (e *env) appvAs(u *harness.User, stdin string, args ...string) (int, string, string) {
	e.t.Helper()
	r, err := e.svc.Appv(context.Background(), u, stdin, args...)
	if err != nil {
		e.t.Fatalf("run appv %v: %v", args, err)
	}
	return r.Code, r.Stdout, r.Stderr
}

func (e *env) mustAppv(u *harness.User, args ...string) string {
	e.t.Helper()
	code, out, errs := e.appvAs(u, "", args...)
	if code != 0 {
		e.t.Fatalf("appv %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func newContentServer(t *testing.T, dir string) *harness.ContentServer {
	t.Helper()
	srv, err := harness.NewContentServer(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// testProgram is a real program: it reads its data at its installed path,
// writes its settings under $HOME/.config, reports who it runs as, and exits
// with a code given on its command line.
const testProgram = `package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	greeting, err := os.ReadFile("/opt/e2eapp/share/greeting.txt")
	if err != nil {
		fmt.Fprintln(os.Stderr, "read greeting:", err)
		os.Exit(10)
	}
	// Read 64 KiB in the middle of the large data file, no more.
	f, err := os.Open("/opt/e2eapp/share/data.bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "open data:", err)
		os.Exit(11)
	}
	// e2eapp [exit code [offset in MiB]]
	offset := int64(4 << 20)
	if len(os.Args) > 2 {
		mib, _ := strconv.Atoi(os.Args[2])
		offset = int64(mib) << 20
	}
	buf := make([]byte, 64<<10)
	if _, err := f.ReadAt(buf, offset); err != nil {
		fmt.Fprintln(os.Stderr, "read data:", err)
		os.Exit(12)
	}
	f.Close()
	home, _ := os.UserHomeDir()
	dir := filepath.Join(home, ".config", "e2eapp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "settings dir:", err)
		os.Exit(13)
	}
	settings := filepath.Join(dir, "settings.ini")
	old, _ := os.ReadFile(settings)
	if err := os.WriteFile(settings, append(old, []byte("launched\n")...), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write settings:", err)
		os.Exit(14)
	}
	fmt.Printf("%s uid=%d gid=%d launches=%d\n", greeting, os.Getuid(), os.Getgid(), len(old)/len("launched\n")+1)
	code := 0
	if len(os.Args) > 1 {
		code, _ = strconv.Atoi(os.Args[1])
	}
	os.Exit(code)
}
`

// buildPackage builds the test program and packages it with a large data
// file, so what a launch reads is a small fraction of the package.
func buildPackage(t *testing.T, appv, outDir string) (pkg string, size int64) {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(testProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module e2eapp\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(tree, "bin", "e2eapp"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build test program: %v\n%s", err, out)
	}
	// A second application: the system's cat, to check stdin and the
	// terminal pass through.
	catData, err := os.ReadFile("/bin/cat")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "bin", "cat"), catData, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tree, "share"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "share", "greeting.txt"), []byte("hello from a streamed package"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 40<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(tree, "share", "data.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	pkg = filepath.Join(outDir, "E2eApp.appv")
	cmd := exec.Command(appv, "package", "create", "-q", "--from-dir", tree, "--name", "E2eApp", "--version", "1.0.0.0", "--root", "/opt/e2eapp", "-o", pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("package create: %v\n%s", err, out)
	}
	st, err := os.Stat(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return pkg, st.Size()
}

// TestAddPublishLaunchStreamed is issue 3's end-to-end test: add from an
// HTTP server that counts bytes, publish, launch; the output is right, only
// a small fraction of the package was served, the settings landed in the
// user's COW area, and a second user sees neither the settings nor,
// unpublished, the package.
func TestAddPublishLaunchStreamed(t *testing.T) {
	e := newEnv(t, 2)
	alice, bob := e.users[0], e.users[1]
	content := t.TempDir()
	_ = os.Chmod(content, 0o755)
	_, size := buildPackage(t, e.svc.Bin, content)
	srv := newContentServer(t, content)

	e.mustAppv(nil, "add", srv.URL+"/E2eApp.appv")
	afterAdd := srv.Sent()
	t.Logf("add fetched %d of %d bytes", afterAdd, size)

	// Only root adds.
	if code, _, errs := e.appvAs(alice, "", "add", srv.URL+"/E2eApp.appv"); code != 4 || !strings.Contains(errs, "root") {
		t.Errorf("a user's add: exit %d (%s), want 4 and a message naming root", code, errs)
	}
	// Not published yet: launch is refused.
	if code, _, errs := e.appvAs(alice, "", "launch", "e2eapp"); code != 5 {
		t.Errorf("launch before publish: exit %d (%s), want 5", code, errs)
	}
	e.mustAppv(alice, "publish", "E2eApp")
	code, out, errs := e.appvAs(alice, "", "launch", "e2eapp", "--", "7")
	if code != 7 {
		t.Fatalf("launch: exit %d, want the program's 7\nstdout: %s\nstderr: %s", code, out, errs)
	}
	want := fmt.Sprintf("hello from a streamed package uid=%d gid=%d launches=1", alice.UID, alice.GID)
	if strings.TrimSpace(out) != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	served := srv.Sent()
	t.Logf("after the first launch the server sent %d of %d bytes (%.1f%%)", served, size, 100*float64(served)/float64(size))
	if served > size/5 {
		t.Errorf("the server sent %d of %d bytes: streaming should fetch a small fraction", served, size)
	}

	// The settings are in alice's COW roaming area, not in her real ~/.config.
	cow := filepath.Join(alice.Home, ".local/share/appv/vfs")
	var found string
	_ = filepath.Walk(cow, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Name() == "settings.ini" {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("settings.ini is not in the COW area %s", cow)
	}
	if st, err := os.Stat(found); err == nil && int(st.Sys().(*syscall.Stat_t).Uid) != alice.UID {
		t.Errorf("settings.ini in the COW area is owned by uid %d, want %d", st.Sys().(*syscall.Stat_t).Uid, alice.UID)
	}
	if _, err := os.Stat(filepath.Join(alice.Home, ".config/e2eapp/settings.ini")); err == nil {
		t.Error("the settings were written to the real ~/.config, not the COW area")
	}
	if _, err := os.Stat("/opt/e2eapp"); err == nil {
		t.Error("/opt/e2eapp exists on the host: the package root leaked out of the virtual environment")
	}
	// A second launch sees the first one's settings.
	if code, out, _ := e.appvAs(alice, "", "launch", "e2eapp"); code != 0 || !strings.Contains(out, "launches=2") {
		t.Errorf("second launch: exit %d, output %q, want launches=2", code, out)
	}

	// Bob: not published to him, so no launch; once published, he has his
	// own settings.
	if code, _, _ := e.appvAs(bob, "", "launch", "e2eapp"); code != 5 {
		t.Errorf("bob launched a package not published to him (exit %d)", code)
	}
	e.mustAppv(bob, "publish", "E2eApp")
	if code, out, _ := e.appvAs(bob, "", "launch", "e2eapp"); code != 0 || !strings.Contains(out, "launches=1") || !strings.Contains(out, fmt.Sprintf("uid=%d", bob.UID)) {
		t.Errorf("bob's launch: exit %d, output %q: he must not see alice's settings", code, out)
	}

	// stdin and stdout pass through.
	if code, out, errs := e.appvAs(alice, "piped through the virtual environment\n", "launch", "cat"); code != 0 || out != "piped through the virtual environment\n" {
		t.Errorf("stdin through launch: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// The terminal passes through: under script(1) appv's stdin and stdout
	// are a terminal, the program gets a pty of its own, and its output comes
	// back through the pty's line discipline ("\n" becomes "\r\n").
	if script, err := exec.LookPath("script"); err == nil {
		cmd := exec.Command(script, "-qec", e.svc.Bin+" launch e2eapp", "/dev/null")
		cmd.Env = append(e.svc.Env(), "HOME="+alice.Home, "USER="+alice.Name)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(alice.UID), Gid: uint32(alice.GID)}}
		cmd.Dir = alice.Home
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
		if err != nil || !strings.Contains(out.String(), "hello from a streamed package") || !strings.Contains(out.String(), "\r\n") {
			t.Errorf("launch under a terminal: %v, output %q; want the greeting through a pty", err, out.String())
		}
	}

	// The app path launcher is on alice's PATH.
	launcher := filepath.Join(alice.Home, ".local/bin/e2eapp")
	if data, err := os.ReadFile(launcher); err != nil || !strings.Contains(string(data), "appv launch") {
		t.Errorf("no app-path launcher at %s: %v", launcher, err)
	}

	// Repair clears alice's state: the next launch is a first launch again.
	e.mustAppv(alice, "repair", "E2eApp")
	if code, out, _ := e.appvAs(alice, "", "launch", "e2eapp"); code != 0 || !strings.Contains(out, "launches=1") {
		t.Errorf("launch after repair: exit %d, output %q, want launches=1", code, out)
	}

	// Unpublish keeps the store and the COW state.
	e.mustAppv(alice, "unpublish", "E2eApp")
	if code, _, _ := e.appvAs(alice, "", "launch", "e2eapp"); code != 5 {
		t.Errorf("launch after unpublish: exit %d, want 5", code)
	}
	if _, err := os.Stat(found); err != nil {
		t.Errorf("unpublish removed the COW state: %v", err)
	}
	if _, err := os.Stat(launcher); err == nil {
		t.Error("unpublish left the launcher")
	}
	list := e.mustAppv(alice, "list", "--json")
	if !strings.Contains(list, `"name": "E2eApp"`) {
		t.Errorf("list after unpublish lacks the package: %s", list)
	}
	ev := e.mustAppv(nil, "events", "--channel", "Operational")
	for _, want := range []string{"package added", "package published", "package unpublished"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
}
