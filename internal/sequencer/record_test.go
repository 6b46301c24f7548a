package sequencer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/venv"
)

// recordSupervisorEnv makes the test binary a venv supervisor: Record's
// Manager starts it with -test.run selecting TestRecordSupervisor (the
// helper-process pattern of os/exec's tests), which then never returns.
const recordSupervisorEnv = "APPV_RECORD_TEST_SUPERVISOR"

func TestRecordSupervisor(t *testing.T) {
	if os.Getenv(recordSupervisorEnv) != "1" {
		t.Skip("the venv supervisor of the Record tests; runs only as their helper process")
	}
	os.Exit(venv.SupervisorMain(nil))
}

// recNeedRoot skips a test unless Record can run: root, FUSE and overlayfs.
func recNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: FUSE, mount namespaces, overlayfs")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("needs FUSE: %v", err)
	}
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(fss, []byte("\toverlay\n")) {
		t.Skip("needs overlayfs")
	}
}

// recordPackage is a staged package for the Record tests.
type recordPackage struct {
	staged *Staged
	id     string // random, in the package root and the VFS paths
	root   string // Staged.PackageRoot
	home   string // the user's home
	etc    string // the package's folder under /etc
	logs   *lockedBuffer
}

// newRecordPackage stages a package at /opt/appvrec-<id> with small files
// (share/first.txt, share/unread.txt, VFS/Etc/appvrec-<id>/app.conf and
// unread.conf, VFS/XdgConfigHome/appvrec/settings.ini) and a home owned by
// uid:gid.
func newRecordPackage(t *testing.T, uid, gid int) *recordPackage {
	t.Helper()
	base := t.TempDir()
	// The user must reach the home: t.TempDir's parent is 0700.
	capMust(t, os.Chmod(filepath.Dir(base), 0o755))
	capMust(t, os.Chmod(base, 0o755))
	id := fmt.Sprintf("%08x", rand.Uint32())
	p := &recordPackage{
		id:   id,
		root: "/opt/appvrec-" + id,
		home: filepath.Join(base, "home"),
		etc:  "/etc/appvrec-" + id,
		logs: &lockedBuffer{},
	}
	dir := filepath.Join(base, "tree")
	p.staged = &Staged{Dir: dir, PackageRoot: p.root, Report: &Report{}}
	p.write(t, "share/first.txt", []byte("first\n"), 0o644)
	p.write(t, "share/unread.txt", []byte("never read\n"), 0o644)
	p.write(t, "VFS/Etc/appvrec-"+id+"/app.conf", []byte("color=blue\n"), 0o644)
	p.write(t, "VFS/Etc/appvrec-"+id+"/unread.conf", []byte("never read\n"), 0o644)
	p.write(t, "VFS/XdgConfigHome/appvrec/settings.ini", []byte("size=3\n"), 0o644)
	capMust(t, os.Mkdir(p.home, 0o700))
	capMust(t, os.Chown(p.home, uid, gid))
	return p
}

// write adds a file to the staged tree (parents 0755).
func (p *recordPackage) write(t *testing.T, rel string, data []byte, mode fs.FileMode) {
	t.Helper()
	f := filepath.Join(p.staged.Dir, filepath.FromSlash(rel))
	capMust(t, os.MkdirAll(filepath.Dir(f), 0o755))
	capMust(t, os.WriteFile(f, data, mode))
	capMust(t, os.Chmod(f, mode))
}

// options are Record's options for the package, run as root.
func (p *recordPackage) options(t *testing.T, commands ...string) RecordOptions {
	t.Helper()
	exe, err := os.Executable()
	capMust(t, err)
	return RecordOptions{
		Staged:   p.staged,
		Commands: commands,
		Timeout:  time.Minute,
		User:     venv.User{UID: 0, GID: 0, Groups: []uint32{0}, Name: "root", Home: p.home},
		Exe:      exe,
		ExeArgs:  []string{"-test.run=^TestRecordSupervisor$"},
		// A race-enabled supervisor would otherwise linger 1 s at exit.
		Env:    []string{recordSupervisorEnv + "=1", "GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0"},
		Logger: slog.New(slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// record runs Record and checks that it left nothing behind: no mount of
// the recording file system, no scratch directory, no process of the
// commands (marked by marker in their command lines, when not empty).
func (p *recordPackage) record(ctx context.Context, t *testing.T, opts RecordOptions, marker string) (appvpkg.FeatureBlock, error) {
	t.Helper()
	before := recordScratchDirs(t)
	fb, err := Record(ctx, opts)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Record's log:\n%s", p.logs.String())
		}
	})
	mi, rerr := os.ReadFile("/proc/self/mountinfo")
	capMust(t, rerr)
	if bytes.Contains(mi, []byte("fuse."+recordFSName)) || bytes.Contains(mi, []byte(p.staged.Dir)) {
		t.Errorf("a mount of Record is left:\n%s", mi)
	}
	for d := range recordScratchDirs(t) {
		if !before[d] {
			t.Errorf("scratch directory %s is left", d)
		}
	}
	if marker != "" {
		if pids := recProcessesWith(t, marker); len(pids) > 0 {
			t.Errorf("processes of the commands are left: %v", pids)
		}
	}
	if _, err := os.Lstat(p.root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists on the host: %v", p.root, err)
	}
	return fb, err
}

// recordScratchDirs lists the scratch directories in the temporary
// directory.
func recordScratchDirs(t *testing.T) map[string]bool {
	t.Helper()
	ms, err := filepath.Glob(filepath.Join(os.TempDir(), "appv-record-*"))
	capMust(t, err)
	out := map[string]bool{}
	for _, m := range ms {
		out[m] = true
	}
	return out
}

// recProcessesWith returns the processes whose command line contains s.
func recProcessesWith(t *testing.T, s string) []string {
	t.Helper()
	ms, err := filepath.Glob("/proc/[0-9]*/cmdline")
	capMust(t, err)
	var out []string
	for _, m := range ms {
		data, err := os.ReadFile(m)
		if err == nil && bytes.Contains(data, []byte(s)) {
			out = append(out, filepath.Base(filepath.Dir(m))+": "+strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	return out
}

// recBuildReader builds a static Go program that reads 100 KiB at offset
// 3 MiB of the file named by its argument, and returns its bytes.
func recBuildReader(t *testing.T) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") == "" {
			t.Skip("needs the go command to build the test program")
		}
	}
	dir := t.TempDir()
	const src = `package main

import "os"

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		os.Exit(2)
	}
	buf := make([]byte, 100<<10)
	if _, err := f.ReadAt(buf, 3<<20); err != nil {
		os.Exit(3)
	}
}
`
	capMust(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
	capMust(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module reader\n\ngo 1.21\n"), 0o644))
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", "reader", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "reader"))
	capMust(t, err)
	return data
}

// recRandomBytes returns n bytes of pseudo-random data (incompressible, as a
// real payload).
func recRandomBytes(n int) []byte {
	r := rand.NewChaCha8([32]byte{1})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// recTreeBlocks counts the 64 KiB blocks of the regular files under dir.
func recTreeBlocks(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += int((info.Size() + appvpkg.BlockSize - 1) / appvpkg.BlockSize)
		return nil
	})
	capMust(t, err)
	return n
}

// The launch commands' reads become the primary feature block: the files
// in the order they were first read, only the blocks read of them, nothing
// of the files not read, and much less than the package.
func TestRecordPrimaryFeatureBlock(t *testing.T) {
	recNeedRoot(t)
	p := newRecordPackage(t, 0, 0)
	p.write(t, "bin/reader", recBuildReader(t), 0o755)
	p.write(t, "share/big.bin", recRandomBytes(10<<20), 0o644)
	// A plugin the launch does not load.
	p.write(t, "lib/plugin.so", recRandomBytes(8<<20), 0o644)

	var stdout bytes.Buffer
	opts := p.options(t,
		// Reads two small files, one of them per-user, and writes a
		// setting (to a throwaway copy-on-write directory).
		"cat "+p.etc+"/app.conf \"$HOME/.config/appvrec/settings.ini\" && echo color=red > \"$HOME/.config/appvrec/new.ini\" && echo first-"+p.id,
		p.root+"/bin/reader "+p.root+"/share/big.bin && echo second-"+p.id,
	)
	opts.Stdout = &stdout
	opts.Stderr = &stdout
	fb, err := p.record(context.Background(), t, opts, p.id)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	for _, f := range fb.Files {
		t.Logf("%s %v", f.Name, f.Ranges)
	}

	var names []string
	for _, f := range fb.Files {
		names = append(names, f.Name)
	}
	want := []string{
		`Root\VFS\Etc\appvrec-` + p.id + `\app.conf`,
		`Root\VFS\XdgConfigHome\appvrec\settings.ini`,
		`Root\bin\reader`,
		`Root\share\big.bin`,
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("files, in order:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	checks := []struct {
		name  string
		file  string
		block int
		want  bool
	}{
		{"program's first block", "Root/bin/reader", 0, true},
		{"big.bin at 3 MiB", "Root/share/big.bin", 48, true},
		{"big.bin at 3 MiB + 64 KiB", "Root/share/big.bin", 49, true},
		{"big.bin's start", "Root/share/big.bin", 0, false},
		{"big.bin's end", "Root/share/big.bin", 159, false},
		{"unread file", "Root/lib/plugin.so", 0, false},
		{"unread small file", "Root/share/unread.txt", 0, false},
		{"unread VFS file", "Root/VFS/Etc/appvrec-" + p.id + "/unread.conf", 0, false},
		{"package file", "Root/VFS/Etc/appvrec-" + p.id + "/app.conf", 0, true},
		{"per-user file", "Root/VFS/XdgConfigHome/appvrec/settings.ini", 0, true},
	}
	for _, c := range checks {
		if got := fb.Contains(c.file, c.block); got != c.want {
			t.Errorf("%s: block %d of %s recorded: %v, want %v", c.name, c.block, c.file, got, c.want)
		}
	}
	for _, f := range fb.Files {
		if f.Whole() {
			t.Errorf("%s is listed whole", f.Name)
		}
	}
	got, total := recordBlocks(fb), recTreeBlocks(t, p.staged.Dir)
	t.Logf("recorded %d of the package's %d blocks", got, total)
	if got*10 >= total {
		t.Errorf("recorded %d of %d blocks: not less than 10 %%", got, total)
	}

	out := stdout.String()
	for _, s := range []string{"color=blue", "size=3", "first-" + p.id, "second-" + p.id} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if _, err := os.Lstat(filepath.Join(p.home, ".config", "appvrec")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a command's write reached the home: %v", err)
	}
	if len(p.staged.Report.Messages) != 0 {
		t.Errorf("report: %+v", p.staged.Report.Messages)
	}
}

// A user other than root records the same way: the copy-on-write
// directories are theirs.
func TestRecordAsUser(t *testing.T) {
	recNeedRoot(t)
	const uid, gid = 65534, 65534
	p := newRecordPackage(t, uid, gid)
	opts := p.options(t, "cat "+p.root+"/share/first.txt \"$HOME/.config/appvrec/settings.ini\" && id -u && touch "+p.root+"/share/new.txt")
	opts.User = venv.User{UID: uid, GID: gid, Name: "nobody", Home: p.home}
	var stdout bytes.Buffer
	opts.Stdout = &stdout
	fb, err := p.record(context.Background(), t, opts, p.id)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if out := stdout.String(); !strings.Contains(out, "first\nsize=3\n65534\n") {
		t.Errorf("output %q", out)
	}
	for _, name := range []string{"Root/share/first.txt", "Root/VFS/XdgConfigHome/appvrec/settings.ini"} {
		if !fb.Contains(name, 0) {
			t.Errorf("%s not recorded: %+v", name, fb.Files)
		}
	}
	if _, err := os.Lstat(filepath.Join(p.staged.Dir, "share", "new.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a command's write reached the staged tree: %v", err)
	}
}

// A command still running at the timeout is stopped, with everything it
// started; what it read counts, and the report says it was stopped.
func TestRecordTimeout(t *testing.T) {
	recNeedRoot(t)
	p := newRecordPackage(t, 0, 0)
	// A unique duration marks the command's processes.
	sleep := fmt.Sprintf("300.%d", rand.Uint32())
	opts := p.options(t,
		"cat "+p.root+"/share/first.txt >/dev/null; sleep "+sleep+" & sleep "+sleep,
		"cat "+p.etc+"/app.conf >/dev/null",
	)
	opts.Timeout = time.Second
	start := time.Now()
	fb, err := p.record(context.Background(), t, opts, sleep)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if limit := opts.Timeout + recordStopGrace + 10*time.Second; elapsed > limit {
		t.Errorf("Record took %s, more than %s", elapsed, limit)
	}
	if !fb.Contains("Root/share/first.txt", 0) || !fb.Contains("Root/VFS/Etc/appvrec-"+p.id+"/app.conf", 0) {
		t.Errorf("reads before the timeout or of the next command missing: %+v", fb.Files)
	}
	msgs := p.staged.Report.Messages
	if len(msgs) != 1 || msgs[0].Severity != Info || msgs[0].Category != "Launch" || !strings.Contains(msgs[0].Text, "was stopped") {
		t.Errorf("report: %+v", msgs)
	}
}

// A command that fails is recorded and reported, not an error.
func TestRecordFailingCommand(t *testing.T) {
	recNeedRoot(t)
	p := newRecordPackage(t, 0, 0)
	opts := p.options(t, "cat "+p.root+"/share/first.txt >/dev/null; exit 3")
	fb, err := p.record(context.Background(), t, opts, "")
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if !fb.Contains("Root/share/first.txt", 0) {
		t.Errorf("read of the failing command missing: %+v", fb.Files)
	}
	msgs := p.staged.Report.Messages
	if len(msgs) != 1 || msgs[0].Severity != Warning || msgs[0].Category != "Launch" || !strings.Contains(msgs[0].Text, "code 3") {
		t.Errorf("report: %+v", msgs)
	}
	if !strings.Contains(p.logs.String(), "launch exited with an error") {
		t.Errorf("no warning logged:\n%s", p.logs.String())
	}
}

// Errors: a command that cannot start, and the end of ctx, stop Record
// with an error; it still cleans up.
func TestRecordErrors(t *testing.T) {
	recNeedRoot(t)
	t.Run("context canceled", func(t *testing.T) {
		p := newRecordPackage(t, 0, 0)
		sleep := fmt.Sprintf("300.%d", rand.Uint32())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opts := p.options(t, "cat "+p.root+"/share/first.txt; sleep "+sleep)
		pr, pw, err := os.Pipe()
		capMust(t, err)
		defer pr.Close()
		opts.Stdout = pw
		go func() {
			// Cancel once the command has read the file.
			buf := make([]byte, 64)
			_, _ = pr.Read(buf)
			cancel()
		}()
		start := time.Now()
		fb, err := p.record(ctx, t, opts, sleep)
		pw.Close()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Record: %v, want context.Canceled", err)
		}
		if !fb.Contains("Root/share/first.txt", 0) {
			t.Errorf("read before the cancellation missing: %+v", fb.Files)
		}
		if elapsed := time.Since(start); elapsed > recordStopGrace+20*time.Second {
			t.Errorf("Record took %s", elapsed)
		}
	})
	t.Run("no supervisor", func(t *testing.T) {
		p := newRecordPackage(t, 0, 0)
		opts := p.options(t, "true")
		opts.Exe = "/nonexistent/appv"
		if _, err := p.record(context.Background(), t, opts, ""); err == nil {
			t.Error("Record succeeded without a supervisor")
		}
	})
	t.Run("bad options", func(t *testing.T) {
		p := newRecordPackage(t, 0, 0)
		opts := p.options(t, "true")
		opts.Staged = &Staged{Dir: p.staged.Dir, PackageRoot: "opt/x"}
		if _, err := Record(context.Background(), opts); err == nil {
			t.Error("Record accepted a relative package root")
		}
	})
}
