package sequencer

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/appv/appv/internal/golden"

	"github.com/appv/appv/internal/appvpkg"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/extensions")

const fixtures = "testdata/extensions"

// treeFile is one file of a staged tree built for a test: a copy of a
// fixture (from), text (content), or a symlink (link).
type treeFile struct {
	path    string // in the staged tree: "VFS/Usr/bin/foo"
	mode    os.FileMode
	content string
	from    string // a file under testdata/extensions
	link    string
}

func buildTree(t *testing.T, files []treeFile) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.link != "" {
			if err := os.Symlink(f.link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data := []byte(f.content)
		if f.from != "" {
			var err error
			if data, err = os.ReadFile(filepath.Join(fixtures, f.from)); err != nil {
				t.Fatal(err)
			}
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newTestManifest(t *testing.T) *appvpkg.Manifest {
	t.Helper()
	return appvpkg.NewManifest(appvpkg.Identity{
		Name: "Foo", Publisher: "CN=appv", Version: "1.0.0.0",
		PackageID: "6d5b3ab4-1f0e-4d7b-9b8c-2b7f4e0f8a11", VersionID: "0b7e8a1c-3c5d-4e6f-8a9b-1c2d3e4f5a6b",
	})
}

// fooTree is a package whose root is /opt/foo with desktop entries of every
// kind, icons, a MIME type of its own and commands on PATH.
func fooTree(t *testing.T) *Staged {
	t.Helper()
	dir := buildTree(t, []treeFile{
		{path: "bin/foo-safe", mode: 0o755, content: "#!/bin/sh\n"},
		{path: "share/applications/foo-tool.desktop", content: "[Desktop Entry]\nType=Application\nName=Foo Tool\nExec=/opt/foo/bin/foo-safe --tool\nPath=/opt/foo/share\n"},
		{path: "tool.py", content: "print('hi')\n"},
		{path: "VFS/Usr/bin/foo", mode: 0o755, content: "#!/bin/sh\n"},
		{path: "VFS/Usr/bin/bar", link: "../lib/bar/bar"},
		{path: "VFS/Usr/bin/foo-alias", link: "/usr/bin/foo"},
		{path: "VFS/Usr/bin/README", content: "not a program\n"},
		{path: "VFS/Usr/bin/python3", link: "/usr/bin/python3.13"}, // to the host: not the package's
		{path: "VFS/Usr/lib/bar/bar", mode: 0o755, content: "#!/bin/sh\n"},
		{path: "VFS/Usr/share/applications/foo.desktop", from: "desktop/foo.desktop"},
		{path: "VFS/Usr/share/applications/bar.desktop", from: "desktop/bar.desktop"},
		{path: "VFS/Usr/share/applications/host.desktop", from: "desktop/host.desktop"},
		{path: "VFS/Usr/share/applications/hidden.desktop", from: "desktop/hidden.desktop"},
		{path: "VFS/Usr/share/applications/link.desktop", from: "desktop/link.desktop"},
		{path: "VFS/Usr/share/applications/broken.desktop", from: "desktop/broken.desktop.invalid"},
		{path: "VFS/Usr/share/icons/hicolor/48x48/apps/foo.png", content: "png48"},
		{path: "VFS/Usr/share/icons/hicolor/scalable/apps/foo.svg", content: "<svg/>"},
		{path: "VFS/Usr/share/icons/hicolor/16x16/apps/foo.xpm", content: "xpm"},
		{path: "VFS/Usr/share/icons/hicolor/48x48/mimetypes/application-x-foo.png", content: "png"},
		{path: "VFS/Usr/share/icons/hicolor/index.theme", content: "[Icon Theme]\n"},
		{path: "VFS/Usr/share/pixmaps/bar.png", content: "png"},
		{path: "VFS/Usr/share/pixmaps/foo-safe.png", content: "png"},
		{path: "VFS/Usr/share/mime/packages/foo.xml", from: "mime/foo.xml"},
		{path: "VFS/XdgDataHome/applications/kde/baz.desktop", from: "desktop/baz.desktop"},
		{path: "VFS/LocalBin/baz", mode: 0o755, content: "#!/bin/sh\n"},
	})
	return &Staged{Dir: dir, PackageRoot: "/opt/foo"}
}

func TestDetectExtensionsGolden(t *testing.T) {
	st := fooTree(t)
	m := newTestManifest(t)
	r := &Report{}
	pub, err := detect(st, m, r, filepath.Join(fixtures, "hostmime"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var rep bytes.Buffer
	for _, msg := range r.Messages {
		rep.WriteString(string(msg.Severity) + " " + msg.Category + " " + msg.Path + ": " + msg.Text + "\n")
	}
	rep.WriteString("publishing:\n")
	for _, p := range pub {
		rep.WriteString("  " + p + "\n")
	}
	checkGolden(t, "foo.manifest.xml", got)
	checkGolden(t, "foo.report.txt", rep.Bytes())

	// A second run over the same tree gives the same bytes.
	m2 := newTestManifest(t)
	if _, err := detect(st, m2, &Report{}, filepath.Join(fixtures, "hostmime")); err != nil {
		t.Fatal(err)
	}
	again, _ := m2.Marshal()
	if !bytes.Equal(got, again) {
		t.Error("two runs over the same tree gave different manifests")
	}
	// appvpkg parses it back, and keeps the appvlinux content through
	// later edits.
	pm, err := appvpkg.ParseManifest(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := pm.AddApplication(appvpkg.Application{ID: "[{Usr}]/bin/later"}); err != nil {
		t.Fatal(err)
	}
	edited, _ := pm.Marshal()
	for _, want := range []string{`<appvlinux:DesktopEntry Id="foo.desktop">`, `<appvlinux:MimeTypes>`, `IgnorableNamespaces="appv appv1.1 appv1.2 appvlinux"`} {
		if !bytes.Contains(edited, []byte(want)) {
			t.Errorf("no %s after an edit", want)
		}
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join(fixtures, "golden", name), got, *update, "-update")
}

func TestDetectExtensionsView(t *testing.T) {
	st := fooTree(t)
	m := newTestManifest(t)
	r := &Report{}
	pub, err := detect(st, m, r, filepath.Join(fixtures, "hostmime"))
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]appvpkg.Application{}
	for _, a := range m.Applications() {
		apps[a.ID] = a
	}
	t.Run("applications", func(t *testing.T) {
		for id, name := range map[string]string{
			"[{Usr}]/bin/foo":                  "Foo Editor",
			"[{Usr}]/bin/bar":                  "Bar Tool",
			"[{LocalBin}]/baz":                 "Baz",
			"[{AppVPackageRoot}]/bin/foo-safe": "Foo Tool",
		} {
			a, ok := apps[id]
			if !ok {
				t.Errorf("no application %s; have %v", id, m.Applications())
				continue
			}
			if a.DisplayName != name || a.Target != id || a.TargetInPackage == nil || !*a.TargetInPackage {
				t.Errorf("application %s = %+v", id, a)
			}
		}
		if len(apps) != 4 {
			t.Errorf("%d applications, want 4 (foo-alias runs foo; python3 is the host's): %v", len(apps), m.Applications())
		}
		if a := apps["[{Usr}]/bin/foo"]; a.Icon != "[{Usr}]/share/icons/hicolor/scalable/apps/foo.svg" || a.Description != "Edit foo documents" {
			t.Errorf("foo = %+v", a)
		}
		if a := apps["[{Usr}]/bin/bar"]; a.Icon != "[{Usr}]/share/pixmaps/bar.png" || a.Description != "Line one\nLine two" {
			t.Errorf("bar = %+v", a)
		}
	})

	var shortcuts []*appvpkg.Shortcut
	ftas := map[string]*appvpkg.FileTypeAssociation{}
	var progOnly []*appvpkg.ProgID
	urls := map[string]*appvpkg.URLProtocol{}
	paths := map[string]*appvpkg.AppPath{}
	for _, x := range m.Extensions() {
		switch {
		case x.Shortcut != nil:
			shortcuts = append(shortcuts, x.Shortcut)
		case x.FileTypeAssociation != nil && x.FileTypeAssociation.FileExtension != nil:
			ftas[x.FileTypeAssociation.FileExtension.Name] = x.FileTypeAssociation
		case x.FileTypeAssociation != nil:
			progOnly = append(progOnly, x.FileTypeAssociation.ProgID)
		case x.URLProtocol != nil:
			urls[x.URLProtocol.Name] = x.URLProtocol
		case x.AppPath != nil:
			paths[x.AppPath.Name] = x.AppPath
		}
	}
	t.Run("shortcuts", func(t *testing.T) {
		want := []appvpkg.Shortcut{
			{File: "[{AppVPackageRoot}]/share/applications/foo-tool.desktop", Target: "[{AppVPackageRoot}]/bin/foo-safe",
				Arguments: "--tool", WorkingDirectory: "[{AppVPackageRoot}]/share", ApplicationID: "[{AppVPackageRoot}]/bin/foo-safe"},
			{File: "[{Usr}]/share/applications/foo.desktop", Target: "[{Usr}]/bin/foo",
				Icon: "[{Usr}]/share/icons/hicolor/scalable/apps/foo.svg", Arguments: `--class "Foo Editor" %F`,
				Description: "Edit foo documents", ApplicationID: "[{Usr}]/bin/foo"},
			{File: "[{XdgDataHome}]/applications/kde/baz.desktop", Target: "[{LocalBin}]/baz",
				Icon: "baz-missing", Arguments: "%U", ApplicationID: "[{LocalBin}]/baz"},
		}
		if len(shortcuts) != len(want) {
			t.Fatalf("shortcuts %+v, want %d (bar is NoDisplay; by desktop file ID)", shortcuts, len(want))
		}
		for i := range want {
			if *shortcuts[i] != want[i] {
				t.Errorf("shortcut %d = %+v\nwant %+v", i, *shortcuts[i], want[i])
			}
		}
	})
	t.Run("file type associations", func(t *testing.T) {
		foo := ftas[".foo"]
		if foo == nil || foo.ProgID == nil || foo.ProgID.Name != "foo.desktop.application/x-foo" ||
			foo.FileExtension.ContentType != "application/x-foo" || !foo.FileExtension.MimeAssociation ||
			foo.ProgID.Description != "Foo document" ||
			foo.ProgID.DefaultIcon != "[{Usr}]/share/icons/hicolor/48x48/mimetypes/application-x-foo.png" {
			t.Fatalf(".foo = %+v %+v", foo.FileExtension, foo.ProgID)
		}
		cmd := foo.ProgID.ShellCommands
		if cmd.DefaultCommand != "Open" || len(cmd.Commands) != 1 ||
			cmd.Commands[0] != (appvpkg.ShellCommand{ApplicationID: "[{Usr}]/bin/foo", Name: "Open", CommandLine: `[{Usr}]/bin/foo --class "Foo Editor" %F`}) {
			t.Errorf(".foo verbs = %+v", cmd)
		}
		// The second extension of the type refers to the same ProgId.
		if z := ftas[".fooz"]; z == nil || z.ProgID != nil || z.FileExtension.ProgID != foo.ProgID.Name {
			t.Errorf(".fooz = %+v", z)
		}
		// text/plain from the host's database; "*,v" is no extension.
		for _, ext := range []string{".txt", ".asc"} {
			if f := ftas[ext]; f == nil || f.FileExtension.ContentType != "text/plain" || f.FileExtension.PerceivedType != "text" {
				t.Errorf("%s = %+v", ext, f)
			}
		}
		if f := ftas[".png"]; f == nil || f.ProgID.Name != "bar.desktop.image/png" || f.ProgID.ShellCommands.Commands[0].CommandLine != `[{Usr}]/bin/bar "--title=Bar \"quoted\" \$HOME" %u` {
			t.Errorf(".png = %+v %+v", f.FileExtension, f.ProgID)
		}
		if len(ftas) != 5 || len(progOnly) != 0 {
			t.Errorf("associations %v, ProgId only %v", slices.Sorted(maps.Keys(ftas)), progOnly)
		}
	})
	t.Run("URL protocols", func(t *testing.T) {
		for scheme, app := range map[string]string{"foo": "[{Usr}]/bin/foo", "bar": "[{Usr}]/bin/bar"} {
			u := urls[scheme]
			if u == nil || u.ShellCommands == nil || u.ShellCommands.Commands[0].ApplicationID != app {
				t.Errorf("URL protocol %s = %+v", scheme, u)
			}
		}
	})
	t.Run("app paths", func(t *testing.T) {
		want := map[string]appvpkg.AppPath{
			"foo":       {Name: "foo", ApplicationPath: "[{Usr}]/bin/foo", ApplicationID: "[{Usr}]/bin/foo"},
			"foo-alias": {Name: "foo-alias", ApplicationPath: "[{Usr}]/bin/foo-alias", ApplicationID: "[{Usr}]/bin/foo"},
			"bar":       {Name: "bar", ApplicationPath: "[{Usr}]/bin/bar", ApplicationID: "[{Usr}]/bin/bar"},
			"baz":       {Name: "baz", ApplicationPath: "[{LocalBin}]/baz", ApplicationID: "[{LocalBin}]/baz"},
			"foo-safe":  {Name: "foo-safe", ApplicationPath: "[{AppVPackageRoot}]/bin/foo-safe", ApplicationID: "[{AppVPackageRoot}]/bin/foo-safe"},
		}
		if len(paths) != len(want) {
			t.Errorf("app paths %v", slices.Sorted(maps.Keys(paths)))
		}
		for n, w := range want {
			if p := paths[n]; p == nil || *p != w {
				t.Errorf("app path %s = %+v, want %+v", n, p, w)
			}
		}
	})
	t.Run("publishing", func(t *testing.T) {
		want := []string{
			"Root/VFS/Usr/share/applications/bar.desktop",
			"Root/VFS/Usr/share/applications/foo.desktop",
			"Root/VFS/Usr/share/icons/hicolor/16x16/apps/foo.xpm",
			"Root/VFS/Usr/share/icons/hicolor/48x48/apps/foo.png",
			"Root/VFS/Usr/share/icons/hicolor/48x48/mimetypes/application-x-foo.png",
			"Root/VFS/Usr/share/icons/hicolor/scalable/apps/foo.svg",
			"Root/VFS/Usr/share/mime/packages/foo.xml",
			"Root/VFS/Usr/share/pixmaps/bar.png",
			"Root/VFS/Usr/share/pixmaps/foo-safe.png",
			"Root/VFS/XdgDataHome/applications/kde/baz.desktop",
			"Root/share/applications/foo-tool.desktop",
		}
		if !slices.Equal(pub, want) {
			t.Errorf("publishing\n%s\nwant\n%s", strings.Join(pub, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("report", func(t *testing.T) {
		for _, w := range []struct {
			sev  Severity
			path string
			text string
		}{
			{Warning, "/usr/share/applications/host.desktop", "python3 is not a program on the package's PATH"},
			{Warning, "/usr/share/applications/broken.desktop", "unterminated double quote"},
			{Warning, "~/.local/share/applications/kde/baz.desktop", `icon "baz-missing" is not in the package`},
			{Info, "/usr/share/applications/hidden.desktop", "Hidden"},
			{Info, "/usr/share/applications/link.desktop", "Type=Link"},
			{Info, "", "MIME type application/x-foo, defined by the package in [{Usr}]/share/mime/packages/foo.xml"},
		} {
			found := slices.ContainsFunc(r.Messages, func(m Message) bool {
				return m.Severity == w.sev && m.Category == "Extension" && m.Path == w.path && strings.Contains(m.Text, w.text)
			})
			if !found {
				t.Errorf("no %s about %s saying %q in\n%v", w.sev, w.path, w.text, r.Messages)
			}
		}
	})
}

// TestDetectExtensionsNothing: a tree without desktop entries or PATH
// directories leaves the manifest as it was.
func TestDetectExtensionsNothing(t *testing.T) {
	st := &Staged{Dir: buildTree(t, []treeFile{{path: "lib/libfoo.so", content: "x"}}), PackageRoot: "/opt/foo"}
	m := newTestManifest(t)
	before, _ := m.Marshal()
	pub, err := DetectExtensions(st, m, nil)
	if err != nil || len(pub) != 0 {
		t.Fatalf("publishing %v, error %v", pub, err)
	}
	after, _ := m.Marshal()
	if !bytes.Equal(before, after) {
		t.Errorf("manifest changed:\n%s", after)
	}
}

// TestDetectExtensionsExistingApplication: an application the manifest
// already lists (a caller added it) is not added twice.
func TestDetectExtensionsExistingApplication(t *testing.T) {
	st := &Staged{Dir: buildTree(t, []treeFile{{path: "VFS/Usr/bin/foo", mode: 0o755, content: "x"}})}
	m := newTestManifest(t)
	if err := m.AddApplication(appvpkg.Application{ID: "[{Usr}]/bin/foo", DisplayName: "Mine"}); err != nil {
		t.Fatal(err)
	}
	if _, err := DetectExtensions(st, m, nil); err != nil {
		t.Fatal(err)
	}
	if apps := m.Applications(); len(apps) != 1 || apps[0].DisplayName != "Mine" {
		t.Errorf("applications %+v", apps)
	}
	if x := m.Extensions(); len(x) != 1 || x[0].AppPath == nil || x[0].AppPath.ApplicationID != "[{Usr}]/bin/foo" {
		t.Errorf("extensions %+v", x)
	}
}

// TestDetectExtensionsSymlinks: symlinks are followed inside the package,
// through directories and the package root, and not outside it; loops end.
func TestDetectExtensionsSymlinks(t *testing.T) {
	st := &Staged{Dir: buildTree(t, []treeFile{
		{path: "bin/real", mode: 0o755, content: "x"},
		{path: "VFS/Usr/lib/foo", link: "/opt/foo"},                // a directory link into the package root
		{path: "VFS/Usr/bin/via-dir", link: "../lib/foo/bin/real"}, // through it
		{path: "VFS/Usr/bin/loop1", link: "loop2"},
		{path: "VFS/Usr/bin/loop2", link: "loop1"},
		{path: "VFS/Usr/bin/outside", link: "/etc/passwd"},
		{path: "VFS/Usr/bin/escape", link: "../../../../../bin/sh"},
	}), PackageRoot: "/opt/foo"}
	d := &detector{st: st, r: &Report{}}
	for _, c := range []struct {
		native string
		want   string // staged path relative to Dir, "" for none
	}{
		{"/usr/bin/via-dir", "bin/real"},
		{"/opt/foo/bin/real", "bin/real"},
		{"/bin/via-dir", "bin/real"}, // merged /usr
		{"/usr/bin/loop1", ""},
		{"/usr/bin/outside", ""},
		{"/usr/bin/escape", ""},
		{"/usr/bin/missing", ""},
		{"/srv/x", ""},
	} {
		got, ok := d.executable(c.native)
		rel := ""
		if ok {
			rel, _ = filepath.Rel(st.Dir, got)
		}
		if rel != c.want {
			t.Errorf("%s resolves to %q, want %q", c.native, rel, c.want)
		}
	}
}

// TestDesktopFixturesValidate checks the fixtures against the reference
// validator, so they are what the specification calls valid.
func TestDesktopFixturesValidate(t *testing.T) {
	tool, err := exec.LookPath("desktop-file-validate")
	if err != nil {
		t.Skip("desktop-file-validate is not installed (package desktop-file-utils)")
	}
	files, _ := filepath.Glob(filepath.Join(fixtures, "desktop", "*.desktop"))
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		out, err := exec.Command(tool, f).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("error:")) {
			t.Errorf("desktop-file-validate %s: %v\n%s", f, err, out)
		}
	}
	// The invalid fixture is invalid for it too.
	if out, err := exec.Command(tool, filepath.Join(fixtures, "desktop", "broken.desktop.invalid")).CombinedOutput(); err == nil {
		t.Errorf("desktop-file-validate accepts broken.desktop.invalid:\n%s", out)
	}
}

// TestDetectExtensionsHostEntries runs the detector over this machine's own
// desktop entries, placed in a package with their programs, and the host's
// MIME database.
func TestDetectExtensionsHostEntries(t *testing.T) {
	entries, _ := filepath.Glob("/usr/share/applications/*.desktop")
	if len(entries) == 0 {
		t.Skip("this machine has no desktop entries in /usr/share/applications")
	}
	var files []treeFile
	want := 0
	for _, e := range entries {
		data, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseDesktop(data)
		if err != nil {
			t.Errorf("%s: %v", e, err)
			continue
		}
		g := f.group("Desktop Entry")
		raw, _ := g.raw("Exec")
		if g.str("Type") != "Application" || g.boolean("Hidden") || raw == "" {
			continue
		}
		args, err := splitExec(unescapeDesktop(raw))
		if err != nil {
			t.Errorf("%s: Exec %q: %v", e, raw, err)
			continue
		}
		prog := args[0]
		if !filepath.IsAbs(prog) {
			prog = "/usr/bin/" + prog
		}
		files = append(files,
			treeFile{path: "VFS/Usr/share/applications/" + filepath.Base(e), content: string(data)},
			treeFile{path: "VFS" + "/Usr" + strings.TrimPrefix(prog, "/usr"), mode: 0o755, content: "#!/bin/sh\n"})
		want++
	}
	st := &Staged{Dir: buildTree(t, files)}
	m := newTestManifest(t)
	r := &Report{}
	pub, err := detect(st, m, r, hostMIMEDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Applications()); got != want {
		t.Errorf("%d applications from %d usable entries: %+v\n%v", got, want, m.Applications(), r.Messages)
	}
	for _, msg := range r.Messages {
		if msg.Severity == Warning && !strings.Contains(msg.Text, "icon") {
			t.Errorf("warning: %+v", msg)
		}
	}
	if len(pub) < want {
		t.Errorf("publishing %v", pub)
	}
	if _, err := os.Stat(filepath.Join(hostMIMEDir, "globs2")); err == nil {
		// vim.desktop, where present, associates text/plain: *.txt is known.
		if _, err := os.Stat("/usr/share/applications/vim.desktop"); err == nil {
			found := slices.ContainsFunc(m.Extensions(), func(x appvpkg.Extension) bool {
				return x.FileTypeAssociation != nil && x.FileTypeAssociation.FileExtension != nil && x.FileTypeAssociation.FileExtension.Name == ".txt"
			})
			if !found {
				t.Error("vim's text/plain gave no .txt association")
			}
		}
	}
}

// TestDetectExtensionsMIMEOnly: MIME types the package defines are kept and
// published even when no desktop entry names them; an unusable MIME file is
// reported.
func TestDetectExtensionsMIMEOnly(t *testing.T) {
	st := &Staged{Dir: buildTree(t, []treeFile{
		{path: "VFS/Usr/share/mime/packages/foo.xml", from: "mime/foo.xml"},
		{path: "VFS/Usr/share/mime/packages/bad.xml", content: `<!DOCTYPE x><mime-info/>`},
		{path: "VFS/Usr/share/mime/packages/other.xml", content: `<other/>`},
	})}
	m := newTestManifest(t)
	r := &Report{}
	pub, err := detect(st, m, r, filepath.Join(fixtures, "hostmime"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pub, []string{"Root/VFS/Usr/share/mime/packages/foo.xml"}) {
		t.Errorf("publishing %v", pub)
	}
	data, _ := m.Marshal()
	if !bytes.Contains(data, []byte(`<appvlinux:MimeType Type="application/x-foo" Source="[{Usr}]/share/mime/packages/foo.xml">`)) {
		t.Errorf("no MIME type in\n%s", data)
	}
	warned := 0
	for _, msg := range r.Messages {
		if msg.Severity == Warning && strings.Contains(msg.Text, "MIME type definitions not used") {
			warned++
		}
	}
	if warned != 2 {
		t.Errorf("%d warnings about the unusable files: %v", warned, r.Messages)
	}
}
