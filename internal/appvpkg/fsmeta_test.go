package appvpkg

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFSMetadataFixtures(t *testing.T) {
	t.Run("windows", func(t *testing.T) {
		m, err := ParseFSMetadata(readXMLFixture(t, "fsmeta_windows.xml"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Root != `C:\Program Files\Sample Viewer` || m.RootShort != `C:\PROGRA~1\SAMPLE~1` {
			t.Errorf("root = %q %q", m.Root, m.RootShort)
		}
		var names []string
		for _, n := range m.Names {
			names = append(names, n.Path+"="+n.Short)
		}
		want := []string{
			"Root=", "Root/VFS=VFS", "Root/VFS/AppData=AppData", "Root/VFS/AppData/Sample Viewer=SAMPLE~1",
			"Root/VFS/Common AppData=COMMON~1", "Root/VFS/Common AppData/Sample Viewer=SAMPLE~1",
			"Root/Viewer=Viewer", "Root/Viewer/Sample Viewer Help.chm=SAMPLE~2.CHM", "Root/Viewer/SampleViewer.exe=SAMPLE~1.EXE",
		}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("names =\n%q\nwant\n%q", names, want)
		}
		if want := []FSName{{Path: "Root/VFS/Common AppData/Sample Viewer", Short: `Root\VFS\COMMON~1\SAMPLE~1`}}; !reflect.DeepEqual(m.EmptyDirs, want) {
			t.Errorf("empty dirs = %+v", m.EmptyDirs)
		}
		if want := []FSName{{Path: "Root/VFS/AppData/Sample Viewer", Short: `Root\VFS\AppData\SAMPLE~1`}}; !reflect.DeepEqual(m.OpaqueDirs, want) {
			t.Errorf("opaque dirs = %+v", m.OpaqueDirs)
		}
		if len(m.Entries) != 0 || len(m.Deleted) != 0 {
			t.Errorf("Linux entries in a Windows package: %+v %v", m.Entries, m.Deleted)
		}
	})
	t.Run("linux", func(t *testing.T) {
		m, err := ParseFSMetadata(readXMLFixture(t, "fsmeta_linux.xml"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Root != "/opt/example-editor" {
			t.Errorf("root = %q", m.Root)
		}
		want := []FSEntry{
			{Path: "Root", Type: FSDir, Mode: 0o755, MTime: 1767225600000000000},
			{Path: "Root/VFS/XdgConfigHome/editor/editor.conf", Type: FSFile, Mode: 0o600, MTime: 1767225600000000000},
			{Path: "Root/bin", Type: FSDir, Mode: 0o755, MTime: 1767225600000000000},
			{Path: "Root/bin/ed", Type: FSSymlink, Mode: 0o777, Target: "editor"},
			{Path: "Root/bin/editor", Type: FSFile, Mode: 0o755, MTime: 1767225600123456789},
			{Path: "Root/bin/helper", Type: FSFile, Mode: 0o4755, MTime: 1767225600000000000},
			{Path: "Root/lib/libedit.so", Type: FSSymlink, Mode: 0o777, Target: "libedit.so.1"},
			{Path: "Root/lib/libedit.so.1", Type: FSFile, Mode: 0o644, MTime: 1767225600000000000},
			{Path: "Root/var/cache", Type: FSDir, Mode: 0o1777},
		}
		if !reflect.DeepEqual(m.Entries, want) {
			t.Errorf("entries =\n%+v\nwant\n%+v", m.Entries, want)
		}
		if want := []string{"Root/VFS/XdgConfigHome/editor/legacy.conf"}; !reflect.DeepEqual(m.Deleted, want) {
			t.Errorf("deleted = %q", m.Deleted)
		}
		e, ok := m.Entry("Root/bin/helper")
		if !ok || e.FileMode() != 0o755|fs.ModeSetuid {
			t.Errorf("Entry(helper) = %+v %v, mode %v", e, ok, e.FileMode())
		}
		if e, _ := m.Entry("Root/var/cache"); e.FileMode() != 0o777|fs.ModeSticky|fs.ModeDir {
			t.Errorf("cache mode = %v", e.FileMode())
		}
		if e, _ := m.Entry("Root/bin/ed"); e.FileMode()&fs.ModeSymlink == 0 || !e.SymlinkStaysInside("/opt/example-editor") {
			t.Errorf("ed = %+v", e)
		}
		if _, ok := m.Entry("Root/bin/missing"); ok {
			t.Errorf("Entry found a missing path")
		}
		if e, _ := m.Entry("Root/bin/ed"); !e.ModTime().IsZero() {
			t.Errorf("ModTime of an entry without MTime = %v", e.ModTime())
		}
		if got := (FSEntry{}).ModTime(); !got.IsZero() {
			t.Errorf("ModTime of an entry without MTime = %v", got)
		}
		if e, _ := m.Entry("Root/bin/editor"); !e.ModTime().Equal(time.Unix(1767225600, 123456789)) {
			t.Errorf("ModTime = %v", e.ModTime())
		}
	})
}

func TestFSMetadataRoundTrip(t *testing.T) {
	for _, name := range xmlFixtures(t, "fsmeta_") {
		t.Run(name, func(t *testing.T) {
			in := readXMLFixture(t, name)
			m, err := ParseFSMetadata(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name, out)
			m2, err := ParseFSMetadata(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !reflect.DeepEqual(m, m2) {
				t.Errorf("model changed:\n%+v\n%+v", m, m2)
			}
			out2, err := m2.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, out2) {
				t.Errorf("second marshal differs")
			}
		})
	}
}

func TestFSMetadataKeepsUnknown(t *testing.T) {
	in := `<Metadata xmlns="http://schemas.microsoft.com/appv/2010/FilesystemMetadata" xmlns:u="urn:unknown" u:a="1">
  <Filesystem Root="/opt/x" u:b="2"><Entry Long="Root" u:c="3"><u:Extra/><Entry Long="f"/></Entry><u:InFS/></Filesystem>
  <EmptyDirectories u:d="4"><Entry Long="Root\e" u:e="5"/><u:InEmpty/></EmptyDirectories>
  <u:Top x="y">text</u:Top>
  <l:Linux xmlns:l="http://appv.dev/schemas/2026/linux-filesystem" u:f="6">
    <l:Entry Path="Root/f" Type="file" Mode="0644" u:g="7"><u:InEntry/></l:Entry>
    <l:Deleted Path="Root/gone" u:h="8"/>
    <l:Future Path="Root/f"/>
  </l:Linux>
</Metadata>`
	m, err := ParseFSMetadata([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Deleted) != 0 {
		t.Errorf("a Deleted element with unknown attributes was taken as a deletion: %q", m.Deleted)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`u:a="1"`, `u:b="2"`, `u:c="3"`, `u:d="4"`, `u:e="5"`, `u:f="6"`, `u:g="7"`, `u:h="8"`,
		`<u:Extra`, `<u:InFS`, `<u:InEmpty`, `text</u:Top>`, `<u:InEntry`, `:Future `} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("output lost %s:\n%s", s, out)
		}
	}
	m2, err := ParseFSMetadata(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Errorf("model changed:\n%+v\n%+v", m, m2)
	}
}

func TestSymlinkStaysInside(t *testing.T) {
	const root = "/opt/foo"
	tests := []struct {
		path, target, root string
		want               bool
	}{
		{"Root/lib/libx.so", "libx.so.1", root, true},
		{"Root/lib/libx.so", "../bin/x", root, true},
		{"Root/lib/libx.so", "./libx.so.1", root, true},
		{"Root/bin/x", "..", root, true}, // the package root itself
		{"Root/bin/x", "../..", root, false},
		{"Root/bin/x", "../../etc/passwd", root, false},
		{"Root/a/b/c", "../../../../x", root, false},
		{"Root/x", "VFS/XdgConfigHome/y", root, true},
		{"Root/VFS/XdgConfigHome/app/x", "y", "/home/u/.config", true},
		{"Root/VFS/XdgConfigHome/app/x", "../other/y", "/home/u/.config", true},
		{"Root/VFS/XdgConfigHome/app/x", "../../../../bin/app", "/home/u/.config", false}, // leaves ~/.config
		{"Root/VFS/XdgConfigHome/app/x", "../../../bin/app", "/home/u/.config", false},    // Root/bin is another subtree
		{"Root/VFS/XdgConfigHome", "elsewhere", "/home/u/.config", false},
		{"Root/bin/x", "/opt/foo/lib/x", root, true},
		{"Root/bin/x", "/opt/foo", root, true},
		{"Root/bin/x", "/opt/foo/../bar", root, false},
		{"Root/bin/x", "/opt/foobar/x", root, false},
		{"Root/bin/x", "/etc/passwd", root, false},
		{"Root/bin/x", "/opt/foo/x", "", false},
		{"Root/bin/x", "/opt/foo/x", "relative/root", false},
		{"Root/VFS/Usr/bin/x", "/usr/lib/x", "/usr", true},
		{"Root/bin/x", "", root, false},
		{"Root/bin/x", "a\x00b", root, false},
	}
	for _, tt := range tests {
		t.Run(tt.path+"->"+tt.target, func(t *testing.T) {
			e := FSEntry{Path: tt.path, Type: FSSymlink, Target: tt.target}
			if got := e.SymlinkStaysInside(tt.root); got != tt.want {
				t.Errorf("SymlinkStaysInside(%q) = %v, want %v", tt.root, got, tt.want)
			}
		})
	}
	if (FSEntry{Path: "Root/x", Type: FSFile}).SymlinkStaysInside(root) {
		t.Errorf("a file is not a symlink that stays inside")
	}
}

func TestFSSubtree(t *testing.T) {
	for p, want := range map[string]string{
		"Root": "Root", "Root/bin/x": "Root", "Root/VFS": "Root", "Root/VFS/": "Root",
		"Root/VFS/Usr": "Root/VFS/Usr", "Root/VFS/Usr/lib/x": "Root/VFS/Usr",
	} {
		if got := FSSubtree(p); got != want {
			t.Errorf("FSSubtree(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestFSMetadataBuild(t *testing.T) {
	m := &FSMetadata{Root: "/opt/editor"}
	add := []FSEntry{
		{Path: "Root/bin/editor", Type: FSFile, Mode: 0o755, MTime: 42},
		{Path: "Root/bin", Type: FSDir, Mode: 0o755},
		{Path: "Root/lib/libx.so", Type: FSSymlink, Mode: 0o777, Target: "libx.so.1"},
		{Path: "Root/bin/editor", Type: FSFile, Mode: 0o4755, MTime: 43}, // replaces
	}
	for _, e := range add {
		if err := m.AddEntry(e); err != nil {
			t.Fatal(err)
		}
	}
	m.EmptyDirs = []FSName{{Path: "Root/var/empty"}}
	m.OpaqueDirs = []FSName{{Path: "Root/VFS/XdgConfigHome/editor"}}
	m.Deleted = []string{"Root/VFS/Etc/editor.conf"}
	m.Names = []FSName{{Path: "Root", Short: "Root"}, {Path: "Root/bin", Short: "bin"}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "fsmeta_new.xml", out)
	back, err := ParseFSMetadata(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, m)
	}
	if e, _ := back.Entry("Root/bin/editor"); e.Mode != 0o4755 || e.MTime != 43 {
		t.Errorf("replaced entry = %+v", e)
	}
	if err := m.AddEntry(FSEntry{Path: "etc/x", Type: FSFile}); err == nil {
		t.Errorf("AddEntry accepted a path outside Root")
	}
	// Many entries: append, then Normalize sorts them.
	m.Entries = append(m.Entries, FSEntry{Path: "Root/a", Type: FSFile}, FSEntry{Path: "Root/VFS", Type: FSDir})
	m.Deleted = append(m.Deleted, "Root/VFS/Etc/a")
	if err := m.Normalize(); err != nil {
		t.Fatal(err)
	}
	if m.Entries[0].Path != "Root/VFS" || m.Entries[1].Path != "Root/a" || m.Deleted[0] != "Root/VFS/Etc/a" {
		t.Errorf("not sorted: %+v %q", m.Entries, m.Deleted)
	}
	if _, ok := m.Entry("Root/a"); !ok {
		t.Errorf("Entry after Normalize failed")
	}
	m.Entries = append(m.Entries, FSEntry{Path: "Root/a", Type: FSDir})
	if err := m.Normalize(); err == nil {
		t.Errorf("Normalize accepted a duplicate")
	}
}

func TestFSModeText(t *testing.T) {
	for mode, want := range map[FSMode]string{0: "0000", 0o644: "0644", 0o4755: "4755", 0o7777: "7777"} {
		if got := mode.String(); got != want {
			t.Errorf("%o.String() = %q, want %q", uint32(mode), got, want)
		}
		b, _ := json.Marshal(mode)
		var back FSMode
		if err := json.Unmarshal(b, &back); err != nil || back != mode {
			t.Errorf("JSON %s -> %o, %v", b, uint32(back), err)
		}
		if FSModeOf(mode.FileMode()) != mode {
			t.Errorf("FSModeOf(FileMode(%o)) = %o", uint32(mode), uint32(FSModeOf(mode.FileMode())))
		}
	}
	var m FSMode
	if err := m.UnmarshalText([]byte("10000")); err == nil {
		t.Errorf("mode 010000 accepted")
	}
	if err := m.UnmarshalText([]byte("0o755")); err == nil {
		t.Errorf("mode 0o755 accepted")
	}
}

func TestFSMetadataErrors(t *testing.T) {
	const head = `<Metadata xmlns="http://schemas.microsoft.com/appv/2010/FilesystemMetadata">`
	linux := func(inner string) string {
		return head + `<l:Linux xmlns:l="http://appv.dev/schemas/2026/linux-filesystem">` + inner + `</l:Linux></Metadata>`
	}
	tests := []struct {
		name, xml, rule string
	}{
		{"not XML", `<Metadata`, "not well-formed"},
		{"wrong root", `<Meta xmlns="http://schemas.microsoft.com/appv/2010/FilesystemMetadata"/>`, "not <Metadata>"},
		{"two filesystems", head + `<Filesystem/><Filesystem/></Metadata>`, "more than one <Filesystem>"},
		{"two linux", head + `<l:Linux xmlns:l="http://appv.dev/schemas/2026/linux-filesystem"/><Linux xmlns="http://appv.dev/schemas/2026/linux-filesystem"/></Metadata>`, "more than one <Linux>"},
		{"entry without Long", head + `<Filesystem><Entry Short="x"/></Filesystem></Metadata>`, "without a Long name"},
		{"Long with separator", head + `<Filesystem><Entry Long="Root"><Entry Long="a\b"/></Entry></Filesystem></Metadata>`, "not one path element"},
		{"Long dot-dot", head + `<Filesystem><Entry Long="Root"><Entry Long=".."/></Entry></Filesystem></Metadata>`, "not one path element"},
		{"duplicate name", head + `<Filesystem><Entry Long="Root"><Entry Long="a"/><Entry Long="a"/></Entry></Filesystem></Metadata>`, `"Root/a" is listed twice`},
		{"empty dir slash", head + `<EmptyDirectories><Entry Long="Root/a"/></EmptyDirectories></Metadata>`, `contains "/"`},
		{"empty dir escape", head + `<EmptyDirectories><Entry Long="Root\..\..\etc"/></EmptyDirectories></Metadata>`, "not a valid package path"},
		{"opaque without Long", head + `<OpaqueDirectories><Entry/></OpaqueDirectories></Metadata>`, "without a Long path"},
		{"entry without path", linux(`<l:Entry Type="file"/>`), "without a Path"},
		{"entry without type", linux(`<l:Entry Path="Root/a"/>`), "without a Type"},
		{"bad type", linux(`<l:Entry Path="Root/a" Type="fifo"/>`), `type "fifo"`},
		{"bad mode", linux(`<l:Entry Path="Root/a" Type="file" Mode="rwx"/>`), `mode "rwx"`},
		{"mode too big", linux(`<l:Entry Path="Root/a" Type="file" Mode="17777"/>`), "mode"},
		{"bad mtime", linux(`<l:Entry Path="Root/a" Type="file" MTime="yesterday"/>`), "MTime"},
		{"symlink without target", linux(`<l:Entry Path="Root/a" Type="symlink"/>`), "has no target"},
		{"file with target", linux(`<l:Entry Path="Root/a" Type="file" Target="b"/>`), "has a symlink target"},
		{"absolute path", linux(`<l:Entry Path="/etc/passwd" Type="file"/>`), "not a valid package path"},
		{"dot-dot path", linux(`<l:Entry Path="Root/../x" Type="file"/>`), "not a valid package path"},
		{"outside Root", linux(`<l:Entry Path="AppxManifest.xml" Type="file"/>`), "not under Root/"},
		{"duplicate entry", linux(`<l:Entry Path="Root/a" Type="file"/><l:Entry Path="Root/a" Type="dir"/>`), "listed twice"},
		{"entry under symlink", linux(`<l:Entry Path="Root/a" Type="symlink" Target="/etc"/><l:Entry Path="Root/a/passwd" Type="file"/>`), `inside symlink "Root/a"`},
		{"entry under file", linux(`<l:Entry Path="Root/a" Type="file"/><l:Entry Path="Root/a/b/c" Type="file"/>`), `inside file "Root/a"`},
		{"deleted without path", linux(`<l:Deleted/>`), "Deleted without a Path"},
		{"deleted outside Root", linux(`<l:Deleted Path="x"/>`), "not under Root/"},
		{"deleted twice", linux(`<l:Deleted Path="Root/x"/><l:Deleted Path="Root/x"/>`), "listed twice"},
		{"deleted and entry", linux(`<l:Entry Path="Root/x" Type="file"/><l:Deleted Path="Root/x"/>`), "both an entry and deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFSMetadata([]byte(tt.xml))
			if tt.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantFormatError(t, err, FSMetadataPart, tt.rule)
		})
	}
	// Unsafe paths are also reported as such.
	_, err := ParseFSMetadata([]byte(linux(`<l:Entry Path="Root/../../x" Type="file"/>`)))
	if !errors.Is(err, ErrUnsafePath) {
		t.Errorf("error %v does not wrap ErrUnsafePath", err)
	}
	// Marshal checks the model too.
	bad := &FSMetadata{Names: []FSName{{Path: "Root/orphan"}}}
	_, err = bad.Marshal()
	wantFormatError(t, err, FSMetadataPart, "no entry for its directory")
	bad = &FSMetadata{Root: "a\x00"}
	_, err = bad.Marshal()
	wantFormatError(t, err, FSMetadataPart, "not valid XML text")
	if !strings.Contains((&FSMetadata{Entries: []FSEntry{{Path: "Root/a", Type: "x"}}}).Validate().Error(), `type "x"`) {
		t.Errorf("Validate does not check types")
	}
}
