package venv

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBuildEnv(t *testing.T) {
	u := User{UID: 1000, GID: 1000, Name: "ann", Home: "/home/ann"}
	tests := []struct {
		name        string
		launch, pkg []string
		want        []string
	}{
		{
			name: "defaults fill the gaps",
			want: []string{"HOME=/home/ann", "USER=ann", "LOGNAME=ann", "PATH=" + defaultPath},
		},
		{
			name:   "launch kept, package wins in place",
			launch: []string{"HOME=/h", "USER=u", "LOGNAME=u", "PATH=/bin", "APP_MODE=user", "TERM=xterm"},
			pkg:    []string{"APP_MODE=package", "APP_HOME=/opt/app"},
			want:   []string{"HOME=/h", "USER=u", "LOGNAME=u", "PATH=/bin", "APP_MODE=package", "TERM=xterm", "APP_HOME=/opt/app"},
		},
		{
			name:   "duplicates and junk dropped",
			launch: []string{"A=1", "junk", "=x", "A=2", "HOME=/h", "USER=u", "LOGNAME=u", "PATH=/p"},
			want:   []string{"A=2", "HOME=/h", "USER=u", "LOGNAME=u", "PATH=/p"},
		},
		{
			name:   "empty values are values",
			launch: []string{"PATH=", "HOME=/h"},
			want:   []string{"PATH=", "HOME=/h", "USER=ann", "LOGNAME=ann"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := buildEnv(tt.launch, tt.pkg, u); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Spec{Key: "1000-pkg", User: User{Home: "/home/u"}, Layers: []Layer{
		{Target: "/opt/app", Lower: []string{"/x"}},
		{Target: "/home/u/.config", Native: true, Upper: "/home/u/.local/share/appv/vfs/p/c", Work: "/home/u/.local/share/appv/vfs/p/.work/c"},
	}}
	tests := []struct {
		name   string
		modify func(s *Spec)
		want   string // "" means valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"empty key", func(s *Spec) { s.Key = "" }, "key must be"},
		{"key with slash", func(s *Spec) { s.Key = "a/b" }, "key must be"},
		{"key starting with a dot", func(s *Spec) { s.Key = ".a" }, "key must be"},
		{"key too long", func(s *Spec) { s.Key = strings.Repeat("k", 65) }, "key must be"},
		{"relative home", func(s *Spec) { s.User.Home = "home" }, "user home"},
		{"relative target", func(s *Spec) { s.Layers[0].Target = "opt/app" }, "clean absolute path"},
		{"unclean target", func(s *Spec) { s.Layers[0].Target = "/opt/../etc" }, "clean absolute path"},
		{"root target", func(s *Spec) { s.Layers[0].Target = "/" }, "may not be /"},
		{"target under /dev", func(s *Spec) { s.Layers[0].Target = "/dev/shm" }, "lies under /dev"},
		{"target /sys", func(s *Spec) { s.Layers[0].Target = "/sys" }, "lies under /sys"},
		{"/device is fine", func(s *Spec) { s.Layers[0].Target = "/device" }, ""},
		{"relative lower", func(s *Spec) { s.Layers[0].Lower = []string{"x"} }, "lower"},
		{"upper without work", func(s *Spec) { s.Layers[1].Work = "" }, "given together"},
		{"work inside upper", func(s *Spec) { s.Layers[1].Work = s.Layers[1].Upper + "/w" }, "separate"},
		{"same target twice", func(s *Spec) { s.Layers[1].Target = "/opt/app" }, "given twice"},
		{"bad env", func(s *Spec) { s.Env = []string{"NOEQUALS"} }, "NAME=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			s.Layers = slices.Clone(ok.Layers)
			tt.modify(&s)
			err := s.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			case err != nil && !strings.HasPrefix(err.Error(), "venv: spec "):
				t.Errorf("error %q lacks the prefix", err)
			}
		})
	}
}

func TestParseMountInfo(t *testing.T) {
	in := `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
95 27 0:50 / /home/ann/My\040Files rw shared:1 - tmpfs tmpfs rw
96 95 0:51 / /home/ann/back\134slash\011tab rw - tmpfs tmpfs rw
`
	got, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountInfo{
		{22, 27, "/proc"},
		{27, 1, "/"},
		{95, 27, "/home/ann/My Files"},
		{96, 95, "/home/ann/back\\slash\ttab"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := parseMountInfo(strings.NewReader("x 1 0:1 / / rw - a b c\n")); err == nil {
		t.Error("a bad mount id was accepted")
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		ws   unix.WaitStatus
		want int
	}{
		{"exit 0", 0, 0},
		{"exit 42", 42 << 8, 42},
		{"SIGTERM", unix.WaitStatus(unix.SIGTERM), 143},
		{"SIGKILL with core bit", unix.WaitStatus(unix.SIGKILL) | 0x80, 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.ws); got != tt.want {
				t.Errorf("exitCode(%#x) = %d, want %d", uint32(tt.ws), got, tt.want)
			}
		})
	}
}

// walk follows only symlinks that root owns in root-only directories, and
// reports what is missing.
func TestWalk(t *testing.T) {
	needRoot(t)
	dir := t.TempDir() // root-owned, 0700
	must(t, os.MkdirAll(dir+"/real/sub", 0o755))
	must(t, os.Symlink("real", dir+"/rel"))
	must(t, os.Symlink(dir+"/real/sub", dir+"/abs"))
	must(t, os.Symlink("../../real", dir+"/real/sub/up"))
	must(t, os.Symlink("user", dir+"/byuser"))
	must(t, os.Lchown(dir+"/byuser", uid1, gid1))
	must(t, os.Mkdir(dir+"/open", 0o777))
	must(t, os.Chmod(dir+"/open", 0o777))
	must(t, os.Symlink(dir+"/real", dir+"/open/link"))
	must(t, os.WriteFile(dir+"/file", nil, 0o644))
	must(t, os.Symlink("loop", dir+"/loop"))

	tests := []struct {
		name        string
		path        string
		wantPath    string
		wantMissing []string
		wantErr     string
	}{
		{name: "plain", path: dir + "/real/sub", wantPath: dir + "/real/sub"},
		{name: "relative link", path: dir + "/rel/sub", wantPath: dir + "/real/sub"},
		{name: "absolute link", path: dir + "/abs", wantPath: dir + "/real/sub"},
		{name: "dot-dot in a link", path: dir + "/abs/up/sub", wantPath: dir + "/real/sub"},
		{name: "missing tail", path: dir + "/rel/new/deeper", wantPath: dir + "/real", wantMissing: []string{"new", "deeper"}},
		{name: "user's link refused", path: dir + "/byuser/x", wantErr: "a user could have made"},
		{name: "link in a writable directory refused", path: dir + "/open/link", wantErr: "a user could have made"},
		{name: "file on the way", path: dir + "/file/x", wantErr: "not a directory"},
		{name: "loop", path: dir + "/loop", wantErr: "too many levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := walk(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(w.fd)
			if w.path != tt.wantPath || !slices.Equal(w.missing, tt.wantMissing) {
				t.Errorf("got %s + %q, want %s + %q", w.path, w.missing, tt.wantPath, tt.wantMissing)
			}
			// The descriptor is the directory named.
			var a, b unix.Stat_t
			must(t, unix.Fstat(w.fd, &a))
			must(t, unix.Stat(tt.wantPath, &b))
			if a.Ino != b.Ino {
				t.Errorf("descriptor is not %s", tt.wantPath)
			}
		})
	}
}

// lookPath and chooseDir see the file system as the user does.
func TestAsUserChecks(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	must(t, os.Chmod(filepath.Dir(base), 0o755)) // the test's own, 0700
	must(t, os.Chmod(base, 0o755))
	writeFile(t, base+"/bin/mine", "#!/bin/sh\n", 0o755)
	writeFile(t, base+"/bin/rootonly", "#!/bin/sh\n", 0o744)
	writeFile(t, base+"/bin2/rootonly", "#!/bin/sh\n", 0o755)
	must(t, os.Mkdir(base+"/closed", 0o700))
	u := User{UID: uid1, GID: gid1, Home: base + "/bin"}
	env := []string{"PATH=" + base + "/bin:" + base + "/bin2"}

	tests := []struct {
		name, argv0, want, kind string
	}{
		{name: "in PATH", argv0: "mine", want: base + "/bin/mine"},
		{name: "skips what the user cannot run", argv0: "rootonly", want: base + "/bin2/rootonly"},
		{name: "absolute, not executable", argv0: base + "/bin/rootonly", kind: kindPermission},
		{name: "relative to the directory", argv0: "./mine", want: base + "/bin/mine"},
		{name: "missing", argv0: "nothing", kind: kindNotFound},
		{name: "a directory", argv0: base + "/bin", kind: kindPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			err := asUser(u, func() error {
				var err error
				got, err = lookPath(tt.argv0, base+"/bin", env)
				return err
			})
			var ee *execError
			switch {
			case tt.kind != "":
				if !errors.As(err, &ee) || ee.kind != tt.kind {
					t.Errorf("got %q, %v; want a %s error", got, err, tt.kind)
				}
			case err != nil || got != tt.want:
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	dirs := []struct {
		name, want, wantDir string
		notice              bool
	}{
		{"empty means home", "", base + "/bin", false},
		{"enterable", base + "/bin2", base + "/bin2", false},
		{"closed falls back home", base + "/closed", base + "/bin", true},
		{"missing falls back home", base + "/nothing", base + "/bin", true},
	}
	for _, tt := range dirs {
		t.Run(tt.name, func(t *testing.T) {
			var dir, notice string
			must(t, asUser(u, func() error { dir, notice = chooseDir(tt.want, u); return nil }))
			if dir != tt.wantDir || (notice != "") != tt.notice {
				t.Errorf("got %q (%q), want %q (notice %v)", dir, notice, tt.wantDir, tt.notice)
			}
		})
	}
	// The thread's identity did not leak into this goroutine's.
	if err := unix.Faccessat2(unix.AT_FDCWD, base+"/closed", unix.X_OK, unix.AT_EACCESS); err != nil {
		t.Errorf("root lost access after asUser: %v", err)
	}
}

// NewManager refuses run directories that cannot hold its sockets.
func TestRunDirChecks(t *testing.T) {
	_, err := NewManager(t.Context(), Options{RunDir: "/" + strings.Repeat("d", 60)})
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("long run directory: %v", err)
	}
	_, err = NewManager(t.Context(), Options{RunDir: "run/appv"})
	if err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative run directory: %v", err)
	}
}
