package sequencer

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/venv"
)

// captureSupervisorArg, after "--" on the test binary's command line, makes
// TestCaptureSupervisor a venv supervisor: CaptureInstaller's Manager
// starts the test binary with it (the helper-process pattern of os/exec's
// tests), as the appv command runs its hidden verb.
const captureSupervisorArg = "appv-capture-supervisor"

func TestCaptureSupervisor(t *testing.T) {
	if !slices.Contains(flag.Args(), captureSupervisorArg) {
		t.Skip("the venv supervisor of the capture tests; runs only as their helper process")
	}
	os.Exit(venv.SupervisorMain(nil))
}

// needCaptureRoot skips a test unless a capture can run: root and
// overlayfs.
func needCaptureRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mount namespaces and overlayfs")
	}
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(fss, []byte("\toverlay\n")) {
		t.Skip("needs overlayfs")
	}
}

// captureRun is one capture of a test, with its logs and output.
type captureRun struct {
	opts   CaptureOptions
	logs   *lockedBuffer
	stdout *lockedBuffer
	stderr *lockedBuffer
}

// newCaptureRun prepares a capture of installer started in dir, and checks
// when the test ends that nothing of it is left on the host: no mount, no
// run directory, no workspace.
func newCaptureRun(t *testing.T, dir, installer string) *captureRun {
	t.Helper()
	needCaptureRoot(t)
	r := &captureRun{logs: &lockedBuffer{}, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	work := filepath.Join(t.TempDir(), "capture")
	// A private parent for the run directory: other tests (and appv
	// sequence runs of the e2e tests, in parallel) make their own in /run.
	runParent, err := os.MkdirTemp("/run", "ct")
	capMust(t, err)
	r.opts = CaptureOptions{
		Installer: installer,
		RunParent: runParent,
		Dir:       dir,
		Work:      work,
		Timeout:   3 * time.Minute,
		Exe:       os.Args[0],
		ExeArgs:   []string{"-test.run=^TestCaptureSupervisor$", "--", captureSupervisorArg},
		Stdout:    r.stdout,
		Stderr:    r.stderr,
		Logger:    slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("capture log:\n%s\ninstaller output:\n%s%s", r.logs, r.stdout, r.stderr)
		}
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(mi, []byte(work)) {
			t.Errorf("a mount of the capture is visible on the host:\n%s", mi)
		}
		if left, _ := os.ReadDir(runParent); len(left) != 0 {
			t.Errorf("run directory left: %s/%s", runParent, left[0].Name())
		}
		_ = os.RemoveAll(runParent)
		if strings.Contains(r.logs.String(), "DATA RACE") {
			t.Error("a supervisor reported a data race")
		}
	})
	return r
}

// lockedBuffer is a bytes.Buffer for concurrent writers (logs, output).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// writeHostFile makes a file on the host, and removes its top directory
// when the test ends.
func writeHostFixture(t *testing.T, top, p, content string) {
	t.Helper()
	capMust(t, os.MkdirAll(filepath.Dir(p), 0o755))
	capMust(t, os.WriteFile(p, []byte(content), 0o644))
	t.Cleanup(func() {
		if err := os.RemoveAll(top); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// changeAt returns the change of path p.
func changeOf(changes []Change, p string) (Change, bool) {
	i := slices.IndexFunc(changes, func(c Change) bool { return c.Path == p })
	if i < 0 {
		return Change{}, false
	}
	return changes[i], true
}

func describeChanges(changes []Change) string {
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&b, "  %s kind=%d type=%v mode=%v target=%q size=%d\n", c.Path, c.Kind, c.Type, c.Mode, c.Target, c.Size)
	}
	return b.String()
}

// installScript is the installer of TestCaptureAndStage; $1 is the test's
// id, in every name it writes, $2 and $3 the modes of the host's /usr and
// /tmp.
const installScript = `set -eu
id=$1
echo "installing $id"
cat ./readme.txt
if (echo x > ./written) 2>/dev/null; then echo "the start directory is writable" >&2; exit 9; fi
test "$HOME" = /root
# The overlays' roots look like the host's directories.
test "$(stat -c %a /usr)" = "$2"
test "$(stat -c %a /tmp)" = "$3"
if [ -n "$(ls -A /root)" ]; then echo "the home is not fresh:" >&2; ls -A /root >&2; exit 8; fi
mkdir -p /usr/local/bin
printf '#!/bin/sh\necho tool\n' > /usr/local/bin/appvtest-$id
chmod 755 /usr/local/bin/appvtest-$id
ln -s ../../../opt/appvtest-$id/bin/app /usr/local/bin/appvtest-$id-escape
mkdir -p /usr/share/appvtest-$id
echo data > /usr/share/appvtest-$id/data
ln -s /usr/share/appvtest-$id/data /usr/bin/appvtest-$id-data
mkdir -p /opt/appvtest-$id/bin /opt/appvtest-$id/empty
printf '#!/bin/sh\necho app\n' > /opt/appvtest-$id/bin/app
chmod 755 /opt/appvtest-$id/bin/app
cp /opt/appvtest-$id/bin/app /opt/appvtest-$id/bin/helper
chmod 4755 /opt/appvtest-$id/bin/helper
ln -s /opt/appvtest-$id/bin/app /opt/appvtest-$id/bin/app-link
mkfifo /opt/appvtest-$id/fifo
mkdir -p "$HOME/.config/appvtest-$id" "$HOME/.cache/appvtest-$id"
echo rc > "$HOME/.config/appvtest-$id/rc"
echo cache > "$HOME/.cache/appvtest-$id/c"
echo conf > /etc/appvtest-$id.conf
mkdir -p /var/lib/appvtest-$id
echo state > /var/lib/appvtest-$id/state
echo log > /var/log/appvtest-$id.log
mkdir -p /var/cache/appvtest-$id
echo cache > /var/cache/appvtest-$id/c
mkdir -p /etc/systemd/system
printf '[Unit]\nDescription=appvtest\n' > /etc/systemd/system/appvtest-$id.service
rm /etc/appvtest-$id/gone.conf
rm -rf /etc/appvtest-$id/replaced
mkdir /etc/appvtest-$id/replaced
echo new > /etc/appvtest-$id/replaced/new.txt
cat /etc/appvtest-$id/same.conf > /etc/appvtest-$id/same.new
mv /etc/appvtest-$id/same.new /etc/appvtest-$id/same.conf
echo tmp > /tmp/appvtest-$id
echo tmp > /var/tmp/appvtest-$id
if [ -d /mnt ]; then mkdir /mnt/appvtest-$id; echo x > /mnt/appvtest-$id/x; fi
echo "done $id"
`

// An installer writing to every kind of place, deleting and replacing the
// host's files, is captured without changing the host, and laid out as a
// package with the right exclusions and warnings.
func TestCaptureAndStage(t *testing.T) {
	needCaptureRoot(t)
	id := captureID(4)
	dir := t.TempDir()
	capMust(t, os.WriteFile(filepath.Join(dir, "install.sh"), []byte(installScript), 0o644))
	capMust(t, os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("readme of "+id+"\n"), 0o644))
	etcDir := "/etc/appvtest-" + id
	writeHostFixture(t, etcDir, etcDir+"/gone.conf", "gone\n")
	writeHostFixture(t, etcDir, etcDir+"/replaced/old.txt", "old\n")
	writeHostFixture(t, etcDir, etcDir+"/same.conf", "same\n")
	_, err := os.Stat("/mnt")
	hasMnt := err == nil

	modes := ""
	for _, d := range []string{"/usr", "/tmp"} {
		info, err := os.Stat(d)
		capMust(t, err)
		modes += " " + octalModeOf(info.Mode())
	}
	r := newCaptureRun(t, dir, "sh ./install.sh "+id+modes)
	c, err := CaptureInstaller(context.Background(), r.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { capMust(t, c.Close()) })

	// The installer's output streamed, and its last lines kept.
	if out := r.stdout.String(); !strings.Contains(out, "installing "+id+"\nreadme of "+id+"\n") {
		t.Errorf("installer output %q lacks the lines it printed", out)
	}
	if c.ExitCode != 0 || len(c.Output) == 0 || c.Output[len(c.Output)-1] != "done "+id {
		t.Errorf("exit code %d, last lines %q", c.ExitCode, c.Output)
	}
	if c.Dir != r.opts.Work {
		t.Errorf("Dir = %s, want the workspace %s", c.Dir, r.opts.Work)
	}

	// The host is as it was.
	for _, p := range []string{
		"/usr/local/bin/appvtest-" + id, "/usr/share/appvtest-" + id, "/usr/bin/appvtest-" + id + "-data",
		"/opt/appvtest-" + id, "/root/.config/appvtest-" + id, "/root/.cache/appvtest-" + id,
		"/etc/appvtest-" + id + ".conf", "/var/lib/appvtest-" + id, "/var/log/appvtest-" + id + ".log",
		"/var/cache/appvtest-" + id, "/etc/systemd/system/appvtest-" + id + ".service",
		"/tmp/appvtest-" + id, "/var/tmp/appvtest-" + id, "/mnt/appvtest-" + id,
		etcDir + "/replaced/new.txt", filepath.Join(dir, "written"),
	} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s on the host: %v", p, err)
		}
	}
	for _, p := range []string{etcDir + "/gone.conf", etcDir + "/replaced/old.txt", etcDir + "/same.conf"} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("the host's %s: %v", p, err)
		}
	}

	// The changes.
	type want struct {
		kind ChangeKind
		typ  fs.FileMode
		mode fs.FileMode
	}
	wants := map[string]want{
		"/usr/local/bin/appvtest-" + id:             {Added, 0, 0o755},
		"/usr/local/bin/appvtest-" + id + "-escape": {Added, fs.ModeSymlink, 0o777},
		"/usr/share/appvtest-" + id:                 {Added, fs.ModeDir, 0o755},
		"/usr/share/appvtest-" + id + "/data":       {Added, 0, 0o644},
		"/usr/bin/appvtest-" + id + "-data":         {Added, fs.ModeSymlink, 0o777},
		"/opt/appvtest-" + id:                       {Added, fs.ModeDir, 0o755},
		"/opt/appvtest-" + id + "/empty":            {Added, fs.ModeDir, 0o755},
		"/opt/appvtest-" + id + "/bin/helper":       {Added, 0, 0o755 | fs.ModeSetuid},
		"/opt/appvtest-" + id + "/fifo":             {Added, fs.ModeNamedPipe, 0o644},
		"~/.config/appvtest-" + id + "/rc":          {Added, 0, 0o644},
		"/etc/appvtest-" + id + "/gone.conf":        {Deleted, 0, 0},
		"/etc/appvtest-" + id + "/replaced":         {Opaque, fs.ModeDir, 0o755},
		"/etc/appvtest-" + id + "/replaced/new.txt": {Added, 0, 0o644},
		"/var/lib/appvtest-" + id + "/state":        {Added, 0, 0o644},
		"/tmp/appvtest-" + id:                       {Added, 0, 0o644},
		"/var/tmp/appvtest-" + id:                   {Added, 0, 0o644},
	}
	for p, w := range wants {
		ch, ok := changeOf(c.Changes, p)
		if !ok {
			t.Errorf("no change for %s", p)
			continue
		}
		if ch.Kind != w.kind || ch.Type != w.typ || ch.Mode != w.mode {
			t.Errorf("%s: kind %d, type %v, mode %v; want %d, %v, %v", p, ch.Kind, ch.Type, ch.Mode, w.kind, w.typ, w.mode)
		}
		if ch.Kind != Deleted && !strings.HasPrefix(ch.Source, r.opts.Work+"/") {
			t.Errorf("%s: source %q is not in the workspace", p, ch.Source)
		}
	}
	if ch, _ := changeOf(c.Changes, "/usr/bin/appvtest-"+id+"-data"); ch.Target != "/usr/share/appvtest-"+id+"/data" {
		t.Errorf("symlink target %q", ch.Target)
	}
	// Not changes: directories on the way, a file rewritten as it was.
	for _, p := range []string{"/usr", "/usr/local", "/usr/local/bin", "/etc", etcDir, etcDir + "/same.conf", "/var/lib", "/opt"} {
		if _, ok := changeOf(c.Changes, p); ok {
			t.Errorf("%s is listed as a change", p)
		}
	}
	if !slices.IsSortedFunc(c.Changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) }) {
		t.Error("changes are not sorted")
	}
	if t.Failed() {
		t.Logf("changes:\n%s", describeChanges(c.Changes))
	}

	// The layout.
	st, err := Stage(context.Background(), c, LayoutOptions{Name: "App V Test", Work: filepath.Join(t.TempDir(), "layout")})
	if err != nil {
		t.Fatal(err)
	}
	if st.PackageRoot != "/opt/appvtest-"+id {
		t.Errorf("PackageRoot = %s", st.PackageRoot)
	}
	for rel, wantMode := range map[string]string{
		"bin/app":                                            "755",
		"bin/helper":                                         "4755",
		"bin/app-link":                                       "link:/opt/appvtest-" + id + "/bin/app",
		"empty":                                              "dir",
		"VFS/UsrLocal/bin/appvtest-" + id:                    "755",
		"VFS/Usr/share/appvtest-" + id + "/data":             "644",
		"VFS/Usr/bin/appvtest-" + id + "-data":               "link:../share/appvtest-" + id + "/data",
		"VFS/XdgConfigHome/appvtest-" + id + "/rc":           "644",
		"VFS/Etc/appvtest-" + id + ".conf":                   "644",
		"VFS/Etc/appvtest-" + id + "/replaced/new.txt":       "644",
		"VFS/Etc/systemd/system/appvtest-" + id + ".service": "644",
		"VFS/VarLib/appvtest-" + id + "/state":               "644",
	} {
		info, err := os.Lstat(filepath.Join(st.Dir, rel))
		if err != nil {
			t.Errorf("staged %s: %v", rel, err)
			continue
		}
		got := octalModeOf(info.Mode())
		switch {
		case info.IsDir():
			got = "dir"
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(filepath.Join(st.Dir, rel))
			got = "link:" + target
		}
		if got != wantMode {
			t.Errorf("staged %s: %s, want %s", rel, got, wantMode)
		}
	}
	for _, rel := range []string{
		"fifo", "VFS/UsrLocal/bin/appvtest-" + id + "-escape", "VFS/Var", "VFS/XdgCacheHome", "VFS/Etc/appvtest-" + id + "/same.conf",
		"VFS/Etc/appvtest-" + id + "/gone.conf",
	} {
		if _, err := os.Lstat(filepath.Join(st.Dir, rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("staged %s: %v", rel, err)
		}
	}
	if want := []string{"Root/VFS/Etc/appvtest-" + id + "/gone.conf"}; !slices.Equal(st.Deleted, want) {
		t.Errorf("Deleted = %q, want %q", st.Deleted, want)
	}
	if want := []string{"Root/VFS/Etc/appvtest-" + id + "/replaced"}; !slices.Equal(st.Opaque, want) {
		t.Errorf("Opaque = %q, want %q", st.Opaque, want)
	}
	type msg struct {
		sev      Severity
		category string
		path     string
	}
	wantMsgs := []msg{
		{Info, "PackageRoot", "/opt/appvtest-" + id},
		{Info, "Excluded", "/var/log"},
		{Info, "Excluded", "/var/cache"},
		{Info, "Excluded", "~/.cache"},
		{Info, "Excluded", "/tmp"},
		{Info, "Excluded", "/var/tmp"},
		{Warning, "Excluded", "/opt/appvtest-" + id + "/fifo"},
		{Warning, "Setuid", "/opt/appvtest-" + id + "/bin/helper"},
		{Warning, "SystemdUnit", "/etc/systemd/system/appvtest-" + id + ".service"},
		{Warning, "Symlink", "/usr/local/bin/appvtest-" + id + "-escape"},
	}
	if hasMnt {
		wantMsgs = append(wantMsgs, msg{Warning, "OutsideKnownFolders", "/mnt"})
	}
	for _, w := range wantMsgs {
		if !slices.ContainsFunc(st.Report.Messages, func(m Message) bool {
			return m.Severity == w.sev && m.Category == w.category && m.Path == w.path
		}) {
			t.Errorf("no %s %s message for %s", w.sev, w.category, w.path)
		}
	}
	if t.Failed() {
		xmlData, _ := st.Report.Marshal()
		t.Logf("Report.xml:\n%s", xmlData)
	}

	// The staged tree packages, and outlives the capture.
	capMust(t, c.Close())
	if _, err := os.Stat(r.opts.Work); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("workspace left after Close: %v", err)
	}
	pkgID := appvpkg.Identity{Name: "AppVTest", Publisher: "CN=appv", Version: "1.0.0.0", PackageID: appvpkg.NewGUID(), VersionID: appvpkg.NewGUID()}
	if _, err := appvpkg.Create(context.Background(), io.Discard, appvpkg.CreateOptions{
		Dir: st.Dir, PackageRoot: st.PackageRoot, Manifest: appvpkg.NewManifest(pkgID), Opaque: st.Opaque, Deleted: st.Deleted,
	}); err != nil {
		t.Errorf("appvpkg.Create of the staged tree: %v", err)
	}
}

// dpkg -i of a .deb is captured: its files are changes, its database
// entries are left out, and the host's dpkg does not know the package.
func TestCaptureDpkg(t *testing.T) {
	needCaptureRoot(t)
	for _, tool := range []string{"dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	name := "appvtest-" + captureID(4)
	dir := t.TempDir()
	build := filepath.Join(t.TempDir(), "build")
	for p, content := range map[string]string{
		"DEBIAN/control":                       "Package: " + name + "\nVersion: 1.0\nArchitecture: all\nMaintainer: appv tests <appv@example.org>\nDescription: a package of appv's tests\n",
		"usr/bin/" + name + "-tool":            "#!/bin/sh\necho tool\n",
		"usr/share/doc/" + name + "/copyright": "none\n",
	} {
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(p, "-tool") {
			mode = 0o755
		}
		capMust(t, os.MkdirAll(filepath.Join(build, filepath.Dir(p)), 0o755))
		capMust(t, os.WriteFile(filepath.Join(build, p), []byte(content), mode))
		capMust(t, os.Chmod(filepath.Join(build, p), mode))
	}
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", build, filepath.Join(dir, name+".deb")).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}

	r := newCaptureRun(t, dir, "dpkg -i ./"+name+".deb")
	c, err := CaptureInstaller(context.Background(), r.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { capMust(t, c.Close()) })

	if out, err := exec.Command("dpkg", "-s", name).CombinedOutput(); err == nil || !strings.Contains(string(out), "not installed") {
		t.Errorf("the host's dpkg -s %s: %v\n%s", name, err, out)
	}
	if _, err := os.Lstat("/usr/bin/" + name + "-tool"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the tool is on the host: %v", err)
	}
	for _, p := range []string{"/usr/bin/" + name + "-tool", "/usr/share/doc/" + name + "/copyright", "/var/lib/dpkg/info/" + name + ".list", "/var/lib/dpkg/status"} {
		if _, ok := changeOf(c.Changes, p); !ok {
			t.Errorf("no change for %s", p)
		}
	}
	if t.Failed() {
		t.Logf("changes:\n%s", describeChanges(c.Changes))
	}

	st, err := Stage(context.Background(), c, LayoutOptions{Name: "DPKG Test", Work: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if st.PackageRoot != "/opt/dpkg-test" {
		t.Errorf("PackageRoot = %s, want /opt/dpkg-test", st.PackageRoot)
	}
	if _, err := os.Stat(filepath.Join(st.Dir, "VFS/Usr/bin", name+"-tool")); err != nil {
		t.Errorf("the tool is not staged: %v", err)
	}
	if _, err := os.Stat(filepath.Join(st.Dir, "VFS/VarLib/dpkg")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dpkg's database is staged: %v", err)
	}
	if !slices.ContainsFunc(st.Report.Messages, func(m Message) bool {
		return m.Severity == Info && m.Category == "Excluded" && m.Path == "/var/lib/dpkg"
	}) {
		t.Errorf("/var/lib/dpkg is not reported excluded: %+v", st.Report.Messages)
	}
}

// A failing installer gives its exit code and last lines, and leaves no
// workspace.
func TestCaptureInstallerFails(t *testing.T) {
	tests := []struct {
		name      string
		installer string
		code      int
		lines     []string // contained
		exact     []string // all of them, in order
	}{
		{name: "two streams", installer: "echo one; echo two >&2; exit 3", code: 3, lines: []string{"one", "two"}},
		{name: "last lines only", installer: `i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; printf 'no newline'; exit 7`, code: 7,
			exact: append(func() []string {
				var l []string
				for i := 12; i <= 30; i++ {
					l = append(l, fmt.Sprintf("line %d", i))
				}
				return l
			}(), "no newline")},
		{name: "killed", installer: "echo bye; kill -9 $$", code: 128 + 9, lines: []string{"bye"}},
		{name: "not found", installer: "no-such-program-appvtest", code: 127, lines: []string{"no-such-program-appvtest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCaptureRun(t, t.TempDir(), tt.installer)
			c, err := CaptureInstaller(context.Background(), r.opts)
			var ie *InstallerError
			if !errors.As(err, &ie) {
				c.Close()
				t.Fatalf("err = %v, want an InstallerError", err)
			}
			if ie.ExitCode != tt.code {
				t.Errorf("exit code %d, want %d", ie.ExitCode, tt.code)
			}
			for _, l := range tt.lines {
				if !slices.ContainsFunc(ie.LastLines, func(s string) bool { return strings.Contains(s, l) }) {
					t.Errorf("last lines %q lack %q", ie.LastLines, l)
				}
			}
			if len(ie.LastLines) > OutputLines {
				t.Errorf("%d last lines kept, want at most %d", len(ie.LastLines), OutputLines)
			}
			if tt.exact != nil && (len(ie.LastLines) < len(tt.exact) || !slices.Equal(ie.LastLines[len(ie.LastLines)-len(tt.exact):], tt.exact)) {
				t.Errorf("last lines %q, want them to end with %q", ie.LastLines, tt.exact)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("exit code %d", tt.code)) || !strings.Contains(msg, "nothing was written") {
				t.Errorf("message %q", msg)
			}
			if _, err := os.Stat(r.opts.Work); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("workspace left: %v", err)
			}
		})
	}
}

// An installer that runs too long, or whose context ends, is stopped with
// everything it started, and nothing is kept.
func TestCaptureStopped(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration
		want    string
	}{
		{name: "timeout", timeout: time.Second, want: "did not finish within 1s"},
		{name: "context", cancel: time.Second, want: "installer stopped: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCaptureRun(t, t.TempDir(), "echo started; sleep 60 & sleep 60")
			r.opts.Timeout = tt.timeout
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel > 0 {
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			_, err := CaptureInstaller(ctx, r.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("took %v", d)
			}
			if _, err := os.Stat(r.opts.Work); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("workspace left: %v", err)
			}
		})
	}
}

// The start directory is the installer's working directory, readable and
// not writable, also below an overlaid directory; starting in an overlaid
// directory itself is refused.
func TestCaptureStartDir(t *testing.T) {
	needCaptureRoot(t)
	for _, dir := range []string{t.TempDir(), "/usr/share"} {
		t.Run(dir, func(t *testing.T) {
			installer := `pwd; ls >/dev/null; if touch ./appvtest-written 2>/dev/null; then echo writable; exit 5; fi`
			r := newCaptureRun(t, dir, installer)
			c, err := CaptureInstaller(context.Background(), r.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := r.stdout.String(); got != dir+"\n" {
				t.Errorf("installer printed %q, want %q", got, dir+"\n")
			}
			if len(c.Changes) != 0 {
				t.Errorf("changes:\n%s", describeChanges(c.Changes))
			}
		})
	}
	// In root's home the host's home stays visible beneath the
	// installer's, and the installer's writes there are still captured.
	t.Run("in root's home", func(t *testing.T) {
		id := captureID(4)
		dir := "/root/appvtest-" + id
		writeHostFixture(t, dir, dir+"/data.txt", "data "+id+"\n")
		r := newCaptureRun(t, dir, `pwd; cat data.txt; if touch ./written 2>/dev/null; then echo writable; exit 5; fi; echo x > ~/.appvtest-`+id)
		c, err := CaptureInstaller(context.Background(), r.opts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, want := r.stdout.String(), dir+"\ndata "+id+"\n"; got != want {
			t.Errorf("installer printed %q, want %q", got, want)
		}
		if len(c.Changes) != 1 || c.Changes[0].Path != "~/.appvtest-"+id {
			t.Errorf("changes:\n%s", describeChanges(c.Changes))
		}
		if _, err := os.Lstat("/root/.appvtest-" + id); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("written to the host's home: %v", err)
		}
	})
	for _, dir := range []string{"/", "/usr", "/var/tmp", "/root"} {
		t.Run(dir, func(t *testing.T) {
			r := newCaptureRun(t, dir, "true")
			c, err := CaptureInstaller(context.Background(), r.opts)
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "cannot start the installer in "+dir) {
				t.Errorf("err = %v", err)
			}
			if _, err := os.Stat(r.opts.Work); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("workspace left: %v", err)
			}
		})
	}
}

// upgradeScript runs on top of the old version of TestCaptureUpgrade.
const upgradeScript = `set -eu
id=$1
grep -q v1 /opt/appvtest-$id/bin/app
test -e /etc/appvtest-$id.conf
test ! -e /etc/appvtest-$id/hidden.conf
test ! -e /etc/appvtest-$id/shadowed/native.txt
test -e /etc/appvtest-$id/shadowed/pkg.txt
test -e "$HOME/.config/appvtest-$id/rc"
conf=$(cat /etc/appvtest-$id.conf)
printf '%s\n' "$conf" > /etc/appvtest-$id.conf
printf 'v2\n' > /opt/appvtest-$id/bin/app
rm /etc/appvtest-$id-keep.conf
mkdir /opt/appvtest-$id/share
echo new > /opt/appvtest-$id/share/new.txt
echo v2 >> "$HOME/.config/appvtest-$id/rc"
test -e /etc/appvtest-$id/conf.d/a.conf
rm -rf /etc/appvtest-$id/conf.d
mkdir -p /etc/appvtest-$id/conf.d/sub
echo b > /etc/appvtest-$id/conf.d/b.conf
echo d > /etc/appvtest-$id/conf.d/sub/d.conf
`

// An upgrade runs on top of the old version: the installer sees its files
// and what it hides, and the changes are relative to it.
func TestCaptureUpgrade(t *testing.T) {
	needCaptureRoot(t)
	id := captureID(4)
	etcDir := "/etc/appvtest-" + id
	writeHostFixture(t, etcDir, etcDir+"/hidden.conf", "hidden\n")
	writeHostFixture(t, etcDir, etcDir+"/shadowed/native.txt", "native\n")

	// The old version, packaged and extracted as sequence does.
	old := t.TempDir()
	for p, content := range map[string]string{
		"bin/app":                                       "v1\n",
		"VFS/Etc/appvtest-" + id + ".conf":              "old\n",
		"VFS/Etc/appvtest-" + id + "-keep.conf":         "keep\n",
		"VFS/Etc/appvtest-" + id + "/shadowed/pkg.txt":  "pkg\n",
		"VFS/XdgConfigHome/appvtest-" + id + "/rc":      "v1\n",
		"VFS/Etc/appvtest-" + id + "/conf.d/a.conf":     "a\n",
		"VFS/Etc/appvtest-" + id + "/conf.d/b.conf":     "b\n",
		"VFS/Etc/appvtest-" + id + "/conf.d/sub/c.conf": "c\n",
		"VFS/Etc/appvtest-" + id + "/conf.d/sub/d.conf": "d\n",
	} {
		capMust(t, os.MkdirAll(filepath.Join(old, filepath.Dir(p)), 0o755))
		capMust(t, os.WriteFile(filepath.Join(old, p), []byte(content), 0o644))
	}
	capMust(t, os.Chmod(filepath.Join(old, "bin/app"), 0o755))
	pkgFile := filepath.Join(t.TempDir(), "old.appv")
	f, err := os.Create(pkgFile)
	capMust(t, err)
	pkgID := appvpkg.Identity{Name: "AppVTest", Publisher: "CN=appv", Version: "1.0.0.0", PackageID: appvpkg.NewGUID(), VersionID: appvpkg.NewGUID()}
	_, err = appvpkg.Create(context.Background(), f, appvpkg.CreateOptions{
		Dir: old, PackageRoot: "/opt/appvtest-" + id, Manifest: appvpkg.NewManifest(pkgID),
		Deleted: []string{"Root/VFS/Etc/appvtest-" + id + "/hidden.conf"},
		Opaque:  []string{"Root/VFS/Etc/appvtest-" + id + "/shadowed"},
	})
	capMust(t, err)
	capMust(t, f.Close())
	p, err := appvpkg.OpenFile(pkgFile)
	capMust(t, err)
	ext := filepath.Join(t.TempDir(), "base")
	capMust(t, p.Extract(context.Background(), ext, appvpkg.ExtractOptions{}))
	capMust(t, p.Close())

	dir := t.TempDir()
	capMust(t, os.WriteFile(filepath.Join(dir, "upgrade.sh"), []byte(upgradeScript), 0o644))
	r := newCaptureRun(t, dir, "sh ./upgrade.sh "+id)
	r.opts.Base = filepath.Join(ext, appvpkg.RootDir)
	c, err := CaptureInstaller(context.Background(), r.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	wants := map[string]ChangeKind{
		"/opt/appvtest-" + id + "/bin/app":       Added,
		"/opt/appvtest-" + id + "/share":         Added,
		"/opt/appvtest-" + id + "/share/new.txt": Added,
		"/etc/appvtest-" + id + "-keep.conf":     Deleted,
		"/etc/appvtest-" + id + "/hidden.conf":   Deleted, // the old version's, kept
		"/etc/appvtest-" + id + "/shadowed":      Opaque,  // the old version's, kept
		"~/.config/appvtest-" + id + "/rc":       Added,
		// Replaced by the installer: what it did not make again is gone.
		"/etc/appvtest-" + id + "/conf.d":            Opaque,
		"/etc/appvtest-" + id + "/conf.d/a.conf":     Deleted,
		"/etc/appvtest-" + id + "/conf.d/b.conf":     Added,
		"/etc/appvtest-" + id + "/conf.d/sub":        Added,
		"/etc/appvtest-" + id + "/conf.d/sub/c.conf": Deleted,
		"/etc/appvtest-" + id + "/conf.d/sub/d.conf": Added,
	}
	for p, kind := range wants {
		if ch, ok := changeOf(c.Changes, p); !ok || ch.Kind != kind {
			t.Errorf("%s: %+v, want kind %d", p, ch, kind)
		}
	}
	for _, p := range []string{
		"/opt/appvtest-" + id, "/opt/appvtest-" + id + "/bin", "/etc/appvtest-" + id + ".conf", etcDir,
		"/etc/appvtest-" + id + "/shadowed/pkg.txt", "~/.config", "~/.config/appvtest-" + id,
	} {
		if ch, ok := changeOf(c.Changes, p); ok {
			t.Errorf("%s is listed as a change: %+v", p, ch)
		}
	}
	if len(c.Changes) != len(wants) {
		t.Errorf("%d changes, want %d:\n%s", len(c.Changes), len(wants), describeChanges(c.Changes))
	}
	if ch, _ := changeOf(c.Changes, "/opt/appvtest-"+id+"/bin/app"); ch.Size != 3 {
		t.Errorf("bin/app: size %d, want 3", ch.Size)
	}

	st, err := Stage(context.Background(), c, LayoutOptions{Name: "AppVTest", PackageRoot: "/opt/appvtest-" + id, Work: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{
		"Root/VFS/Etc/appvtest-" + id + "-keep.conf",
		"Root/VFS/Etc/appvtest-" + id + "/conf.d/a.conf",
		"Root/VFS/Etc/appvtest-" + id + "/conf.d/sub/c.conf",
		"Root/VFS/Etc/appvtest-" + id + "/hidden.conf",
	}; !slices.Equal(st.Deleted, want) {
		t.Errorf("Deleted = %q, want %q", st.Deleted, want)
	}
	if want := []string{"Root/VFS/Etc/appvtest-" + id + "/conf.d", "Root/VFS/Etc/appvtest-" + id + "/shadowed"}; !slices.Equal(st.Opaque, want) {
		t.Errorf("Opaque = %q, want %q", st.Opaque, want)
	}
	if data, err := os.ReadFile(filepath.Join(st.Dir, "bin/app")); err != nil || string(data) != "v2\n" {
		t.Errorf("staged bin/app: %q, %v", data, err)
	}
}

// The tail keeps the last lines of every stream, whole, and passes the
// output on to one writer shared by the streams.
func TestOutputTail(t *testing.T) {
	tail := newOutputTail(3)
	var shared bytes.Buffer // not safe for concurrent use: the tail serializes
	outW, outDone, err := tail.pipe(&shared)
	capMust(t, err)
	errW, errDone, err := tail.pipe(&shared)
	capMust(t, err)
	var wg sync.WaitGroup
	for _, w := range []*os.File{outW, errW} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			for range 200 {
				_, _ = w.WriteString("x\n")
			}
		}()
	}
	wg.Wait()
	<-outDone
	<-errDone
	if shared.Len() != 2*200*2 {
		t.Errorf("passed on %d bytes, want %d", shared.Len(), 800)
	}

	tail = newOutputTail(3)
	w, done, err := tail.pipe(nil)
	capMust(t, err)
	for _, s := range []string{"one\r\ntw", "o\n", strings.Repeat("y", 3000) + "\n", "no newline"} {
		_, err := w.WriteString(s)
		capMust(t, err)
	}
	w.Close()
	<-done
	want := []string{"two", strings.Repeat("y", maxLineLen) + "…", "no newline"}
	if got := tail.lines(); !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}
