package dynconfig

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/appv/appv/internal/golden"

	"github.com/appv/appv/internal/appvpkg"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// manifests returns the manifest fixtures by name: App-V 5-style ones
// (appvpkg's hand-written fixtures) and a Linux one written by the
// sequencer (with appvlinux content).
func manifests(t testing.TB) map[string]*appvpkg.Manifest {
	t.Helper()
	files, err := filepath.Glob("testdata/manifests/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifest fixtures: %v", err)
	}
	out := map[string]*appvpkg.Manifest{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := appvpkg.ParseManifest(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".xml")] = m
	}
	return out
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name), got, *update, "-update")
}

// TestGenerate checks the templates against golden files, that they are
// deterministic and that they parse.
func TestGenerate(t *testing.T) {
	for name, m := range manifests(t) {
		t.Run(name, func(t *testing.T) {
			dep, user, err := Generate(m)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+"_DeploymentConfig.xml", dep)
			checkGolden(t, name+"_UserConfig.xml", user)
			dep2, user2, _ := Generate(m)
			if !bytes.Equal(dep, dep2) || !bytes.Equal(user, user2) {
				t.Error("two runs differ")
			}
			d, err := ParseDeployment(dep)
			if err != nil {
				t.Fatalf("the generated deployment configuration does not parse: %v", err)
			}
			u, err := ParseUser(user)
			if err != nil {
				t.Fatalf("the generated user configuration does not parse: %v", err)
			}
			id := m.Identity().PackageID
			if d.PackageID != id || u.PackageID != id {
				t.Errorf("PackageId %s, %s; want %s", d.PackageID, u.PackageID, id)
			}
			if !reflect.DeepEqual(d.User, u.Config) {
				t.Errorf("the deployment's user section and the user file differ:\n%+v\n%+v", d.User, u.Config)
			}
			// Every subsystem is there and enabled; every application listed.
			s := d.User.Subsystems
			for n, sw := range map[string]Switch{
				"Shortcuts": s.Shortcuts.Switch, "FileTypeAssociations": s.FileTypeAssociations.Switch,
				"URLProtocols": s.URLProtocols.Switch, "AppPaths": s.AppPaths.Switch,
				"Objects": s.Objects, "Registry": s.Registry, "FileSystem": s.FileSystem, "Fonts": s.Fonts,
				"EnvironmentVariables": s.EnvironmentVariables.Switch, "Services": s.Services,
			} {
				if !sw.Set || !sw.Enabled {
					t.Errorf("%s = %+v", n, sw)
				}
			}
			if len(d.User.Applications) != len(m.Applications()) {
				t.Errorf("applications %+v", d.User.Applications)
			}
			for _, a := range d.User.Applications {
				if !a.Enabled {
					t.Errorf("application %s is disabled", a.ID)
				}
			}
			if !d.Machine.ProductSourceURLOptOut.Set || !d.Machine.ProductSourceURLOptOut.Enabled {
				t.Errorf("ProductSourceURLOptOut %+v", d.Machine.ProductSourceURLOptOut)
			}
		})
	}
}

// TestGenerateMirrors: applying the templates unchanged changes nothing,
// whichever way they are applied.
func TestGenerateMirrors(t *testing.T) {
	for name, m := range manifests(t) {
		t.Run(name, func(t *testing.T) {
			dep, user, err := Generate(m)
			if err != nil {
				t.Fatal(err)
			}
			d, err := ParseDeployment(dep)
			if err != nil {
				t.Fatal(err)
			}
			u, err := ParseUser(user)
			if err != nil {
				t.Fatal(err)
			}
			want := Merge(m, nil, nil)
			if len(want.Extensions) == 0 && name != "default_ns" {
				t.Fatal("the fixture has no extension points")
			}
			for how, got := range map[string]Effective{
				"deployment":        Merge(m, d, nil),
				"user":              Merge(m, nil, u),
				"deployment + user": Merge(m, d, u),
			} {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %+v\nwant %+v", how, got, want)
				}
			}
		})
	}
}

// TestGenerateKeepsLinuxData: the appvlinux content of the manifest's
// extension points is copied, its namespace declared and ignorable.
func TestGenerateKeepsLinuxData(t *testing.T) {
	m := manifests(t)["linux_sequenced"]
	dep, user, err := Generate(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range [][]byte{dep, user} {
		for _, want := range []string{
			`IgnorableNamespaces="appvlinux"`,
			`xmlns:appvlinux="http://appv.dev/schemas/2026/linux-manifest"`,
			`<appvlinux:DesktopEntry Id="foo.desktop">`,
			`<appvlinux:Key Name="Categories">Utility;TextEditor;</appvlinux:Key>`,
			`<appvlinux:Env Name="BAR_MODE" Value="1"/>`,
		} {
			if !bytes.Contains(doc, []byte(want)) {
				t.Errorf("no %s in\n%s", want, doc)
			}
		}
		if bytes.Contains(doc, []byte("appv:")) {
			t.Errorf("App-V's manifest prefix in a configuration file:\n%s", doc)
		}
	}
}

func TestGenerateUnusable(t *testing.T) {
	if _, _, err := Generate(&appvpkg.Manifest{}); err == nil {
		t.Error("an empty manifest generates")
	}
}

// TestParseMicrosoftStyle reads files written the way Microsoft's
// documentation shows them: COM, ManagingAuthority, Windows tokens, a
// lowercase timeout, the ScriptRunner arguments over several lines.
func TestParseMicrosoftStyle(t *testing.T) {
	data, err := os.ReadFile("testdata/microsoft_DeploymentConfig.xml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDeployment(data)
	if err != nil {
		t.Fatal(err)
	}
	s := d.User.Subsystems
	if !s.Shortcuts.Replace || len(s.Shortcuts.Extensions) != 2 || s.Shortcuts.Extensions[0].Shortcut.Hotkey != "0" {
		t.Errorf("shortcuts %+v", s.Shortcuts)
	}
	if s.Objects.Enabled || !s.Objects.Set || !s.Registry.Enabled || s.Fonts.Enabled {
		t.Errorf("switches %+v %+v %+v", s.Objects, s.Registry, s.Fonts)
	}
	if !s.SoftwareClients.Set || s.SoftwareClients.Replace {
		t.Errorf("software clients %+v", s.SoftwareClients)
	}
	if got := s.EnvironmentVariables; len(got.Include) != 2 || got.Include[0] != (appvpkg.EnvironmentVariable{Name: "UserPath", Value: "%path%;%UserProfile%"}) || len(got.Delete) != 1 {
		t.Errorf("environment %+v", got)
	}
	if a := d.User.Applications; len(a) != 1 || a[0].Enabled {
		t.Errorf("applications %+v", a)
	}
	ms := d.Machine.Scripts
	if len(ms) != 1 || ms[0].Event != "AddPackage" || ms[0].Wait == nil || ms[0].Wait.Timeout != 40 || !ms[0].Wait.RollbackOnError ||
		!strings.Contains(ms[0].Arguments, "-appvscript script2.vbs") {
		t.Errorf("machine scripts %+v", ms)
	}
	if got := d.Machine.TerminateChildProcesses; len(got) != 2 || got[1] != `[{PackageRoot}]\LitView\LitViewBrowser.exe` {
		t.Errorf("TerminateChildProcesses %q", got)
	}
	if x := d.Machine.Subsystems.ApplicationCapabilities; !x.Replace || len(x.Extensions) != 1 || x.Extensions[0].Category != CategoryApplicationCapabilities {
		t.Errorf("application capabilities %+v", x)
	}
	if !d.Machine.ProductSourceURLOptOut.Enabled {
		t.Error("ProductSourceURLOptOut")
	}
}

// TestParseEncodings: UTF-8 with a byte-order mark and UTF-16 (both byte
// orders), as Windows tools write them.
func TestParseEncodings(t *testing.T) {
	doc := `<?xml version="1.0" encoding="utf-16"?><UserConfiguration PackageId="3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b" DisplayName="Grüße" xmlns="` + NSUser + `"/>`
	utf16 := func(be bool) []byte {
		out := []byte{0xFF, 0xFE}
		if be {
			out = []byte{0xFE, 0xFF}
		}
		for _, r := range doc { // the document is in the BMP
			hi, lo := byte(r>>8), byte(r)
			if be {
				out = append(out, hi, lo)
			} else {
				out = append(out, lo, hi)
			}
		}
		return out
	}
	for name, data := range map[string][]byte{
		"UTF-8 BOM": append([]byte("\xEF\xBB\xBF"), strings.Replace(doc, "utf-16", "utf-8", 1)...),
		"UTF-16LE":  utf16(false),
		"UTF-16BE":  utf16(true),
	} {
		u, err := ParseUser(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if u.DisplayName != "Grüße" {
			t.Errorf("%s: DisplayName %q", name, u.DisplayName)
		}
	}
}

const (
	pkgID = `PackageId="3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b"`
	depNS = `xmlns="` + NSDeployment + `"`
	usrNS = `xmlns="` + NSUser + `"`
)

func TestParseErrors(t *testing.T) {
	user := func(body string) string {
		return `<UserConfiguration ` + pkgID + ` ` + usrNS + `>` + body + `</UserConfiguration>`
	}
	dep := func(body string) string {
		return `<DeploymentConfiguration ` + pkgID + ` ` + depNS + `>` + body + `</DeploymentConfiguration>`
	}
	deep := strings.Repeat("<a>", appvpkg.MaxXMLDepth) + strings.Repeat("</a>", appvpkg.MaxXMLDepth)
	many := "<Subsystems"
	for i := range maxAttrs + 1 {
		many += " a" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `="1"`
	}
	for _, c := range []struct {
		name, doc  string
		deployment bool
		err        string
	}{
		{"not XML", "hello", false, "no root element"},
		{"not XML either", "<a></b>", false, "not well-formed"},
		{"empty", "", false, "no root element"},
		{"two roots", user("") + user(""), false, "more than one root"},
		{"unclosed", `<UserConfiguration ` + pkgID + ` ` + usrNS + `><Subsystems>`, false, "unclosed element"},
		{"DOCTYPE", `<!DOCTYPE x [<!ENTITY a "aaaa">]>` + user(""), false, "DOCTYPE"},
		{"too deep", user(deep), false, "deeper than"},
		{"too many attributes", user(many + "/>"), false, "attributes"},
		{"unbound prefix", user(`<x:Subsystems/>`), false, "unbound namespace prefix"},
		{"attribute twice", `<UserConfiguration ` + pkgID + ` ` + pkgID + ` ` + usrNS + `/>`, false, "twice"},
		{"wrong root", `<DeploymentConfiguration ` + pkgID + ` ` + usrNS + `/>`, false, "root element"},
		{"wrong namespace", `<UserConfiguration ` + pkgID + ` ` + depNS + `/>`, false, "root element"},
		{"user file as deployment", user(""), true, "root element"},
		{"no PackageId", `<UserConfiguration ` + usrNS + `/>`, false, "no PackageId"},
		{"PackageId not a GUID", `<UserConfiguration PackageId="7-zip" ` + usrNS + `/>`, false, "not a GUID"},
		{"PackageId in braces", `<UserConfiguration PackageId="{3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b}" ` + usrNS + `/>`, false, "not a GUID"},
		{"Enabled not a boolean", user(`<Subsystems><Shortcuts Enabled="yes"/></Subsystems>`), false, `Enabled="yes" is not a boolean`},
		{"subsystem twice", user(`<Subsystems><Fonts/><Fonts/></Subsystems>`), false, "more than one <Fonts>"},
		{"Subsystems twice", user(`<Subsystems/><Subsystems/>`), false, "more than one <Subsystems>"},
		{"category mismatch", user(`<Subsystems><Shortcuts><Extensions><Extension Category="AppV.AppPath"><AppPath><Name>x</Name></AppPath></Extension></Extensions></Shortcuts></Subsystems>`), false, "category AppV.AppPath"},
		{"no category", user(`<Subsystems><Shortcuts><Extensions><Extension/></Extensions></Shortcuts></Subsystems>`), false, "without a Category"},
		{"shortcut without file", user(`<Subsystems><Shortcuts><Extensions><Extension Category="AppV.Shortcut"><Shortcut><Target>x</Target></Shortcut></Extension></Extensions></Shortcuts></Subsystems>`), false, "Shortcut without a File"},
		{"bad ShowCommand", user(`<Subsystems><Shortcuts><Extensions><Extension Category="AppV.Shortcut"><Shortcut><File>f</File><ShowCommand>max</ShowCommand></Shortcut></Extension></Extensions></Shortcuts></Subsystems>`), false, "ShowCommand"},
		{"empty association", user(`<Subsystems><FileTypeAssociations><Extensions><Extension Category="AppV.FileTypeAssociation"><FileTypeAssociation/></Extension></Extensions></FileTypeAssociations></Subsystems>`), false, "neither FileExtension nor ProgId"},
		{"extension without name", user(`<Subsystems><FileTypeAssociations><Extensions><Extension Category="AppV.FileTypeAssociation"><FileTypeAssociation><FileExtension/></FileTypeAssociation></Extension></Extensions></FileTypeAssociations></Subsystems>`), false, "FileExtension without a Name"},
		{"ProgId without name", user(`<Subsystems><FileTypeAssociations><Extensions><Extension Category="AppV.FileTypeAssociation"><FileTypeAssociation><ProgId/></FileTypeAssociation></Extension></Extensions></FileTypeAssociations></Subsystems>`), false, "ProgId without a Name"},
		{"bad MimeAssociation", user(`<Subsystems><FileTypeAssociations><Extensions><Extension Category="AppV.FileTypeAssociation"><FileTypeAssociation><FileExtension MimeAssociation="maybe"><Name>.x</Name></FileExtension></FileTypeAssociation></Extension></Extensions></FileTypeAssociations></Subsystems>`), false, "MimeAssociation"},
		{"URL protocol without name", user(`<Subsystems><URLProtocols><Extensions><Extension Category="AppV.URLProtocol"><URLProtocol/></Extension></Extensions></URLProtocols></Subsystems>`), false, "URLProtocol without a Name"},
		{"app path without name", user(`<Subsystems><AppPaths><Extensions><Extension Category="AppV.AppPath"><AppPath/></Extension></Extensions></AppPaths></Subsystems>`), false, "AppPath without a Name"},
		{"variable without name", user(`<Subsystems><EnvironmentVariables><Include><Variable Value="1"/></Include></EnvironmentVariables></Subsystems>`), false, "Variable without a Name"},
		{"deleted variable without name", user(`<Subsystems><EnvironmentVariables><Delete><Variable/></Delete></EnvironmentVariables></Subsystems>`), false, "Variable without a Name"},
		{"application without Id", user(`<Applications><Application Enabled="false"/></Applications>`), false, "without an Id"},
		{"application twice", user(`<Applications><Application Id="a"/><Application Id="a"/></Applications>`), false, "listed twice"},
		{"application Enabled", user(`<Applications><Application Id="a" Enabled="no"/></Applications>`), false, "not a boolean"},
		{"machine event in user scripts", user(`<UserScripts><AddPackage><Path>x</Path></AddPackage></UserScripts>`), false, "belong in MachineScripts"},
		{"unknown event", user(`<UserScripts><Launch><Path>x</Path></Launch></UserScripts>`), false, "not a script event"},
		{"script twice", user(`<UserScripts><ExitProcess><Path>x</Path></ExitProcess><ExitProcess><Path>y</Path></ExitProcess></UserScripts>`), false, "two ExitProcess scripts"},
		{"script without path", user(`<UserScripts><ExitProcess/></UserScripts>`), false, "without a Path"},
		{"bad timeout", user(`<UserScripts><ExitProcess><Path>x</Path><Wait Timeout="soon"/></ExitProcess></UserScripts>`), false, "Timeout"},
		{"negative timeout", user(`<UserScripts><ExitProcess><Path>x</Path><Wait Timeout="-1"/></ExitProcess></UserScripts>`), false, "Timeout"},
		{"bad RollbackOnError", user(`<UserScripts><ExitProcess><Path>x</Path><Wait RollbackOnError="sure"/></ExitProcess></UserScripts>`), false, "RollbackOnError"},
		{"bad RunInVirtualEnvironment", user(`<UserScripts><StartProcess RunInVirtualEnvironment="x"><Path>x</Path></StartProcess></UserScripts>`), false, "RunInVirtualEnvironment"},
		{"two user sections", dep(`<UserConfiguration/><UserConfiguration/>`), true, "more than one <UserConfiguration>"},
		{"two machine sections", dep(`<MachineConfiguration/><MachineConfiguration/>`), true, "more than one <MachineConfiguration>"},
		{"bad ProductSourceURLOptOut", dep(`<MachineConfiguration><ProductSourceURLOptOut Enabled="perhaps"/></MachineConfiguration>`), true, "not a boolean"},
		{"TerminateChildProcesses without path", dep(`<MachineConfiguration><TerminateChildProcesses><Application/></TerminateChildProcesses></MachineConfiguration>`), true, "without a Path"},
		{"bad machine subsystem", dep(`<MachineConfiguration><Subsystems><Registry Enabled="x"/></Subsystems></MachineConfiguration>`), true, "not a boolean"},
		{"bad user section", dep(`<UserConfiguration><Subsystems><Fonts Enabled="x"/></Subsystems></UserConfiguration>`), true, "not a boolean"},
		{"odd UTF-16", "\xFF\xFE<", false, "odd number"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			part := UserPart
			if c.deployment {
				_, err = ParseDeployment([]byte(c.doc))
				part = DeploymentPart
			} else {
				_, err = ParseUser([]byte(c.doc))
			}
			if err == nil {
				t.Fatalf("parsed; want an error saying %q", c.err)
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "dynconfig: "+part+": ") {
				t.Errorf("error %q, want one of ErrFormat for %s saying %q", err, part, c.err)
			}
		})
	}
	big := make([]byte, appvpkg.MaxXMLPartSize+1)
	if _, err := ParseDeployment(big); err == nil || !errors.Is(err, ErrFormat) {
		t.Errorf("an oversized file: %v", err)
	}
}

// TestParseIgnores: other namespaces and elements appv does not model are
// passed over.
func TestParseIgnores(t *testing.T) {
	doc := `<DeploymentConfiguration ` + pkgID + ` DisplayName="x" IgnorableNamespaces="v" xmlns:v="urn:vendor" ` + depNS + `>
	  <v:Anything><v:Deep/></v:Anything>
	  <UserConfiguration>
	    <Subsystems>
	      <COM Mode="Integrated"><IntegratedCOMAttributes OutOfProcessEnabled="true" InProcessEnabled="false"/></COM>
	      <v:Shortcuts Enabled="false"/>
	      <Shortcuts><v:Note/><Extensions><Extension Category="AppV.Shortcut"><Shortcut><File>f</File><v:Extra/></Shortcut></Extension><v:Extension Category="AppV.Shortcut"/></Extensions></Shortcuts>
	    </Subsystems>
	    <ManagingAuthority TakeoverExtensionPointsFrom46="true" PackageName="032630c0-b8e2-417c-acef-76fc5297fe81"/>
	  </UserConfiguration>
	</DeploymentConfiguration>`
	d, err := ParseDeployment([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	sc := d.User.Subsystems.Shortcuts
	if !sc.Enabled || !sc.Replace || len(sc.Extensions) != 1 || sc.Extensions[0].Shortcut.File != "f" {
		t.Errorf("shortcuts %+v", sc)
	}
	if d.DisplayName != "x" || d.Machine.ProductSourceURLOptOut.Set || !Merge(nil, d, nil).PackageSourceRoot {
		t.Errorf("%+v", d)
	}
}
