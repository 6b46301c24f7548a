package appvpkg

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func boolPtr(b bool) *bool { return &b }

func TestParseManifestFixtures(t *testing.T) {
	const root = `[{AppVPackageRoot}]\Viewer\SampleViewer.exe`
	tests := []struct {
		file  string
		check func(t *testing.T, v ManifestView)
	}{
		{"manifest_appv5.xml", func(t *testing.T, v ManifestView) {
			wantID := Identity{Name: "Reserved", Publisher: "CN=Reserved", Version: "0.0.0.1",
				PackageID: "3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b", VersionID: "8e2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a"}
			if v.Identity != wantID {
				t.Errorf("identity = %+v, want %+v", v.Identity, wantID)
			}
			wantProps := Properties{DisplayName: "Sample Viewer 9", PublisherDisplayName: "Reserved", Description: "Reserved",
				Logo: "Reserved.jpeg", AppVPackageDescription: "No description entered"}
			if v.Properties != wantProps {
				t.Errorf("properties = %+v, want %+v", v.Properties, wantProps)
			}
			wantApps := []Application{
				{ID: root, Origin: "Application", TargetInPackage: boolPtr(true), Target: root, DisplayName: "Sample Viewer 9",
					Icon:        `[{Windows}]\Installer\{AC76BA86-0000-1033-7B44-A94000000001}\SC_Viewer.ico`,
					Description: "View sample data packages", Version: "9.0.0.2332"},
				{ID: `[{System}]\notepad.exe`, Origin: "User", TargetInPackage: boolPtr(false), Target: `[{System}]\notepad.exe`,
					DisplayName: "Notepad", Version: "6.1.7600.16385"},
			}
			if !reflect.DeepEqual(v.Applications, wantApps) {
				t.Errorf("applications = %+v, want %+v", v.Applications, wantApps)
			}
			var cats []string
			for _, x := range v.Extensions {
				cats = append(cats, x.Category+"@"+x.Application)
			}
			wantCats := []string{CategoryShortcut + "@", CategoryFileTypeAssociation + "@", CategoryURLProtocol + "@",
				CategoryAppPath + "@", CategoryEnvironmentVariables + "@", "AppV.Fonts@", CategoryShortcut + "@" + root}
			if !reflect.DeepEqual(cats, wantCats) {
				t.Errorf("extension categories = %q, want %q", cats, wantCats)
			}
			if len(v.Extensions) != len(wantCats) {
				return
			}
			wantSC := &Shortcut{File: `[{Common Desktop}]\Sample Viewer 9.lnk`, Target: root,
				Icon:        `[{Windows}]\Installer\{AC76BA86-0000-1033-7B44-A94000000001}\SC_Viewer.ico`,
				ShowCommand: 1, ApplicationID: root}
			if !reflect.DeepEqual(v.Extensions[0].Shortcut, wantSC) {
				t.Errorf("shortcut = %+v, want %+v", v.Extensions[0].Shortcut, wantSC)
			}
			fta := v.Extensions[1].FileTypeAssociation
			wantFTA := &FileTypeAssociation{
				FileExtension: &FileExtension{Name: ".sdp", ProgID: "SampleViewer.SDPDoc", ContentType: "application/vnd.example.sdp+xml",
					PerceivedType: "document", MimeAssociation: true},
				ProgID: &ProgID{Name: "SampleViewer.SDPDoc", Description: "Sample Data Package File", EditFlags: "65536",
					DefaultIcon: `[{Windows}]\Installer\{AC76BA86-0000-1033-7B44-A94000000001}\SDPFile_8.ico`,
					ShellCommands: &ShellCommands{DefaultCommand: "Read", Commands: []ShellCommand{
						{ApplicationID: root, Name: "Open", CommandLine: `"` + root + `" "%1"`},
						{ApplicationID: root, Name: "Read", FriendlyName: "Open with Sample Viewer 9", CommandLine: `"` + root + `" "%1"`},
					}}},
			}
			if !reflect.DeepEqual(fta, wantFTA) {
				t.Errorf("file type association = %s, want %s", jsonOf(fta), jsonOf(wantFTA))
			}
			wantURL := &URLProtocol{Name: "sampleview", Description: "URL:Sample Viewer Protocol", EditFlags: "2",
				DefaultIcon: root + ",0", ShellCommands: &ShellCommands{DefaultCommand: "open", Commands: []ShellCommand{
					{ApplicationID: root, Name: "open", CommandLine: `"` + root + `" /url "%1"`}}}}
			if !reflect.DeepEqual(v.Extensions[2].URLProtocol, wantURL) {
				t.Errorf("URL protocol = %s, want %s", jsonOf(v.Extensions[2].URLProtocol), jsonOf(wantURL))
			}
			wantAP := &AppPath{Name: "SampleViewer.exe", ApplicationPath: root, ApplicationID: root,
				PATHEnvironmentVariablePrefix: `[{AppVPackageRoot}]\Viewer\`}
			if !reflect.DeepEqual(v.Extensions[3].AppPath, wantAP) {
				t.Errorf("app path = %+v, want %+v", v.Extensions[3].AppPath, wantAP)
			}
			wantEnv := &EnvironmentVariables{
				Include: []EnvironmentVariable{{"SAMPLEVIEWER_HOME", `[{AppVPackageRoot}]\Viewer`}, {"PATH", `%PATH%;[{AppVPackageRoot}]\Viewer\bin`}},
				Delete:  []string{"SAMPLEVIEWER_DEBUG"},
			}
			if !reflect.DeepEqual(v.Extensions[4].EnvironmentVariables, wantEnv) {
				t.Errorf("environment = %+v, want %+v", v.Extensions[4].EnvironmentVariables, wantEnv)
			}
			if x := v.Extensions[5]; x.Shortcut != nil || x.FileTypeAssociation != nil || x.URLProtocol != nil || x.AppPath != nil || x.EnvironmentVariables != nil {
				t.Errorf("unmodeled category has a typed payload: %+v", x)
			}
			if got := v.Extensions[6].Shortcut; got == nil || got.File != `[{Common Programs}]\Sample Viewer 9.lnk` || got.Description != "Sample Viewer 9" {
				t.Errorf("per-application shortcut = %+v", got)
			}
			wantMachine := []Script{
				{Event: "AddPackage", Path: "ScriptRunner.exe",
					Arguments: `-appvscript netsh.exe advfirewall firewall add rule name="Sample Viewer" dir=out action=allow program="` + root + `" enable=yes`,
					Wait:      &ScriptWait{RollbackOnError: true, Timeout: 30}},
				{Event: "RemovePackage", Path: "ScriptRunner.exe",
					Arguments: `-appvscript netsh.exe advfirewall firewall delete rule name="Sample Viewer"`,
					Wait:      &ScriptWait{}},
			}
			if !reflect.DeepEqual(v.MachineScripts, wantMachine) {
				t.Errorf("machine scripts = %s, want %s", jsonOf(v.MachineScripts), jsonOf(wantMachine))
			}
			wantUser := []Script{{Event: "StartProcess", Path: `[{AppVPackageRoot}]\Viewer\prelaunch.cmd`,
				Wait: &ScriptWait{RollbackOnError: true, Timeout: 10}, ApplicationID: root, RunInVirtualEnvironment: boolPtr(true)}}
			if !reflect.DeepEqual(v.UserScripts, wantUser) {
				t.Errorf("user scripts = %s, want %s", jsonOf(v.UserScripts), jsonOf(wantUser))
			}
		}},
		{"manifest_default_ns.xml", func(t *testing.T, v ManifestView) {
			if v.Identity.PackageID != "1a2ad958-75d0-440b-9e6b-1d5e119713ee" {
				t.Errorf("package id = %q", v.Identity.PackageID)
			}
			if len(v.Applications) != 2 || v.Applications[0].DisplayName != "Writer" || v.Applications[1].Origin != "User" {
				t.Errorf("applications = %+v", v.Applications)
			}
			if len(v.Extensions) != 0 {
				t.Errorf("extensions = %+v, want none", v.Extensions)
			}
		}},
		{"manifest_linux_unknown.xml", func(t *testing.T, v ManifestView) {
			if v.Identity.ProcessorArchitecture != "x64" || v.Identity.Version != "2.4.0.0" {
				t.Errorf("identity = %+v", v.Identity)
			}
			if len(v.Extensions) != 1 || v.Extensions[0].Shortcut == nil || v.Extensions[0].Shortcut.Arguments != "%F" {
				t.Errorf("extensions = %s", jsonOf(v.Extensions))
			}
			if len(v.Applications) != 1 || v.Applications[0].Description != "Edit text files" {
				t.Errorf("applications = %+v", v.Applications)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := ParseManifest(readXMLFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m.View())
		})
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestManifestRoundTrip: parse, marshal, parse gives the same view; the
// output is namespace-equivalent to the input (unknown content included,
// whitespace and comments too) and marshalling again changes nothing.
func TestManifestRoundTrip(t *testing.T) {
	for _, name := range xmlFixtures(t, "manifest_") {
		t.Run(name, func(t *testing.T) {
			in := readXMLFixture(t, name)
			m, err := ParseManifest(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canonicalXML(t, out, false), canonicalXML(t, in, false); got != want {
				t.Errorf("output is not namespace-equivalent to input\n got: %s\nwant: %s", got, want)
			}
			m2, err := ParseManifest(out)
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(m.View(), m2.View()) {
				t.Errorf("view changed:\n%s\n%s", jsonOf(m.View()), jsonOf(m2.View()))
			}
			out2, err := m2.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, out2) {
				t.Errorf("second marshal differs:\n%s\n%s", out, out2)
			}
		})
	}
}

func TestManifestKeepsUnknownContent(t *testing.T) {
	m, err := ParseManifest(readXMLFixture(t, "manifest_linux_unknown.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// Edit, then check the unknown content is still there.
	if err := m.AddExtension(Extension{AppPath: &AppPath{Name: "editor", ApplicationPath: `[{AppVPackageRoot}]\bin\editor`}}); err != nil {
		t.Fatal(err)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`fut:Channel="stable"`, `<fut:Summary>A text editor &amp; more</fut:Summary>`, `fut:Terminal="false"`,
		`<fut:Categories>Development;TextEditor;</fut:Categories>`, `<fut:MimeType Type="text/x-example" Glob="*.exa"/>`,
		`fut:Sandbox="none"`, `fut2:Scale="1"`, `raw &lt;data&gt;`, `xmlns:fut="urn:example:appv-future"`,
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lost %s:\n%s", want, out)
		}
	}
	if got := m.Extensions(); len(got) != 2 || got[1].AppPath == nil || got[1].AppPath.Name != "editor" {
		t.Errorf("extensions after edit = %s", jsonOf(got))
	}
}

func TestManifestErrors(t *testing.T) {
	const head = `<Package xmlns="http://schemas.microsoft.com/appx/2010/manifest" xmlns:appv="http://schemas.microsoft.com/appv/2010/manifest">`
	const ident = `<Identity Name="n" Publisher="CN=p" Version="1.0.0.0" appv:PackageId="3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b" appv:VersionId="8e2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a"/>`
	withExt := func(ext string) string {
		return head + ident + `<appv:Extensions><appv:Extension Category="` + ext + `</appv:Extension></appv:Extensions></Package>`
	}
	tests := []struct {
		name, xml, rule string
	}{
		{"not XML", `<Package`, "not well-formed"},
		{"DOCTYPE", `<!DOCTYPE Package [<!ENTITY a "b">]><Package/>`, "DOCTYPE"},
		{"stray end tag", `</A>0</A>0<A>0<A>0`, "end tag </A> without a start tag"},
		{"empty namespace name", strings.Replace(head, `<Package `, `<Package xmlns:e="" `, 1) + `</Package>`, "empty namespace name"},
		{"reserved prefix", strings.Replace(head, `<Package `, `<Package xmlns:xml="urn:x" `, 1) + `</Package>`, "reserved prefix"},
		{"bad attribute name", strings.Replace(head, `<Package `, `<Package a:="1" `, 1) + `</Package>`, "not a qualified name"},
		{"unbound prefix", head + `<x:Identity/></Package>`, "unbound namespace prefix"},
		{"wrong root", `<Manifest xmlns="http://schemas.microsoft.com/appx/2010/manifest"/>`, "not <Package>"},
		{"MSIX namespace", `<Package xmlns="http://schemas.microsoft.com/appx/manifest/foundation/windows10"/>`, "not <Package> in namespace"},
		{"no identity", head + `</Package>`, "missing <Identity>"},
		{"two identities", head + ident + ident + `</Package>`, "more than one <Identity>"},
		{"no name", head + strings.Replace(ident, `Name="n"`, ``, 1) + `</Package>`, "Identity has no Name"},
		{"no publisher", head + strings.Replace(ident, `Publisher="CN=p"`, ``, 1) + `</Package>`, "Identity has no Publisher"},
		{"bad version", head + strings.Replace(ident, `1.0.0.0`, `1.0.0`, 1) + `</Package>`, "Version"},
		{"version overflow", head + strings.Replace(ident, `1.0.0.0`, `1.0.0.65536`, 1) + `</Package>`, "Version"},
		{"no package id", head + strings.Replace(ident, `appv:PackageId="3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b"`, ``, 1) + `</Package>`, "no appv:PackageId"},
		{"package id not GUID", head + strings.Replace(ident, `3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b`, `3a1c4b9e`, 1) + `</Package>`, "appv:PackageId \"3a1c4b9e\" is not a GUID"},
		{"package id braces", head + strings.Replace(ident, `3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b`, `{3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b}`, 1) + `</Package>`, "is not a GUID"},
		{"version id not GUID", head + strings.Replace(ident, `8e2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a`, `zz2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a`, 1) + `</Package>`, "appv:VersionId"},
		{"package id in wrong namespace", strings.Replace(head, `appv/2010/manifest"`, `appv/2010/manifest" xmlns:o="urn:other"`, 1) + strings.Replace(ident, `appv:PackageId`, `o:PackageId`, 1) + `</Package>`, "no appv:PackageId"},
		{"two properties", head + ident + `<Properties/><Properties/></Package>`, "more than one <Properties>"},
		{"FullVFSWriteMode", head + ident + `<Properties><appv:FullVFSWriteMode>yes</appv:FullVFSWriteMode></Properties></Package>`, "FullVFSWriteMode"},
		{"application without Id", head + ident + `<appv:Applications><appv:Application/></appv:Applications></Package>`, "Application without an Id"},
		{"duplicate application", head + ident + `<appv:Applications><appv:Application Id="a"/><appv:Application Id="a"/></appv:Applications></Package>`, `application "a" is listed twice`},
		{"TargetInPackage", head + ident + `<appv:Applications><appv:Application Id="a" TargetInPackage="maybe"/></appv:Applications></Package>`, "TargetInPackage"},
		{"extension without category", head + ident + `<appv:Extensions><appv:Extension/></appv:Extensions></Package>`, "Extension without a Category"},
		{"shortcut without file", withExt(`AppV.Shortcut"><appv:Shortcut><appv:Target>t</appv:Target></appv:Shortcut>`), "Shortcut without a File"},
		{"show command", withExt(`AppV.Shortcut"><appv:Shortcut><appv:File>f</appv:File><appv:ShowCommand>max</appv:ShowCommand></appv:Shortcut>`), "ShowCommand"},
		{"file extension without name", withExt(`AppV.FileTypeAssociation"><appv:FileTypeAssociation><appv:FileExtension/></appv:FileTypeAssociation>`), "FileExtension without a Name"},
		{"MimeAssociation", withExt(`AppV.FileTypeAssociation"><appv:FileTypeAssociation><appv:FileExtension MimeAssociation="y"><appv:Name>.a</appv:Name></appv:FileExtension></appv:FileTypeAssociation>`), "MimeAssociation"},
		{"ProgId without name", withExt(`AppV.FileTypeAssociation"><appv:FileTypeAssociation><appv:ProgId><appv:Description>d</appv:Description></appv:ProgId></appv:FileTypeAssociation>`), "ProgId without a Name"},
		{"URL protocol without name", withExt(`AppV.URLProtocol"><appv:URLProtocol/>`), "URLProtocol without a Name"},
		{"app path without name", withExt(`AppV.AppPath"><appv:AppPath/>`), "AppPath without a Name"},
		{"variable without name", withExt(`AppV.EnvironmentVariables"><appv:EnvironmentVariables><appv:Include><appv:Variable Value="v"/></appv:Include></appv:EnvironmentVariables>`), "Variable without a Name"},
		{"script without path", head + ident + `<appv:MachineScripts><appv:AddPackage/></appv:MachineScripts></Package>`, "AddPackage script without a Path"},
		{"script timeout", head + ident + `<appv:UserScripts><appv:StartProcess><appv:Path>p</appv:Path><appv:Wait Timeout="-1"/></appv:StartProcess></appv:UserScripts></Package>`, "Timeout"},
		{"script rollback", head + ident + `<appv:UserScripts><appv:ExitProcess><appv:Path>p</appv:Path><appv:Wait RollbackOnError="sure"/></appv:ExitProcess></appv:UserScripts></Package>`, "RollbackOnError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.xml))
			wantFormatError(t, err, ManifestPart, tt.rule)
		})
	}
}

func sampleIdentity() Identity {
	return Identity{Name: "org.example.Editor", Publisher: "CN=Example", Version: "2.4.0.0", ProcessorArchitecture: "x64",
		PackageID: "0f3e7c1a-8b2d-4e5f-a6b7-c8d9e0f1a2b3", VersionID: "b4c5d6e7-f8a9-4b0c-9d1e-2f3a4b5c6d7e"}
}

// TestNewManifest builds a manifest with every edit, writes it, reads it
// back and compares the view with what was put in.
func TestNewManifest(t *testing.T) {
	const app = `[{AppVPackageRoot}]\bin\editor`
	m := NewManifest(sampleIdentity())
	props := Properties{DisplayName: "Example Editor", PublisherDisplayName: "Example", Logo: "Reserved.jpeg",
		AppVPackageDescription: "A text editor", FullVFSWriteMode: true}
	if err := m.SetProperties(props); err != nil {
		t.Fatal(err)
	}
	apps := []Application{
		{ID: app, Origin: "Application", TargetInPackage: boolPtr(true), Target: app, DisplayName: "Example Editor",
			Icon: `[{AppVPackageRoot}]\share\icons\editor.png`, Description: "Edit text", Version: "2.4.0"},
		{ID: `[{AppVPackageRoot}]\bin\viewer`},
	}
	for _, a := range apps {
		if err := m.AddApplication(a); err != nil {
			t.Fatal(err)
		}
	}
	shell := &ShellCommands{DefaultCommand: "open", Commands: []ShellCommand{{ApplicationID: app, Name: "open", FriendlyName: "Open", CommandLine: `"` + app + `" "%1"`}}}
	exts := []Extension{
		{Category: CategoryShortcut, Shortcut: &Shortcut{File: `[{XdgDataHome}]\applications\editor.desktop`, Target: app,
			Icon: `[{AppVPackageRoot}]\share\icons\editor.png`, Arguments: "%F", WorkingDirectory: "[{Profile}]",
			AppUserModelID: "org.example.Editor", Description: "Edit", Hotkey: "0", ShowCommand: 3, ApplicationID: app}},
		{Category: CategoryFileTypeAssociation, FileTypeAssociation: &FileTypeAssociation{
			FileExtension: &FileExtension{Name: ".exa", ProgID: "Example.Doc", ContentType: "text/x-example", PerceivedType: "text", MimeAssociation: true},
			ProgID:        &ProgID{Name: "Example.Doc", Description: "Example document", EditFlags: "0", DefaultIcon: "i", FriendlyTypeName: "Example", ShellCommands: shell}}},
		{Category: CategoryURLProtocol, URLProtocol: &URLProtocol{Name: "example", Description: "URL:Example", EditFlags: "2", DefaultIcon: "i", FriendlyTypeName: "f", ShellCommands: shell}},
		{Category: CategoryAppPath, AppPath: &AppPath{Name: "editor", ApplicationPath: app, ApplicationID: app, PATHEnvironmentVariablePrefix: `[{AppVPackageRoot}]\bin\`}},
		{Category: CategoryEnvironmentVariables, EnvironmentVariables: &EnvironmentVariables{
			Include: []EnvironmentVariable{{"EDITOR_HOME", `[{AppVPackageRoot}]`}, {"EMPTY", ""}}, Delete: []string{"EDITOR_DEBUG"}}},
		{Category: CategoryShortcut, Application: app, Shortcut: &Shortcut{File: `[{Desktop}]\editor.desktop`, Target: app}},
		{Category: CategoryURLProtocol, Application: app, URLProtocol: &URLProtocol{Name: "bare"}},
	}
	for _, x := range exts {
		if err := m.AddExtension(x); err != nil {
			t.Fatal(err)
		}
	}
	machine := []Script{{Event: "AddPackage", Path: "/bin/true", Arguments: "--x", Wait: &ScriptWait{RollbackOnError: true, Timeout: 30}}}
	user := []Script{
		{Event: "StartProcess", Path: "prelaunch.sh", ApplicationID: app, RunInVirtualEnvironment: boolPtr(false), Wait: &ScriptWait{}},
		{Event: "PublishPackage", Path: "publish.sh"},
	}
	for _, s := range machine {
		if err := m.AddMachineScript(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range user {
		if err := m.AddUserScript(s); err != nil {
			t.Fatal(err)
		}
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "manifest_new.xml", out)
	m2, err := ParseManifest(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := ManifestView{Identity: sampleIdentity(), Properties: props, Applications: apps, Extensions: exts,
		MachineScripts: machine, UserScripts: user}
	if got := m2.View(); !reflect.DeepEqual(got, want) {
		t.Errorf("view after round trip:\n got %s\nwant %s", jsonOf(got), jsonOf(want))
	}
	if !bytes.Contains(out, []byte(`IgnorableNamespaces="appv appv1.1 appv1.2"`)) {
		t.Errorf("no IgnorableNamespaces:\n%s", out)
	}
	// Changing the identity (a new version) keeps everything else.
	id := sampleIdentity()
	id.VersionID = "c5d6e7f8-a9b0-4c1d-8e2f-3a4b5c6d7e8f"
	id.Version = "2.5.0.0"
	id.ProcessorArchitecture = ""
	if err := m2.SetIdentity(id); err != nil {
		t.Fatal(err)
	}
	if got := m2.Identity(); got != id {
		t.Errorf("identity = %+v, want %+v", got, id)
	}
	if got := m2.Extensions(); !reflect.DeepEqual(got, exts) {
		t.Errorf("extensions changed by SetIdentity")
	}
	// Removing properties.
	if err := m2.SetProperties(Properties{DisplayName: "Editor"}); err != nil {
		t.Fatal(err)
	}
	if got := m2.Properties(); got != (Properties{DisplayName: "Editor"}) {
		t.Errorf("properties = %+v", got)
	}
	if _, err := m2.Marshal(); err != nil {
		t.Fatal(err)
	}
}

// TestManifestEditParsed edits parsed manifests in place: new elements take
// the document's indentation and namespace prefixes.
func TestManifestEditParsed(t *testing.T) {
	tests := []struct {
		file       string
		app        string
		wantPrefix string // the spelling of the new per-application Extensions element
		wantIndent string // indentation of the new extension
	}{
		{"manifest_default_ns.xml", `[{ProgramFilesX86}]\Office Suite\WRITER.EXE`, "\n\t\t\t<Extensions>", "\n\t\t\t\t<Extension Category="},
		{"manifest_appv5.xml", `[{System}]\notepad.exe`, "\n      <appv:Extensions>", "\n        <appv:Extension Category="},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := ParseManifest(readXMLFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			before := m.View()
			x := Extension{Application: tt.app, Shortcut: &Shortcut{File: `[{Desktop}]\x.lnk`, Target: tt.app}}
			if err := m.AddExtension(x); err != nil {
				t.Fatal(err)
			}
			pkgX := Extension{EnvironmentVariables: &EnvironmentVariables{Include: []EnvironmentVariable{{"A", "1"}}}}
			if err := m.AddExtension(pkgX); err != nil {
				t.Fatal(err)
			}
			newApp := Application{ID: `[{AppVPackageRoot}]\new.exe`, DisplayName: "New"}
			if err := m.AddApplication(newApp); err != nil {
				t.Fatal(err)
			}
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte(tt.wantPrefix)) || !bytes.Contains(out, []byte(tt.wantIndent)) {
				t.Errorf("edit not indented as the document:\n%s", out)
			}
			m2, err := ParseManifest(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := m2.View()
			x.Category, pkgX.Category = CategoryShortcut, CategoryEnvironmentVariables
			var wantExts []Extension
			for _, e := range before.Extensions {
				if e.Application == "" {
					wantExts = append(wantExts, e)
				}
			}
			wantExts = append(wantExts, pkgX)
			for _, e := range before.Extensions {
				if e.Application != "" {
					wantExts = append(wantExts, e)
				}
			}
			// Per-application extensions come in application order; the new
			// one belongs to the last application that has any.
			wantExts = append(wantExts, x)
			if !reflect.DeepEqual(got.Extensions, wantExts) {
				t.Errorf("extensions:\n got %s\nwant %s", jsonOf(got.Extensions), jsonOf(wantExts))
			}
			if n := len(got.Applications); n != len(before.Applications)+1 || !reflect.DeepEqual(got.Applications[n-1], newApp) {
				t.Errorf("applications = %s", jsonOf(got.Applications))
			}
		})
	}
}

func TestManifestEditErrors(t *testing.T) {
	newM := func() *Manifest {
		m := NewManifest(sampleIdentity())
		if err := m.AddApplication(Application{ID: "app"}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name string
		edit func(m *Manifest) error
		rule string
	}{
		{"no payload", func(m *Manifest) error { return m.AddExtension(Extension{Category: CategoryShortcut}) }, "exactly one typed extension point, not 0"},
		{"two payloads", func(m *Manifest) error {
			return m.AddExtension(Extension{Shortcut: &Shortcut{File: "f"}, AppPath: &AppPath{Name: "a"}})
		}, "not 2"},
		{"category mismatch", func(m *Manifest) error {
			return m.AddExtension(Extension{Category: CategoryAppPath, Shortcut: &Shortcut{File: "f"}})
		}, "does not match"},
		{"unknown application", func(m *Manifest) error {
			return m.AddExtension(Extension{Application: "nope", Shortcut: &Shortcut{File: "f"}})
		}, `application "nope"`},
		{"invalid shortcut", func(m *Manifest) error { return m.AddExtension(Extension{Shortcut: &Shortcut{Target: "t"}}) }, "Shortcut without a File"},
		{"empty FTA", func(m *Manifest) error {
			return m.AddExtension(Extension{FileTypeAssociation: &FileTypeAssociation{}})
		}, "neither FileExtension nor ProgId"},
		{"control character", func(m *Manifest) error { return m.AddExtension(Extension{AppPath: &AppPath{Name: "a\x01"}}) }, "not valid XML text"},
		{"duplicate application", func(m *Manifest) error { return m.AddApplication(Application{ID: "app"}) }, "listed twice"},
		{"application without id", func(m *Manifest) error { return m.AddApplication(Application{}) }, "without an Id"},
		{"bad identity", func(m *Manifest) error {
			id := sampleIdentity()
			id.PackageID = "x"
			return m.SetIdentity(id)
		}, "not a GUID"},
		{"bad script event", func(m *Manifest) error { return m.AddMachineScript(Script{Event: "Boot", Path: "p"}) }, "script event"},
		{"script without path", func(m *Manifest) error { return m.AddUserScript(Script{Event: "StartProcess"}) }, "without a Path"},
		{"bad property", func(m *Manifest) error { return m.SetProperties(Properties{DisplayName: "\uFFFF"}) }, "not valid XML text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newM()
			before, _ := m.Marshal()
			wantFormatError(t, tt.edit(m), ManifestPart, tt.rule)
			if after, _ := m.Marshal(); !bytes.Equal(before, after) {
				t.Errorf("failed edit changed the manifest")
			}
		})
	}
}

func TestNewManifestInvalidIdentity(t *testing.T) {
	m := NewManifest(Identity{Name: "x"})
	_, err := m.Marshal()
	wantFormatError(t, err, ManifestPart, "Identity has no Publisher")
	var zero Manifest
	_, err = zero.Marshal()
	wantFormatError(t, err, ManifestPart, "no manifest")
	if v := zero.View(); v.Identity != (Identity{}) {
		t.Errorf("zero manifest view = %+v", v)
	}
}

func TestManifestViewJSON(t *testing.T) {
	m, err := ParseManifest(readXMLFixture(t, "manifest_appv5.xml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m.View())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"packageId":"3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b"`, `"category":"AppV.Shortcut"`,
		`"fileTypeAssociation":{"fileExtension":{"name":".sdp"`, `"machineScripts":[{"event":"AddPackage"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var back ManifestView
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m.View()) {
		t.Errorf("JSON round trip changed the view")
	}
}
