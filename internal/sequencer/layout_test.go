package sequencer

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
)

func TestExcludedBy(t *testing.T) {
	tests := []struct {
		path  string
		isDir bool
		key   string // "" for kept
	}{
		{path: "/tmp/x", key: "/tmp"},
		{path: "/tmp", isDir: true, key: "/tmp"},
		{path: "/tmpfoo/x"},
		{path: "/var/tmp/a/b", key: "/var/tmp"},
		{path: "/var/log/foo.log", key: "/var/log"},
		{path: "/var/cache/apt/archives/x.deb", key: "/var/cache"},
		{path: "/var/cache/debconf/config.dat", key: "/var/cache"},
		{path: "/var/lib/dpkg/status", key: "/var/lib/dpkg"},
		{path: "/var/lib/dpkg", isDir: true, key: "/var/lib/dpkg"},
		{path: "/var/lib/apt/extended_states", key: "/var/lib/apt"},
		{path: "/var/lib/foo/state"},
		{path: "/var/backups/dpkg.status.0", key: "/var/backups"},
		{path: "~/.cache/pip/x", key: "~/.cache"},
		{path: "~/.config/foo/rc"},
		{path: "/etc/ld.so.cache", key: "/etc/ld.so.cache"},
		{path: "/etc/ld.so.conf.d/foo.conf"},
		{path: "/usr/share/mime/mime.cache", key: "/usr/share/mime"},
		{path: "/usr/share/mime/globs2", key: "/usr/share/mime"},
		{path: "/usr/share/mime/application/x-foo.xml", key: "/usr/share/mime"},
		{path: "/usr/share/mime/application", isDir: true, key: "/usr/share/mime"},
		{path: "/usr/share/mime/packages/foo.xml"},
		{path: "/usr/share/mime/packages", isDir: true},
		{path: "/usr/share/applications/mimeinfo.cache", key: "/usr/share/applications/mimeinfo.cache"},
		{path: "/usr/share/applications/foo.desktop"},
		{path: "/usr/share/icons/hicolor/icon-theme.cache", key: "/usr/share/icons/hicolor/icon-theme.cache"},
		{path: "/usr/share/icons/hicolor/48x48/apps/foo.png"},
		{path: "/usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0/2.10.0/loaders.cache", key: "/usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0/2.10.0/loaders.cache"},
		{path: "/usr/share/glib-2.0/schemas/gschemas.compiled", key: "/usr/share/glib-2.0/schemas/gschemas.compiled"},
		{path: "/usr/share/glib-2.0/schemas/org.foo.gschema.xml"},
		{path: "/usr/lib/python3/dist-packages/foo/__pycache__/x.pyc"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			key, reason, ok := excludedBy(tt.path, tt.isDir)
			if ok != (tt.key != "") || key != tt.key {
				t.Fatalf("excludedBy(%q) = %q, %v; want %q", tt.path, key, ok, tt.key)
			}
			if ok && reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestPlacementRules(t *testing.T) {
	modules := []struct{ path, key string }{
		{"/usr/lib/modules/6.1.0-9-amd64/extra/foo.ko", "/usr/lib/modules/6.1.0-9-amd64"},
		{"/lib/modules/6.1.0/modules.dep", "/lib/modules/6.1.0"},
		{"/opt/foo/driver/foo.ko.xz", "/opt/foo/driver/foo.ko.xz"},
		{"/opt/foo/driver/foo.ko.zst", "/opt/foo/driver/foo.ko.zst"},
		{"/opt/foo/bin/kobold", ""},
		{"/opt/foo/.ko", ""},
	}
	for _, tt := range modules {
		key, ok := kernelModule(tt.path)
		if ok != (tt.key != "") || key != tt.key {
			t.Errorf("kernelModule(%q) = %q, %v; want %q", tt.path, key, ok, tt.key)
		}
	}
	units := map[string]bool{
		"/etc/systemd/system/foo.service":                   true,
		"/etc/systemd/system/multi-user.target.wants/x":     true,
		"/usr/lib/systemd/system/foo.socket":                true,
		"/lib/systemd/system/foo.timer":                     true,
		"/usr/lib/systemd-foo":                              false,
		"/etc/systemd":                                      false,
		"/usr/share/doc/foo/examples/systemd/foo.service":   false,
		"/usr/local/lib/systemd/system/not-watched.service": false,
	}
	for p, want := range units {
		if got := systemdFile(p); got != want {
			t.Errorf("systemdFile(%q) = %v, want %v", p, got, want)
		}
	}
	types := map[fs.FileMode]string{
		0:                                 "",
		fs.ModeDir:                        "",
		fs.ModeSymlink:                    "",
		fs.ModeNamedPipe:                  "named pipe",
		fs.ModeSocket:                     "socket",
		fs.ModeDevice:                     "device node",
		fs.ModeDevice | fs.ModeCharDevice: "device node",
	}
	for m, want := range types {
		if got := specialType(m); got != want {
			t.Errorf("specialType(%v) = %q, want %q", m, got, want)
		}
	}
}

func TestChoosePackageRoot(t *testing.T) {
	file := func(p string) Change { return Change{Path: p, Kind: Added} }
	dir := func(p string) Change { return Change{Path: p, Kind: Added, Type: fs.ModeDir} }
	tests := []struct {
		name     string
		changes  []Change
		override string
		want     string
	}{
		{name: "override wins", changes: []Change{dir("/opt/foo")}, override: "/usr/lib/foo/", want: "/usr/lib/foo"},
		{name: "one directory of /opt", changes: []Change{dir("/opt/foo"), file("/opt/foo/bin/foo"), file("/usr/local/bin/foo")}, want: "/opt/foo"},
		{name: "an empty directory of /opt", changes: []Change{dir("/opt/foo")}, want: "/opt/foo"},
		{name: "a file in /opt is no root", changes: []Change{file("/opt/foo.txt")}, want: "/opt/my-app"},
		{name: "two directories of /opt", changes: []Change{file("/opt/a/x"), file("/opt/b/y")}, want: "/opt/my-app"},
		{name: "deleted in /opt do not count", changes: []Change{{Path: "/opt/old/x", Kind: Deleted}, file("/opt/foo/x")}, want: "/opt/foo"},
		{
			name:    "install prefix under /usr/local",
			changes: []Change{file("/usr/local/foo/bin/foo"), file("/usr/local/foo/lib/x.so"), file("/usr/local/bin/foo"), file("/usr/local/bar/y")},
			want:    "/usr/local/foo",
		},
		{name: "shared directories of /usr/local are no root", changes: []Change{file("/usr/local/bin/foo"), file("/usr/local/share/foo/x")}, want: "/opt/my-app"},
		{name: "a tie under /usr/local", changes: []Change{file("/usr/local/a/x"), file("/usr/local/b/y")}, want: "/opt/my-app"},
		{name: "nothing of its own", changes: []Change{file("/usr/bin/tool")}, want: "/opt/my-app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := choosePackageRoot(tt.changes, "My App", tt.override)
			if got != tt.want || why == "" {
				t.Errorf("choosePackageRoot = %q (%s), want %q", got, why, tt.want)
			}
		})
	}
}

func TestRootName(t *testing.T) {
	for in, want := range map[string]string{
		"Foo":              "foo",
		"My Cool App 2.0":  "my-cool-app-2.0",
		"  --weird__name ": "weird__name",
		"Ünïcode":          "n-code",
		"":                 "app",
		"...":              "app",
		"g++":              "g++",
	} {
		if got := rootName(in); got != want {
			t.Errorf("rootName(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeCapture builds, without overlays, what a capture gives: files in an
// "upper" tree and the Changes naming them.
type fakeCapture struct {
	t     *testing.T
	upper string
	c     *Capture
}

func newFakeCapture(t *testing.T) *fakeCapture {
	dir := t.TempDir()
	return &fakeCapture{t: t, upper: filepath.Join(dir, "upper"), c: &Capture{Dir: dir}}
}

// src is where a native path's content lives in the fake upper tree.
func (f *fakeCapture) src(p string) string {
	return filepath.Join(f.upper, filepath.FromSlash(strings.Replace(strings.TrimPrefix(p, "/"), "~", "home", 1)))
}

func (f *fakeCapture) mkdirs(p string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(f.src(p)), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeCapture) file(p, content string, mode fs.FileMode) {
	f.t.Helper()
	f.mkdirs(p)
	s := f.src(p)
	capMust(f.t, os.WriteFile(s, []byte(content), 0o600))
	capMust(f.t, os.Chmod(s, mode))
	f.c.Changes = append(f.c.Changes, Change{Path: p, Kind: Added, Mode: mode, Source: s, Size: int64(len(content))})
}

func (f *fakeCapture) dir(p string, mode fs.FileMode, kind ChangeKind) {
	f.t.Helper()
	f.mkdirs(p)
	s := f.src(p)
	if err := os.Mkdir(s, 0o700); err != nil && !os.IsExist(err) {
		f.t.Fatal(err)
	}
	capMust(f.t, os.Chmod(s, mode))
	f.c.Changes = append(f.c.Changes, Change{Path: p, Kind: kind, Type: fs.ModeDir, Mode: mode, Source: s})
}

func (f *fakeCapture) symlink(p, target string) {
	f.t.Helper()
	f.mkdirs(p)
	s := f.src(p)
	capMust(f.t, os.Symlink(target, s))
	f.c.Changes = append(f.c.Changes, Change{Path: p, Kind: Added, Type: fs.ModeSymlink, Mode: 0o777, Target: target, Source: s})
}

func (f *fakeCapture) fifo(p string) {
	f.t.Helper()
	f.mkdirs(p)
	s := f.src(p)
	capMust(f.t, syscall.Mkfifo(s, 0o644))
	f.c.Changes = append(f.c.Changes, Change{Path: p, Kind: Added, Type: fs.ModeNamedPipe, Mode: 0o644, Source: s})
}

func (f *fakeCapture) deleted(p string) {
	f.c.Changes = append(f.c.Changes, Change{Path: p, Kind: Deleted})
}

func (f *fakeCapture) capture() *Capture {
	slices.SortFunc(f.c.Changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return f.c
}

// Stage lays out every kind of change, leaves out and reports what must
// not travel, and gives a tree appvpkg.Create packages.
func TestStage(t *testing.T) {
	f := newFakeCapture(t)
	f.dir("/opt/foo", 0o755, Added)
	f.file("/opt/foo/bin/foo", "#!/bin/sh\n", 0o755)
	f.file("/opt/foo/bin/helper", "helper", 0o755|fs.ModeSetuid)
	f.file("/opt/foo/bin/group", "group", 0o755|fs.ModeSetgid)
	f.symlink("/opt/foo/bin/foo-link", "/opt/foo/bin/foo")
	f.dir("/opt/foo/empty", 0o750, Added)
	f.fifo("/opt/foo/fifo")
	f.file("/usr/local/bin/foo", "x", 0o755)
	f.symlink("/usr/local/bin/foo-opt", "/opt/foo/bin/foo")     // into the package root: not allowed from a folder
	f.symlink("/usr/local/bin/foo-up", "../../../etc/foo.conf") // leaves UsrLocal
	f.symlink("/usr/bin/foo-data", "/usr/share/foo/data")       // absolute, in its folder: made relative
	f.symlink("/usr/bin/foo-local", "/usr/local/lib/foo")       // still in /usr's folder
	f.file("/usr/share/foo/data", "data", 0o644)
	f.file("/usr/share/mime/packages/foo.xml", "<mime-info/>", 0o644)
	f.file("/usr/share/mime/mime.cache", "cache", 0o644)
	f.file("/usr/share/mime/application/x-foo.xml", "gen", 0o644)
	f.file("/usr/lib/modules/6.1.0/extra/foo.ko", "elf", 0o644)
	f.file("/etc/foo.conf", "conf", 0o600)
	f.file("/etc/systemd/system/foo.service", "[Unit]\n", 0o644)
	f.deleted("/etc/gone.conf")
	f.dir("/etc/foo.d", 0o755, Opaque)
	f.file("/etc/foo.d/new.conf", "new", 0o644)
	f.dir("/etc/empty.d", 0o755, Opaque)
	f.file("/var/lib/foo/state", "state", 0o644)
	f.file("/var/log/foo.log", "log", 0o644)
	f.file("/var/log/foo/more.log", "log", 0o644)
	f.deleted("/var/log/old.log")
	f.file("/var/cache/foo/c", "c", 0o644)
	f.file("/tmp/x", "x", 0o644)
	f.dir("~/.config", 0o755, Added)
	f.dir("~/.local", 0o755, Added)
	f.dir("~/.local/share", 0o755, Added)
	f.file("~/.config/foo/rc", "rc", 0o644)
	f.file("~/.local/share/foo/db", "db", 0o644)
	f.file("~/.foorc", "rc", 0o644)
	f.file("~/.cache/foo/x", "x", 0o644)
	f.file("/boot/foo.img", "img", 0o644)
	f.file("/boot/foo2.img", "img", 0o644)
	c := f.capture()

	work := t.TempDir()
	st, err := Stage(context.Background(), c, LayoutOptions{Name: "Foo", Work: work})
	if err != nil {
		t.Fatal(err)
	}
	if st.Dir != filepath.Join(work, "stage") || st.PackageRoot != "/opt/foo" {
		t.Errorf("Dir %s, PackageRoot %s", st.Dir, st.PackageRoot)
	}
	tree := listStagedTree(t, st.Dir)
	want := []string{
		"VFS/ d 755",
		"VFS/Etc/ d 755",
		"VFS/Etc/empty.d/ d 755",
		"VFS/Etc/foo.conf f 600 conf",
		"VFS/Etc/foo.d/ d 755",
		"VFS/Etc/foo.d/new.conf f 644 new",
		"VFS/Etc/systemd/ d 755",
		"VFS/Etc/systemd/system/ d 755",
		"VFS/Etc/systemd/system/foo.service f 644 [Unit]\n",
		"VFS/Profile/ d 755",
		"VFS/Profile/.foorc f 644 rc",
		"VFS/Usr/ d 755",
		"VFS/Usr/bin/ d 755",
		"VFS/Usr/bin/foo-data l ../share/foo/data",
		"VFS/Usr/bin/foo-local l ../local/lib/foo",
		"VFS/Usr/lib/ d 755",
		"VFS/Usr/lib/modules/ d 755",
		"VFS/Usr/lib/modules/6.1.0/ d 755",
		"VFS/Usr/lib/modules/6.1.0/extra/ d 755",
		"VFS/Usr/lib/modules/6.1.0/extra/foo.ko f 644 elf",
		"VFS/Usr/share/ d 755",
		"VFS/Usr/share/foo/ d 755",
		"VFS/Usr/share/foo/data f 644 data",
		"VFS/Usr/share/mime/ d 755",
		"VFS/Usr/share/mime/packages/ d 755",
		"VFS/Usr/share/mime/packages/foo.xml f 644 <mime-info/>",
		"VFS/UsrLocal/ d 755",
		"VFS/UsrLocal/bin/ d 755",
		"VFS/UsrLocal/bin/foo f 755 x",
		"VFS/VarLib/ d 755",
		"VFS/VarLib/foo/ d 755",
		"VFS/VarLib/foo/state f 644 state",
		"VFS/XdgConfigHome/ d 755",
		"VFS/XdgConfigHome/foo/ d 755",
		"VFS/XdgConfigHome/foo/rc f 644 rc",
		"VFS/XdgDataHome/ d 755",
		"VFS/XdgDataHome/foo/ d 755",
		"VFS/XdgDataHome/foo/db f 644 db",
		"bin/ d 755",
		"bin/foo f 755 #!/bin/sh\n",
		"bin/foo-link l /opt/foo/bin/foo",
		"bin/group f 2755 group",
		"bin/helper f 4755 helper",
		"empty/ d 750",
	}
	if !slices.Equal(tree, want) {
		t.Errorf("staged tree:\n%s\nwant:\n%s", strings.Join(tree, "\n"), strings.Join(want, "\n"))
	}
	if want := []string{"Root/VFS/Etc/empty.d", "Root/VFS/Etc/foo.d"}; !slices.Equal(st.Opaque, want) {
		t.Errorf("Opaque = %q, want %q", st.Opaque, want)
	}
	if want := []string{"Root/VFS/Etc/gone.conf"}; !slices.Equal(st.Deleted, want) {
		t.Errorf("Deleted = %q, want %q", st.Deleted, want)
	}

	wantMsgs := []struct {
		sev           Severity
		category, pth string
		text          string // contained
	}{
		{Info, "PackageRoot", "/opt/foo", "only directory of /opt"},
		{Info, "Excluded", "/var/log", "log files: left out of the package (3 paths)"},
		{Info, "Excluded", "/var/cache", "(1 path)"},
		{Info, "Excluded", "/tmp", "temporary"},
		{Info, "Excluded", "~/.cache", "caches"},
		{Info, "Excluded", "/usr/share/mime", "update-mime-database"},
		{Info, "Symlink", "", "2 absolute symlinks"},
		{Warning, "Excluded", "/opt/foo/fifo", "named pipe"},
		{Warning, "Setuid", "/opt/foo/bin/helper", "set-user-ID"},
		{Warning, "Setuid", "/opt/foo/bin/group", "set-group-ID"},
		{Warning, "KernelModule", "/usr/lib/modules/6.1.0", "1 kernel module file"},
		{Warning, "SystemdUnit", "/etc/systemd/system/foo.service", "systemd"},
		{Warning, "Symlink", "/usr/local/bin/foo-opt", "/opt/foo/bin/foo"},
		{Warning, "Symlink", "/usr/local/bin/foo-up", "../../../etc/foo.conf"},
		{Warning, "OutsideKnownFolders", "/boot", "2 paths outside the folders a package can hold (/boot/foo.img, /boot/foo2.img)"},
	}
	for _, w := range wantMsgs {
		if !slices.ContainsFunc(st.Report.Messages, func(m Message) bool {
			return m.Severity == w.sev && m.Category == w.category && m.Path == w.pth && strings.Contains(m.Text, w.text)
		}) {
			t.Errorf("no %s %s message for %q containing %q", w.sev, w.category, w.pth, w.text)
		}
	}
	if len(st.Report.Messages) != len(wantMsgs) {
		for _, m := range st.Report.Messages {
			t.Logf("%s %s %s: %s", m.Severity, m.Category, m.Path, m.Text)
		}
		t.Errorf("%d messages, want %d", len(st.Report.Messages), len(wantMsgs))
	}
	if got, want := st.Report.Summary(), "5 excluded trees, 8 warnings (1 Excluded, 1 KernelModule, 1 OutsideKnownFolders, 2 Setuid, 2 Symlink, 1 SystemdUnit)"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}

	// Files are hard links to the capture's, so they outlive it.
	if !sameInodeAs(t, filepath.Join(st.Dir, "bin/foo"), f.src("/opt/foo/bin/foo")) {
		t.Error("bin/foo is not a hard link to the capture's file")
	}

	// appvpkg.Create takes the tree as it is.
	id := appvpkg.Identity{Name: "Foo", Publisher: "CN=appv", Version: "1.0.0.0", PackageID: appvpkg.NewGUID(), VersionID: appvpkg.NewGUID()}
	if _, err := appvpkg.Create(context.Background(), io.Discard, appvpkg.CreateOptions{
		Dir: st.Dir, PackageRoot: st.PackageRoot, Manifest: appvpkg.NewManifest(id), Opaque: st.Opaque, Deleted: st.Deleted,
	}); err != nil {
		t.Errorf("appvpkg.Create of the staged tree: %v", err)
	}
}

// Modes and times of directories come from the capture; a directory the
// installer made read-only does not stop its children.
func TestStageDirectoryAttributes(t *testing.T) {
	f := newFakeCapture(t)
	f.file("/usr/share/foo/sub/x", "x", 0o644)
	f.file("/usr/share/foo/ro/y", "y", 0o444)
	f.dir("/usr/share/foo/ro", 0o555, Added)
	t.Cleanup(func() { _ = os.Chmod(f.src("/usr/share/foo/ro"), 0o755) })
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, p := range []string{"/usr/share/foo/sub", "/usr/share/foo", "/usr/share/foo/ro"} {
		capMust(t, os.Chtimes(f.src(p), mtime, mtime))
	}
	capMust(t, os.Chmod(f.src("/usr/share/foo"), 0o700))
	st, err := Stage(context.Background(), f.capture(), LayoutOptions{Name: "foo", PackageRoot: "/opt/foo", Work: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for rel, wantMode := range map[string]fs.FileMode{"VFS/Usr/share/foo": 0o700, "VFS/Usr/share/foo/sub": 0o755, "VFS/Usr/share/foo/ro": 0o555} {
		info, err := os.Lstat(filepath.Join(st.Dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != wantMode || !info.ModTime().Equal(mtime) {
			t.Errorf("%s: mode %v, time %v; want %v, %v", rel, info.Mode().Perm(), info.ModTime(), wantMode, mtime)
		}
	}
	if st.PackageRoot != "/opt/foo" {
		t.Errorf("PackageRoot = %s", st.PackageRoot)
	}
	// The staged tree is not in the way of removing it.
	capMust(t, os.Chmod(filepath.Join(st.Dir, "VFS/Usr/share/foo/ro"), 0o755))
}

func TestStageErrors(t *testing.T) {
	f := newFakeCapture(t)
	f.file("/opt/foo/x", "x", 0o644)
	c := f.capture()
	if _, err := Stage(context.Background(), c, LayoutOptions{Name: "foo"}); err == nil {
		t.Error("no error without a work directory")
	}
	if _, err := Stage(context.Background(), c, LayoutOptions{Name: "foo", Work: t.TempDir(), PackageRoot: "relative/root"}); err == nil {
		t.Error("no error for a relative package root")
	}
	work := t.TempDir()
	capMust(t, os.Mkdir(filepath.Join(work, "stage"), 0o755))
	if _, err := Stage(context.Background(), c, LayoutOptions{Name: "foo", Work: work}); err == nil {
		t.Error("no error when the stage directory exists")
	}
	c.Changes = append(c.Changes, Change{Path: "/opt/foo/y", Kind: Added})
	work = t.TempDir()
	if _, err := Stage(context.Background(), c, LayoutOptions{Name: "foo", Work: work}); err == nil {
		t.Error("no error for a file without content")
	}
	if _, err := os.Stat(filepath.Join(work, "stage")); !os.IsNotExist(err) {
		t.Errorf("the stage directory is left after an error: %v", err)
	}
}

// listTree lists a staged tree: "rel/ d mode", "rel f mode content",
// "rel l target".
func listStagedTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := octalModeOf(info.Mode())
		switch {
		case info.IsDir():
			out = append(out, rel+"/ d "+mode)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" l "+target)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" f "+mode+" "+string(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func octalModeOf(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%o", n)
}

func sameInodeAs(t *testing.T, a, b string) bool {
	t.Helper()
	ia, err := os.Stat(a)
	capMust(t, err)
	ib, err := os.Stat(b)
	capMust(t, err)
	return os.SameFile(ia, ib)
}

func capMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
