package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
)

const (
	pkgA = "0a1b2c3d-1111-4111-8111-aaaaaaaaaaaa"
	pkgB = "0b2c3d4e-2222-4222-8222-bbbbbbbbbbbb"
)

// TestIntegrateUser integrates every extension point into a fresh home,
// checks each file and what the desktop's tools read from them, then
// deintegrates and checks that nothing is left.
func TestIntegrateUser(t *testing.T) {
	needTool(t, "update-mime-database", "update-desktop-database")
	home := newHome(t)
	tg := userTarget(t, home)
	appv := fakeAppv(t)
	p := helloPkg(pkgA).pkg(t, appv)
	before := snapshot(t, home)

	integrate(t, tg, p)

	share := filepath.Join(home, ".local", "share")
	t.Run("launcher", func(t *testing.T) {
		l := filepath.Join(home, ".local", "bin", "hello")
		fi, err := os.Stat(l)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("launcher mode %v", fi.Mode())
		}
		got := readFile(t, l)
		for _, want := range []string{"#!/bin/sh\n", launcherMarker, "exec '" + appv + "' launch 'hello' -- \"$@\"\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("launcher lacks %q:\n%s", want, got)
			}
		}
	})
	entry := "appv-0a1b2c3d-org.example.Hello.desktop"
	t.Run("desktop entry", func(t *testing.T) {
		apps := filepath.Join(share, "applications")
		validateDesktop(t, apps)
		got := readFile(t, filepath.Join(apps, entry))
		for _, want := range []string{
			"\nName=Hello\n", "\nComment=Say hello\n", "\nIcon=appv-0a1b2c3d-hello\n",
			"\nExec=" + appv + " launch [{AppVPackageRoot}]/bin/hello -- --greet %U\n",
			"\nMimeType=application/x-appvtest;x-scheme-handler/appvtest;\n",
			"\nX-AppV-PackageId=" + pkgA + "\n", "\nX-AppV-VersionId=11111111-1111-4111-8111-111111111111\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("entry lacks %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, "TryExec") {
			t.Errorf("entry has TryExec:\n%s", got)
		}
		if _, err := os.Stat(filepath.Join(apps, "mimeinfo.cache")); err != nil {
			t.Errorf("update-desktop-database did not run: %v", err)
		}
	})
	t.Run("icons", func(t *testing.T) {
		for _, f := range []string{"48x48/apps/appv-0a1b2c3d-hello.png", "scalable/apps/appv-0a1b2c3d-hello.svg"} {
			if _, err := os.Stat(filepath.Join(share, "icons", "hicolor", f)); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("MIME type", func(t *testing.T) {
		got := readFile(t, filepath.Join(share, "mime", "packages", "appv-0a1b2c3d.xml"))
		for _, want := range []string{`<mime-type type="application/x-appvtest">`, "<comment>Appv test document</comment>",
			`<generic-icon name="text-x-generic"/>`, `<glob pattern="*.appvtest"/>`} {
			if !strings.Contains(got, want) {
				t.Errorf("MIME package lacks %q:\n%s", want, got)
			}
		}
		if !strings.Contains(readFile(t, filepath.Join(share, "mime", "types")), "application/x-appvtest\n") {
			t.Error("update-mime-database did not add the type")
		}
		doc := filepath.Join(home, "some.appvtest")
		writeFile(t, home, "some.appvtest", "hello\n", 0o644)
		defer os.Remove(doc)
		needTool(t, "mimetype")
		if got := xdgMime(t, home, "query", "filetype", doc); got != "application/x-appvtest" {
			t.Errorf("xdg-mime query filetype = %q", got)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		for _, typ := range []string{"application/x-appvtest", "x-scheme-handler/appvtest"} {
			if got := xdgMime(t, home, "query", "default", typ); got != entry {
				t.Errorf("xdg-mime query default %s = %q, want %q", typ, got, entry)
			}
		}
		got := readFile(t, filepath.Join(home, ".config", "mimeapps.list"))
		want := "[Default Applications]\napplication/x-appvtest=" + entry + ";\nx-scheme-handler/appvtest=" + entry + ";\n\n" +
			"[Added Associations]\napplication/x-appvtest=" + entry + ";\nx-scheme-handler/appvtest=" + entry + ";\n"
		if got != want {
			t.Errorf("mimeapps.list:\n%s\nwant:\n%s", got, want)
		}
	})
	checkOwned(t, home)

	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}
}

// TestIdempotent integrates twice (nothing changes the second time) and
// deintegrates twice.
func TestIdempotent(t *testing.T) {
	home := newHome(t)
	tg := userTarget(t, home)
	p := helloPkg(pkgA).pkg(t, fakeAppv(t))
	before := snapshot(t, home)
	integrate(t, tg, p)
	once := snapshot(t, home)
	integrate(t, tg, p)
	if d := diffSnapshots(once, snapshot(t, home)); d != "" {
		t.Errorf("integrating again changed:\n%s", d)
	}
	deintegrate(t, tg, p)
	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}
}

const nativeMimeApps = `# my choices
[Default Applications]
text/plain=gedit.desktop;
x-scheme-handler/appvtest=native.desktop;

[Added Associations]
x-scheme-handler/appvtest=native.desktop;other.desktop;
`

const nativeHello = "#!/bin/sh\necho native hello\n"

// TestNativeRestored backs up a native default application and a native
// command and restores them byte for byte.
func TestNativeRestored(t *testing.T) {
	home := newHome(t)
	writeFile(t, home, ".config/mimeapps.list", nativeMimeApps, 0o600)
	writeFile(t, home, ".local/bin/hello", nativeHello, 0o700)
	tg := userTarget(t, home)
	p := helloPkg(pkgA).pkg(t, fakeAppv(t))
	before := snapshot(t, home)

	integrate(t, tg, p)
	entry := "appv-0a1b2c3d-org.example.Hello.desktop"
	if got := xdgMime(t, home, "query", "default", "x-scheme-handler/appvtest"); got != entry {
		t.Errorf("default = %q, want %q", got, entry)
	}
	got := readFile(t, filepath.Join(home, ".config", "mimeapps.list"))
	for _, want := range []string{"# my choices\n", "text/plain=gedit.desktop;\n",
		"x-scheme-handler/appvtest=" + entry + ";native.desktop;other.desktop;\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("mimeapps.list lacks %q:\n%s", want, got)
		}
	}
	if fi, err := os.Stat(filepath.Join(home, ".config", "mimeapps.list")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mimeapps.list mode changed: %v %v", fi.Mode(), err)
	}
	if got := readFile(t, filepath.Join(home, ".local", "bin", "hello")); !strings.Contains(got, launcherMarker) {
		t.Errorf("the native command was not replaced:\n%s", got)
	}
	checkOwned(t, home)

	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration did not restore the home:\n%s", d)
	}
}

// TestOwnership has two packages take the same points (a URL scheme, a
// command) over a native default, and removes them in either order:
// ownership passes back to the package that is left, and the native
// default comes back when the last one goes.
func TestOwnership(t *testing.T) {
	entryA := "appv-0a1b2c3d-org.example.Hello.desktop"
	entryB := "appv-0b2c3d4e-org.example.Hello.desktop"
	tests := []struct {
		name        string
		first, last string // removed first, removed last
		between     string // default between the two removals
	}{
		{name: "newest removed first", first: pkgB, last: pkgA, between: entryA},
		{name: "oldest removed first", first: pkgA, last: pkgB, between: entryB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := newHome(t)
			writeFile(t, home, ".config/mimeapps.list", nativeMimeApps, 0o644)
			writeFile(t, home, ".local/bin/hello", nativeHello, 0o755)
			tg := userTarget(t, home)
			appv := fakeAppv(t)
			pkgs := map[string]Package{pkgA: helloPkg(pkgA).pkg(t, appv), pkgB: helloPkg(pkgB).pkg(t, appv)}
			before := snapshot(t, home)
			query := func() string { return xdgMime(t, home, "query", "default", "x-scheme-handler/appvtest") }
			launcherOf := func() string { return readFile(t, filepath.Join(home, ".local", "bin", "hello")) }

			integrate(t, tg, pkgs[pkgA])
			if got := query(); got != entryA {
				t.Fatalf("after A: default %q", got)
			}
			integrate(t, tg, pkgs[pkgB])
			if got := query(); got != entryB {
				t.Fatalf("after B: default %q", got)
			}
			if !strings.Contains(launcherOf(), "("+pkgB+")") {
				t.Fatalf("after B: launcher is not B's:\n%s", launcherOf())
			}

			deintegrate(t, tg, pkgs[tt.first])
			if got := query(); got != tt.between {
				t.Errorf("after removing %s: default %q, want %q", tt.first[:8], got, tt.between)
			}
			if got := launcherOf(); !strings.Contains(got, "("+tt.last+")") {
				t.Errorf("after removing %s: launcher is not %s's:\n%s", tt.first[:8], tt.last[:8], got)
			}
			validateDesktop(t, filepath.Join(home, ".local", "share", "applications"))

			deintegrate(t, tg, pkgs[tt.last])
			// xdg-mime only answers with installed entries: read the file.
			got, _ := parseKeyFile([]byte(readFile(t, filepath.Join(home, ".config", "mimeapps.list")))).get(groupDefault, "x-scheme-handler/appvtest")
			if got != "native.desktop;" {
				t.Errorf("after removing both: default %q, want native.desktop;", got)
			}
			if d := diffSnapshots(before, snapshot(t, home)); d != "" {
				t.Errorf("deintegration did not restore the home:\n%s", d)
			}
		})
	}
}

// TestChangedSinceIntegration leaves alone what the user changed after
// integration.
func TestChangedSinceIntegration(t *testing.T) {
	home := newHome(t)
	writeFile(t, home, ".config/mimeapps.list", nativeMimeApps, 0o644)
	tg := userTarget(t, home)
	p := helloPkg(pkgA).pkg(t, fakeAppv(t))
	integrate(t, tg, p)

	// The user picks another handler, and replaces the launcher.
	list := filepath.Join(home, ".config", "mimeapps.list")
	data := strings.Replace(readFile(t, list), "x-scheme-handler/appvtest=appv-0a1b2c3d-org.example.Hello.desktop;",
		"x-scheme-handler/appvtest=mine.desktop;", 1)
	writeFile(t, home, ".config/mimeapps.list", data, 0o644)
	writeFile(t, home, ".local/bin/hello", "#!/bin/sh\necho mine\n", 0o755)

	deintegrate(t, tg, p)
	if got := readFile(t, list); !strings.Contains(got, "x-scheme-handler/appvtest=mine.desktop;\n") || strings.Contains(got, "appv-") {
		t.Errorf("mimeapps.list:\n%s", got)
	}
	if got := readFile(t, filepath.Join(home, ".local", "bin", "hello")); got != "#!/bin/sh\necho mine\n" {
		t.Errorf("the user's launcher was changed:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "share", "appv")); !os.IsNotExist(err) {
		t.Errorf("appv state left behind: %v", err)
	}
}

// TestSymlinkRefused plants symlinks out of the home where integration
// writes: nothing is written through them, nor anywhere else.
func TestSymlinkRefused(t *testing.T) {
	for _, link := range []string{".local/share/applications", ".local/bin", ".config", ".local/share/appv/integration", ".local/share"} {
		t.Run(link, func(t *testing.T) {
			home := newHome(t)
			outside := t.TempDir()
			if err := os.MkdirAll(filepath.Dir(filepath.Join(home, link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(home, link)); err != nil {
				t.Fatal(err)
			}
			beforeHome, beforeOut := snapshot(t, home), snapshot(t, outside)
			err := Integrate(context.Background(), userTarget(t, home), helloPkg(pkgA).pkg(t, fakeAppv(t)))
			if !errors.Is(err, ErrSymlinkOut) {
				t.Fatalf("Integrate through a symlink out of the home: %v, want ErrSymlinkOut", err)
			}
			t.Log(err)
			if d := diffSnapshots(beforeOut, snapshot(t, outside)); d != "" {
				t.Errorf("written outside the home:\n%s", d)
			}
			if d := diffSnapshots(beforeHome, snapshot(t, home)); d != "" {
				t.Errorf("written in the home:\n%s", d)
			}
		})
	}
}

// TestUpgrade integrates a second version of a package: points it no
// longer has are released, the others pass to it; deintegrating the old
// version then does nothing, and deintegrating works from the state, not
// the manifest.
func TestUpgrade(t *testing.T) {
	home := newHome(t)
	writeFile(t, home, ".local/bin/hello-old", nativeHello, 0o755)
	tg := userTarget(t, home)
	appv := fakeAppv(t)
	v1 := helloPkg(pkgA)
	v1.exts = append(v1.exts, appvpkg.Extension{Application: helloApp, AppPath: &appvpkg.AppPath{Name: "hello-old", ApplicationID: helloApp}})
	v2 := helloPkg(pkgA)
	v2.version, v2.versionID = "2.0.0.0", "22222222-2222-4222-8222-222222222222"
	v2.exts = v2.exts[:2] // app path and shortcut only
	before := snapshot(t, home)

	integrate(t, tg, v1.pkg(t, appv))
	if got := readFile(t, filepath.Join(home, ".local", "bin", "hello-old")); !strings.Contains(got, launcherMarker) {
		t.Fatalf("hello-old not integrated:\n%s", got)
	}
	integrate(t, tg, v2.pkg(t, appv))
	if got := readFile(t, filepath.Join(home, ".local", "bin", "hello-old")); got != nativeHello {
		t.Errorf("hello-old not restored on upgrade:\n%s", got)
	}
	if got := readFile(t, filepath.Join(home, ".local", "bin", "hello")); !strings.Contains(got, " 2.0.0.0 ") {
		t.Errorf("hello is not v2's:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "share", "mime", "packages", "appv-0a1b2c3d.xml")); !os.IsNotExist(err) {
		t.Errorf("v1's MIME types left after the upgrade: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "mimeapps.list")); !os.IsNotExist(err) {
		t.Errorf("v1's defaults left after the upgrade: %v", err)
	}
	entry := readFile(t, filepath.Join(home, ".local", "share", "applications", "appv-0a1b2c3d-org.example.Hello.desktop"))
	if !strings.Contains(entry, "X-AppV-VersionId=22222222-") || strings.Contains(entry, "MimeType") {
		t.Errorf("entry is not v2's:\n%s", entry)
	}

	// Unpublishing v1 late leaves v2 alone.
	deintegrate(t, tg, v1.pkg(t, appv))
	if _, err := os.Stat(filepath.Join(home, ".local", "bin", "hello")); err != nil {
		t.Errorf("deintegrating v1 removed v2's launcher: %v", err)
	}
	// The manifest given does not matter: the state does.
	p := v2.pkg(t, appv)
	p.Manifest = appvpkg.NewManifest(appvpkg.Identity{Name: "x", PackageID: pkgA, VersionID: v2.versionID})
	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}
}

// TestWindowsManifest integrates a manifest as Microsoft's Sequencer
// writes it: backslashes, a .lnk shortcut with an .ico, verbs with %1.
func TestWindowsManifest(t *testing.T) {
	const app = `[{AppVPackageRoot}]\Reader\AcroRd32.exe`
	home := newHome(t)
	tg := userTarget(t, home)
	appv := fakeAppv(t)
	tp := testPkg{
		id: pkgB, version: "9.0.0.0", versionID: "33333333-3333-4333-8333-333333333333",
		apps: []appvpkg.Application{{ID: app, DisplayName: "Adobe Reader 9"}},
		exts: []appvpkg.Extension{
			{Shortcut: &appvpkg.Shortcut{File: `[{Common Programs}]\Adobe Reader 9.lnk`, Target: app,
				Icon: `[{Windows}]\Installer\{AC76BA86}\SC_Reader.ico`, ApplicationID: app}},
			{Shortcut: &appvpkg.Shortcut{File: `[{Common Desktop}]\Adobe Reader 9.lnk`, Target: app, ApplicationID: app}},
			{Shortcut: &appvpkg.Shortcut{File: `[{Common Startup}]\Reader Speed Launch.lnk`, Target: app, ApplicationID: app}},
			{FileTypeAssociation: &appvpkg.FileTypeAssociation{
				FileExtension: &appvpkg.FileExtension{Name: ".xdp", ProgID: "AcroExch.XDPDoc", ContentType: "application/vnd.adobe.xdp+xml"},
				ProgID: &appvpkg.ProgID{Name: "AcroExch.XDPDoc", Description: "Adobe Acrobat XML Data Package File",
					ShellCommands: &appvpkg.ShellCommands{DefaultCommand: "Read", Commands: []appvpkg.ShellCommand{
						{ApplicationID: app, Name: "Open", CommandLine: `"` + app + `" "%1"`},
						{ApplicationID: app, Name: "Printto", CommandLine: `"` + app + `"  /t "%1" "%2" "%3" "%4"`},
						{ApplicationID: app, Name: "Read", FriendlyName: "Open with Adobe Reader 9", CommandLine: `"` + app + `" /read "%1"`},
					}}}}},
			{URLProtocol: &appvpkg.URLProtocol{Name: "acrobat", ShellCommands: &appvpkg.ShellCommands{Commands: []appvpkg.ShellCommand{
				{ApplicationID: app, Name: "open", CommandLine: `"` + app + `" /u "%1"`}}}}},
		},
	}
	p := tp.pkg(t, appv)
	before := snapshot(t, home)
	integrate(t, tg, p)

	apps := filepath.Join(home, ".local", "share", "applications")
	validateDesktop(t, apps)
	files, _ := filepath.Glob(filepath.Join(apps, "*.desktop"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"appv-0b2c3d4e-AcroRd32-open-2.desktop", "appv-0b2c3d4e-AcroRd32-open.desktop", "appv-0b2c3d4e-Adobe_Reader_9.desktop"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries %v, want %v", names, want)
	}
	shortcut := readFile(t, filepath.Join(apps, want[2]))
	for _, w := range []string{"\nName=Adobe Reader 9\n", `Exec=` + appv + ` launch "[{AppVPackageRoot}]\\\\Reader\\\\AcroRd32.exe" --` + "\n"} {
		if !strings.Contains(shortcut, w) {
			t.Errorf("shortcut lacks %q:\n%s", w, shortcut)
		}
	}
	if strings.Contains(shortcut, "Icon=") || strings.Contains(shortcut, "MimeType=") {
		t.Errorf("shortcut has an icon or types:\n%s", shortcut)
	}
	fta := readFile(t, filepath.Join(apps, "appv-0b2c3d4e-AcroRd32-open.desktop"))
	for _, w := range []string{"\nNoDisplay=true\n", " -- /read %f\n", "\nMimeType=application/vnd.adobe.xdp+xml;\n"} {
		if !strings.Contains(fta, w) {
			t.Errorf("file type handler lacks %q:\n%s", w, fta)
		}
	}
	url := readFile(t, filepath.Join(apps, "appv-0b2c3d4e-AcroRd32-open-2.desktop"))
	for _, w := range []string{" -- /u %u\n", "\nMimeType=x-scheme-handler/acrobat;\n"} {
		if !strings.Contains(url, w) {
			t.Errorf("URL handler lacks %q:\n%s", w, url)
		}
	}
	if got := xdgMime(t, home, "query", "default", "x-scheme-handler/acrobat"); got != "appv-0b2c3d4e-AcroRd32-open-2.desktop" {
		t.Errorf("default for acrobat: %q", got)
	}
	checkOwned(t, home)
	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}
}

// TestLegacyLaunchers deintegrates launchers the client wrote before the
// state file, restoring their backups.
func TestLegacyLaunchers(t *testing.T) {
	home := newHome(t)
	tg := userTarget(t, home)
	appv := fakeAppv(t)
	writeFile(t, home, ".local/bin/hello", "#!/bin/sh\n# appv launcher for hello from package Hello 1 (x).\nexec 'appv' launch 'hello' -- \"$@\"\n", 0o755)
	writeFile(t, home, ".local/share/appv/integration/backups/bin/hello", nativeHello, 0o755)
	deintegrate(t, tg, helloPkg(pkgA).pkg(t, appv))
	if got := readFile(t, filepath.Join(home, ".local", "bin", "hello")); got != nativeHello {
		t.Errorf("legacy backup not restored:\n%s", got)
	}

	// Integrating over a legacy launcher adopts its backup.
	writeFile(t, home, ".local/bin/hello", "#!/bin/sh\n# appv launcher for hello from package Hello 1 (x).\nexec 'appv' launch 'hello' -- \"$@\"\n", 0o755)
	writeFile(t, home, ".local/share/appv/integration/backups/bin/hello", nativeHello, 0o755)
	p := helloPkg(pkgA).pkg(t, appv)
	integrate(t, tg, p)
	deintegrate(t, tg, p)
	if got := readFile(t, filepath.Join(home, ".local", "bin", "hello")); got != nativeHello {
		t.Errorf("adopted legacy backup not restored:\n%s", got)
	}
}

// TestGlobalLayout integrates with the global layout, in a directory
// standing for "/": nothing is chowned, defaults go to the data
// directory's mimeapps.list.
func TestGlobalLayout(t *testing.T) {
	root := newHome(t)
	g := GlobalTarget("/var/lib/appv", "")
	tg := &Target{Root: root, Log: userTarget(t, root).Log}
	for _, p := range []struct {
		dst *string
		src string
	}{{&tg.DataHome, g.DataHome}, {&tg.BinDir, g.BinDir}, {&tg.MimeApps, g.MimeApps}, {&tg.BackupDir, g.BackupDir}} {
		*p.dst = filepath.Join(root, p.src)
	}
	p := helloPkg(pkgA).pkg(t, fakeAppv(t))
	before := snapshot(t, root)
	integrate(t, tg, p)
	for _, f := range []string{
		"usr/local/bin/hello", "usr/local/share/applications/appv-0a1b2c3d-org.example.Hello.desktop",
		"usr/local/share/applications/mimeapps.list", "usr/local/share/mime/packages/appv-0a1b2c3d.xml",
		"usr/local/share/icons/hicolor/48x48/apps/appv-0a1b2c3d-hello.png", "var/lib/appv/integration/backups/state.json",
	} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Error(err)
		}
	}
	// A user with nothing of their own gets the package's defaults from
	// the data directory's mimeapps.list.
	env := append(xdgEnv(newHome(t)), "XDG_DATA_DIRS="+filepath.Join(root, "usr/local/share")+":/usr/share")
	if got := xdgMimeEnv(t, env, "query", "default", "x-scheme-handler/appvtest"); got != "appv-0a1b2c3d-org.example.Hello.desktop" {
		t.Errorf("default for a user: %q", got)
	}
	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, root)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}
}

// TestMimeAppsSymlink keeps a dotfile manager's symlinked mimeapps.list a
// symlink, and refuses one that leads out of the home.
func TestMimeAppsSymlink(t *testing.T) {
	home := newHome(t)
	writeFile(t, home, "dotfiles/mimeapps.list", nativeMimeApps, 0o644)
	if err := os.MkdirAll(filepath.Join(home, ".config"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, ".config", "mimeapps.list")
	if err := os.Symlink("../dotfiles/mimeapps.list", link); err != nil {
		t.Fatal(err)
	}
	if asRoot() {
		_ = os.Lchown(filepath.Join(home, ".config"), testUID, testUID)
		_ = os.Lchown(link, testUID, testUID)
	}
	tg := userTarget(t, home)
	p := helloPkg(pkgA).pkg(t, fakeAppv(t))
	before := snapshot(t, home)
	integrate(t, tg, p)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("mimeapps.list is no longer a symlink: %v", err)
	}
	if got := readFile(t, filepath.Join(home, "dotfiles", "mimeapps.list")); !strings.Contains(got, "x-scheme-handler/appvtest=appv-0a1b2c3d-") {
		t.Errorf("the link's target was not updated:\n%s", got)
	}
	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}

	outside := filepath.Join(t.TempDir(), "mimeapps.list")
	if err := os.WriteFile(outside, []byte(nativeMimeApps), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, home)
	if err := Integrate(context.Background(), tg, p); !errors.Is(err, ErrSymlinkOut) {
		t.Errorf("Integrate with mimeapps.list out of the home: %v, want ErrSymlinkOut", err)
	}
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("written in the home:\n%s", d)
	}
	if got := readFile(t, outside); got != nativeMimeApps {
		t.Errorf("the file outside the home changed:\n%s", got)
	}
	deintegrate(t, tg, p)
}

// TestKnownTypes does not redefine types the host knows: a known type
// gets only the glob the host lacks, an extension the host knows takes
// the host's type, and an extension with no type gets
// application/x-extension-<ext>.
func TestKnownTypes(t *testing.T) {
	needTool(t, "update-mime-database")
	home := newHome(t)
	tg := userTarget(t, home)
	tp := helloPkg(pkgA)
	tp.exts = []appvpkg.Extension{
		{Application: helloApp, FileTypeAssociation: &appvpkg.FileTypeAssociation{FileExtension: &appvpkg.FileExtension{Name: ".appvknown", ContentType: "text/plain"}}},
		{Application: helloApp, FileTypeAssociation: &appvpkg.FileTypeAssociation{FileExtension: &appvpkg.FileExtension{Name: "txt"}}},
		{Application: helloApp, FileTypeAssociation: &appvpkg.FileTypeAssociation{FileExtension: &appvpkg.FileExtension{Name: ".appvnotype"}}},
	}
	p := tp.pkg(t, fakeAppv(t))
	integrate(t, tg, p)
	xml := readFile(t, filepath.Join(home, ".local", "share", "mime", "packages", "appv-0a1b2c3d.xml"))
	want := "  <mime-type type=\"text/plain\">\n    <glob pattern=\"*.appvknown\"/>\n  </mime-type>\n" +
		"  <mime-type type=\"application/x-extension-appvnotype\">\n    <comment>APPVNOTYPE file</comment>\n    <glob pattern=\"*.appvnotype\"/>\n  </mime-type>\n"
	if !strings.Contains(xml, want) {
		t.Errorf("MIME package:\n%s\nwant:\n%s", xml, want)
	}
	entry := readFile(t, filepath.Join(home, ".local", "share", "applications", "appv-0a1b2c3d-hello-open.desktop"))
	if !strings.Contains(entry, "\nMimeType=text/plain;application/x-extension-appvnotype;\n") || !strings.Contains(entry, " -- %f\n") {
		t.Errorf("handler entry:\n%s", entry)
	}
	validateDesktop(t, filepath.Join(home, ".local", "share", "applications"))
	if got := xdgMime(t, home, "query", "default", "text/plain"); got != "appv-0a1b2c3d-hello-open.desktop" {
		t.Errorf("default for text/plain: %q", got)
	}
	deintegrate(t, tg, p)
}

// TestNothingToDo deintegrates a package that was never integrated, and
// integrates one without extension points: the home is left as it was.
func TestNothingToDo(t *testing.T) {
	home := newHome(t)
	tg := userTarget(t, home)
	before := snapshot(t, home)
	deintegrate(t, tg, helloPkg(pkgA).pkg(t, fakeAppv(t)))
	tp := helloPkg(pkgB)
	tp.exts = nil
	integrate(t, tg, tp.pkg(t, fakeAppv(t)))
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("changed:\n%s", d)
	}
}

// TestExistingApplicationsDir integrates into an applications directory
// that was there before (with a native entry and no mimeinfo.cache):
// deintegrating leaves it as it was.
func TestExistingApplicationsDir(t *testing.T) {
	needTool(t, "update-desktop-database")
	home := newHome(t)
	writeFile(t, home, ".local/share/applications/native.desktop", "[Desktop Entry]\nType=Application\nName=Native\nExec=true\n", 0o644)
	tg := userTarget(t, home)
	p := helloPkg(pkgA).pkg(t, fakeAppv(t))
	before := snapshot(t, home)
	integrate(t, tg, p)
	if _, err := os.Stat(filepath.Join(home, ".local", "share", "applications", "mimeinfo.cache")); err != nil {
		t.Errorf("update-desktop-database did not run: %v", err)
	}
	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}
}

// TestSequencedManifest integrates a manifest as appv's sequencer writes
// it from desktop entries and MIME packages (testdata/sequenced.manifest.xml,
// a copy of the sequencer's golden file).
func TestSequencedManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "sequenced.manifest.xml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"Root/VFS/Usr/share/icons/hicolor/scalable/apps/foo.svg":                 []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`),
		"Root/VFS/Usr/share/icons/hicolor/48x48/apps/foo.png":                    pngOf(t, 48),
		"Root/VFS/Usr/share/pixmaps/bar.png":                                     pngOf(t, 32),
		"Root/VFS/Usr/share/icons/hicolor/48x48/mimetypes/application-x-foo.png": pngOf(t, 48),
	}
	p := Package{Manifest: m, Launcher: fakeAppv(t), Files: func(p string) ([]byte, error) {
		if d, ok := files[p]; ok {
			return d, nil
		}
		return nil, os.ErrNotExist
	}}
	home := newHome(t)
	tg := userTarget(t, home)
	before := snapshot(t, home)
	integrate(t, tg, p)

	share := filepath.Join(home, ".local", "share")
	validateDesktop(t, filepath.Join(share, "applications"))
	for _, f := range []string{
		"bin/foo", "bin/foo-alias", "bin/foo-safe", "bin/bar", "bin/baz",
		"share/icons/hicolor/scalable/apps/appv-6d5b3ab4-foo.svg", "share/icons/hicolor/48x48/apps/appv-6d5b3ab4-foo.png",
		"share/icons/hicolor/32x32/apps/appv-6d5b3ab4-bar.png", "share/icons/hicolor/48x48/apps/appv-6d5b3ab4-application-x-foo.png",
	} {
		if _, err := os.Stat(filepath.Join(home, ".local", f)); err != nil {
			t.Error(err)
		}
	}
	foo := readFile(t, filepath.Join(share, "applications", "appv-6d5b3ab4-foo.desktop"))
	for _, w := range []string{`launch [{Usr}]/bin/foo -- --class "Foo Editor" %F` + "\n", "\nMimeType=application/x-foo;text/plain;\n", "\nIcon=appv-6d5b3ab4-foo\n"} {
		if !strings.Contains(foo, w) {
			t.Errorf("foo's entry lacks %q:\n%s", w, foo)
		}
	}
	bar := readFile(t, filepath.Join(share, "applications", "appv-6d5b3ab4-bar-open.desktop"))
	if w := `launch [{Usr}]/bin/bar -- "--title=Bar \\"quoted\\" \\$HOME" %u` + "\n"; !strings.Contains(bar, w) {
		t.Errorf("bar's entry lacks %q:\n%s", w, bar)
	}
	if got := readFile(t, filepath.Join(share, "applications", "appv-6d5b3ab4-baz.desktop")); !strings.Contains(got, "\nIcon=baz-missing\n") {
		t.Errorf("baz's themed icon name not kept:\n%s", got)
	}
	for typ, want := range map[string]string{
		"application/x-foo": "appv-6d5b3ab4-foo.desktop", "text/plain": "appv-6d5b3ab4-foo.desktop",
		"x-scheme-handler/foo": "appv-6d5b3ab4-foo-open.desktop", "x-scheme-handler/bar": "appv-6d5b3ab4-bar-open.desktop",
	} {
		if got := xdgMime(t, home, "query", "default", typ); got != want {
			t.Errorf("default for %s: %q, want %q", typ, got, want)
		}
	}
	checkOwned(t, home)
	deintegrate(t, tg, p)
	if d := diffSnapshots(before, snapshot(t, home)); d != "" {
		t.Errorf("deintegration left changes:\n%s", d)
	}
}

// TestInvalidManifest refuses a manifest whose identity is not valid
// (its typed views would be empty).
func TestInvalidManifest(t *testing.T) {
	home := newHome(t)
	m := appvpkg.NewManifest(appvpkg.Identity{Name: "x", PackageID: pkgA})
	if err := Integrate(context.Background(), userTarget(t, home), Package{Manifest: m, Launcher: "/usr/bin/appv"}); err == nil {
		t.Error("integrated a manifest without a publisher")
	}
}
