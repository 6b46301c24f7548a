package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
)

// testUID owns the test homes when the tests run as root (so that chown
// and running the tools as the user are tested); otherwise the tests run
// as whoever they are and nothing is chowned.
const testUID = 65534

func asRoot() bool { return os.Geteuid() == 0 }

// homeOwner returns the uid and gid the test home belongs to.
func homeOwner() (int, int) {
	if asRoot() {
		return testUID, testUID
	}
	return os.Getuid(), os.Getgid()
}

// newHome makes an empty home, traversable by the test user.
func newHome(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, gid := homeOwner()
	if asRoot() {
		if err := os.Chown(home, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// userTarget is the user target of a test home.
func userTarget(t *testing.T, home string) *Target {
	uid, gid := homeOwner()
	tg := UserTarget(home, "", "", uid, gid)
	tg.Chown = asRoot()
	tg.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return tg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fakeAppv is an executable standing for the appv binary (xdg-mime checks
// that the program of a default application's Exec exists).
func fakeAppv(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "appv")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFile writes a file in a home as its owner would.
func writeFile(t *testing.T, home, rel, data string, mode fs.FileMode) {
	t.Helper()
	p := filepath.Join(home, rel)
	var dirs []string
	for d := filepath.Dir(p); d != home; d = filepath.Dir(d) {
		dirs = append(dirs, d)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if asRoot() {
		uid, gid := homeOwner()
		for _, d := range append(dirs, p) {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// snapshot describes every path under dir: type, mode, owner, content
// hash or link target.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			desc += " " + hex.EncodeToString(h[:8])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(before, after map[string]string) string {
	var d []string
	for k, v := range after {
		if b, ok := before[k]; !ok {
			d = append(d, "+ "+k+" "+v)
		} else if b != v {
			d = append(d, "~ "+k+" "+b+" => "+v)
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			d = append(d, "- "+k+" "+v)
		}
	}
	slices.Sort(d)
	return strings.Join(d, "\n")
}

// checkOwned fails for any path under home not owned by the home's owner.
func checkOwned(t *testing.T, home string) {
	t.Helper()
	if !asRoot() {
		t.Log("not root: ownership is not checked (files are not chowned)")
		return
	}
	uid, gid := homeOwner()
	_ = filepath.WalkDir(home, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Error(err)
			return nil
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s is owned by %d:%d, not %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		return nil
	})
}

// needTool skips the test if a tool is not installed (scripts/deps
// installs them; CI has them).
func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (scripts/deps installs it)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// xdgEnv is the environment of a desktop session of the test home.
func xdgEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_DIRS=/usr/local/share:/usr/share",
		"XDG_CONFIG_DIRS=/etc/xdg",
		"LC_ALL=C",
	}
}

// xdgMime runs xdg-mime in the test home's session.
func xdgMime(t *testing.T, home string, args ...string) string {
	t.Helper()
	return xdgMimeEnv(t, xdgEnv(home), args...)
}

// xdgMimeEnv runs xdg-mime in a session with the given environment.
func xdgMimeEnv(t *testing.T, env []string, args ...string) string {
	t.Helper()
	needTool(t, "xdg-mime")
	cmd := exec.Command("xdg-mime", args...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xdg-mime %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// validateDesktop runs desktop-file-validate on every .desktop file in
// dir.
func validateDesktop(t *testing.T, dir string) {
	t.Helper()
	needTool(t, "desktop-file-validate")
	files, _ := filepath.Glob(filepath.Join(dir, "*.desktop"))
	if len(files) == 0 {
		t.Fatalf("no desktop entries in %s", dir)
	}
	for _, f := range files {
		out, err := exec.Command("desktop-file-validate", f).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("desktop-file-validate %s: %v\n%s\n%s", filepath.Base(f), err, out, readFile(t, f))
		}
	}
}

func pngOf(t *testing.T, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, n, n))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testPkg describes a test package.
type testPkg struct {
	id, version, versionID string
	exts                   []appvpkg.Extension
	apps                   []appvpkg.Application
}

const helloApp = "[{AppVPackageRoot}]/bin/hello"

// helloPkg is a package with an app path, a shortcut with an icon, a file
// type association with a new MIME type and a URL protocol.
func helloPkg(id string) testPkg {
	return testPkg{
		id: id, version: "1.0.0.0", versionID: "11111111-1111-4111-8111-111111111111",
		apps: []appvpkg.Application{{ID: helloApp, DisplayName: "Hello", Description: "Say hello",
			Icon: "[{AppVPackageRoot}]/share/icons/hicolor/48x48/apps/hello.png"}},
		exts: []appvpkg.Extension{
			{Application: helloApp, AppPath: &appvpkg.AppPath{Name: "hello", ApplicationID: helloApp, ApplicationPath: helloApp}},
			{Application: helloApp, Shortcut: &appvpkg.Shortcut{File: "[{XdgDataHome}]/applications/org.example.Hello.desktop",
				Target: helloApp, Icon: "[{AppVPackageRoot}]/share/icons/hicolor/48x48/apps/hello.png", Arguments: "--greet %U",
				ApplicationID: helloApp}},
			{Application: helloApp, FileTypeAssociation: &appvpkg.FileTypeAssociation{
				FileExtension: &appvpkg.FileExtension{Name: ".appvtest", ProgID: "Hello.Doc", ContentType: "application/x-appvtest", PerceivedType: "text"},
				ProgID:        &appvpkg.ProgID{Name: "Hello.Doc", FriendlyTypeName: "Appv test document"}}},
			{Application: helloApp, URLProtocol: &appvpkg.URLProtocol{Name: "appvtest"}},
		},
	}
}

func (tp testPkg) manifest(t *testing.T) *appvpkg.Manifest {
	t.Helper()
	m := appvpkg.NewManifest(appvpkg.Identity{Name: "Hello" + tp.id[:4], Publisher: "CN=Test", Version: tp.version,
		PackageID: tp.id, VersionID: tp.versionID})
	for _, a := range tp.apps {
		if err := m.AddApplication(a); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range tp.exts {
		if err := m.AddExtension(x); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// pkg is the Package to integrate, with a 48x48 PNG and an SVG of the
// hello icon.
func (tp testPkg) pkg(t *testing.T, launcher string) Package {
	files := map[string][]byte{
		"Root/share/icons/hicolor/48x48/apps/hello.png":    pngOf(t, 48),
		"Root/share/icons/hicolor/scalable/apps/hello.svg": []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"/>`),
	}
	return Package{
		Manifest: tp.manifest(t),
		Launcher: launcher,
		Files: func(p string) ([]byte, error) {
			if d, ok := files[p]; ok {
				return d, nil
			}
			return nil, fs.ErrNotExist
		},
	}
}

func integrate(t *testing.T, tg *Target, p Package) {
	t.Helper()
	if err := Integrate(context.Background(), tg, p); err != nil {
		t.Fatalf("Integrate: %v", err)
	}
}

func deintegrate(t *testing.T, tg *Target, p Package) {
	t.Helper()
	if err := Deintegrate(context.Background(), tg, p); err != nil {
		t.Fatalf("Deintegrate: %v", err)
	}
}
