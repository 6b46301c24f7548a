package dynconfig

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
)

const (
	appA = "[{Usr}]/bin/a"
	appB = "[{Usr}]/bin/b"
)

// mergeManifest has two applications, each with a shortcut, a file type
// association (a's has a second extension naming its ProgId), a's URL
// protocol, app paths, environment variables and scripts.
func mergeManifest(t *testing.T) *appvpkg.Manifest {
	t.Helper()
	m := appvpkg.NewManifest(appvpkg.Identity{
		Name: "ab", Publisher: "CN=appv", Version: "1.0.0.0",
		PackageID: "3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b", VersionID: "8e2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a",
	})
	open := func(app string) *appvpkg.ShellCommands {
		return &appvpkg.ShellCommands{DefaultCommand: "Open", Commands: []appvpkg.ShellCommand{{ApplicationID: app, Name: "Open", CommandLine: app + " %f"}}}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.AddApplication(appvpkg.Application{ID: appA, DisplayName: "A", Icon: "a.png", Description: "the a"}))
	must(m.AddApplication(appvpkg.Application{ID: appB, DisplayName: "B"}))
	for _, x := range []appvpkg.Extension{
		{Shortcut: &appvpkg.Shortcut{File: "[{Usr}]/share/applications/a.desktop", Target: appA, ApplicationID: appA}},
		{Shortcut: &appvpkg.Shortcut{File: "[{Usr}]/share/applications/b.desktop", Target: appB, ApplicationID: appB}},
		{FileTypeAssociation: &appvpkg.FileTypeAssociation{
			FileExtension: &appvpkg.FileExtension{Name: ".a", ProgID: "a.desktop.x/a", ContentType: "x/a"},
			ProgID:        &appvpkg.ProgID{Name: "a.desktop.x/a", ShellCommands: open(appA)},
		}},
		{FileTypeAssociation: &appvpkg.FileTypeAssociation{FileExtension: &appvpkg.FileExtension{Name: ".aa", ProgID: "a.desktop.x/a"}}},
		{FileTypeAssociation: &appvpkg.FileTypeAssociation{
			FileExtension: &appvpkg.FileExtension{Name: ".b", ProgID: "b.desktop.x/b"},
			ProgID:        &appvpkg.ProgID{Name: "b.desktop.x/b", ShellCommands: open(appB)},
		}},
		{URLProtocol: &appvpkg.URLProtocol{Name: "a", ShellCommands: open(appA)}},
		{AppPath: &appvpkg.AppPath{Name: "a", ApplicationPath: appA, ApplicationID: appA}},
		{AppPath: &appvpkg.AppPath{Name: "b", ApplicationPath: appB, ApplicationID: appB}},
		{EnvironmentVariables: &appvpkg.EnvironmentVariables{
			Include: []appvpkg.EnvironmentVariable{{Name: "X", Value: "1"}, {Name: "Y", Value: "2"}},
			Delete:  []string{"Z"},
		}},
	} {
		must(m.AddExtension(x))
	}
	must(m.AddUserScript(appvpkg.Script{Event: "StartProcess", Path: "/m/start"}))
	must(m.AddUserScript(appvpkg.Script{Event: "ExitProcess", Path: "/m/exit"}))
	must(m.AddMachineScript(appvpkg.Script{Event: "AddPackage", Path: "/m/add"}))
	return m
}

// summary writes the effective configuration compactly.
func summary(e Effective) string {
	var parts []string
	for _, a := range e.Applications {
		s := "app " + a.DisplayName
		if !a.Enabled {
			s += " off"
		}
		parts = append(parts, s)
	}
	for _, x := range e.Extensions {
		switch {
		case x.Shortcut != nil:
			parts = append(parts, "shortcut "+strings.TrimSuffix(x.Shortcut.File[strings.LastIndex(x.Shortcut.File, "/")+1:], ".desktop"))
		case x.FileTypeAssociation != nil && x.FileTypeAssociation.FileExtension != nil:
			parts = append(parts, "fta "+x.FileTypeAssociation.FileExtension.Name)
		case x.FileTypeAssociation != nil:
			parts = append(parts, "progid "+x.FileTypeAssociation.ProgID.Name)
		case x.URLProtocol != nil:
			parts = append(parts, "url "+x.URLProtocol.Name)
		case x.AppPath != nil:
			parts = append(parts, "path "+x.AppPath.Name)
		default:
			parts = append(parts, "ext "+x.Category)
		}
	}
	var env []string
	for _, v := range e.Environment.Include {
		env = append(env, v.Name+"="+v.Value)
	}
	for _, n := range e.Environment.Delete {
		env = append(env, "-"+n)
	}
	parts = append(parts, "env "+strings.Join(env, ","))
	var scripts []string
	for _, s := range e.UserScripts {
		scripts = append(scripts, s.Event+":"+s.Path)
	}
	for _, s := range e.MachineScripts {
		scripts = append(scripts, s.Event+":"+s.Path)
	}
	parts = append(parts, "scripts "+strings.Join(scripts, ","))
	return strings.Join(parts, "; ")
}

const manifestSummary = "app A; app B; shortcut a; shortcut b; fta .a; fta .aa; fta .b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"

func TestMergePrecedence(t *testing.T) {
	m := mergeManifest(t)
	deployment := func(user, machine string) *Deployment {
		t.Helper()
		d, err := ParseDeployment([]byte(`<DeploymentConfiguration ` + pkgID + ` ` + depNS + `><UserConfiguration>` + user +
			`</UserConfiguration><MachineConfiguration>` + machine + `</MachineConfiguration></DeploymentConfiguration>`))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	user := func(body string) *User {
		t.Helper()
		u, err := ParseUser([]byte(`<UserConfiguration ` + pkgID + ` ` + usrNS + `>` + body + `</UserConfiguration>`))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	oneShortcut := `<Extensions><Extension Category="AppV.Shortcut"><Shortcut><File>[{Profile}]/Desktop/only.desktop</File><ApplicationId>` + appA + `</ApplicationId></Shortcut></Extension></Extensions>`
	for _, c := range []struct {
		name string
		d    *Deployment
		u    *User
		want string
	}{
		{"manifest alone", nil, nil, manifestSummary},
		{"empty files", deployment("", ""), user(""), manifestSummary},
		{"deployment disables shortcuts", deployment(`<Subsystems><Shortcuts Enabled="false"/></Subsystems>`, ""), nil,
			"app A; app B; fta .a; fta .aa; fta .b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"enabled without Extensions keeps the manifest's", deployment(`<Subsystems><Shortcuts Enabled="true"/><AppPaths/></Subsystems>`, ""), nil, manifestSummary},
		{"the user file replaces the deployment's user section whole",
			deployment(`<Subsystems><Shortcuts Enabled="false"/></Subsystems>`, ""), user(`<Subsystems><URLProtocols Enabled="false"/></Subsystems>`),
			"app A; app B; shortcut a; shortcut b; fta .a; fta .aa; fta .b; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"Extensions replace the manifest's", nil, user(`<Subsystems><Shortcuts>` + oneShortcut + `</Shortcuts></Subsystems>`),
			"app A; app B; shortcut only; fta .a; fta .aa; fta .b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"an empty Extensions removes them", deployment(`<Subsystems><FileTypeAssociations Enabled="true"><Extensions/></FileTypeAssociations></Subsystems>`, ""), nil,
			"app A; app B; shortcut a; shortcut b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"Enabled=false wins over Extensions", nil, user(`<Subsystems><Shortcuts Enabled="false">` + oneShortcut + `</Shortcuts></Subsystems>`),
			"app A; app B; fta .a; fta .aa; fta .b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"a disabled application loses its extension points", deployment(`<Applications><Application Id="`+appA+`" Enabled="false"/></Applications>`, ""), nil,
			"app A off; app B; shortcut b; fta .b; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"also those a file adds for it", nil, user(`<Applications><Application Id="` + appA + `" Enabled="false"/></Applications><Subsystems><Shortcuts>` + oneShortcut + `</Shortcuts></Subsystems>`),
			"app A off; app B; fta .b; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"unknown applications are ignored, visual elements rename",
			nil, user(`<Applications><Application Id="[{Usr}]/bin/zzz" Enabled="false"/><Application Id="` + appB + `"><VisualElements><Name>Bee</Name><Icon/></VisualElements></Application></Applications>`),
			"app A; app Bee; shortcut a; shortcut b; fta .a; fta .aa; fta .b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"environment variables layer", deployment(`<Subsystems><EnvironmentVariables><Include><Variable Name="Y" Value="two"/><Variable Name="Z" Value="back"/><Variable Name="W" Value="new"/></Include><Delete><Variable Name="X"/></Delete></EnvironmentVariables></Subsystems>`, ""), nil,
			"app A; app B; shortcut a; shortcut b; fta .a; fta .aa; fta .b; url a; path a; path b; env Y=two,Z=back,W=new,-X; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"environment variables off", nil, user(`<Subsystems><EnvironmentVariables Enabled="false"><Include><Variable Name="Q" Value="1"/></Include></EnvironmentVariables></Subsystems>`),
			"app A; app B; shortcut a; shortcut b; fta .a; fta .aa; fta .b; url a; path a; path b; env ; scripts StartProcess:/m/start,ExitProcess:/m/exit,AddPackage:/m/add"},
		{"scripts replace the manifest's per event; machine scripts apply with a user file",
			deployment(`<UserScripts><ExitProcess><Path>/d/exit</Path></ExitProcess></UserScripts>`, `<MachineScripts><AddPackage><Path>/d/add</Path></AddPackage><RemovePackage><Path>/d/remove</Path></RemovePackage></MachineScripts>`),
			user(`<UserScripts><StartProcess><Path>/u/start</Path></StartProcess><PublishPackage><Path>/u/publish</Path></PublishPackage></UserScripts>`),
			"app A; app B; shortcut a; shortcut b; fta .a; fta .aa; fta .b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/u/start,ExitProcess:/m/exit,PublishPackage:/u/publish,AddPackage:/d/add,RemovePackage:/d/remove"},
		{"the deployment's user scripts without a user file",
			deployment(`<UserScripts><ExitProcess><Path>/d/exit</Path></ExitProcess></UserScripts>`, ""), nil,
			"app A; app B; shortcut a; shortcut b; fta .a; fta .aa; fta .b; url a; path a; path b; env X=1,Y=2,-Z; scripts StartProcess:/m/start,ExitProcess:/d/exit,AddPackage:/m/add"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := summary(Merge(m, c.d, c.u)); got != c.want {
				t.Errorf("\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestMergeDetails(t *testing.T) {
	m := mergeManifest(t)
	t.Run("owners", func(t *testing.T) {
		for _, x := range Merge(m, nil, nil).Extensions {
			want := appA
			// Each extension point of b has a name ending in "b".
			if name := summary(Effective{Extensions: []appvpkg.Extension{x}}); strings.HasSuffix(strings.Split(name, ";")[0], "b") {
				want = appB
			}
			if x.Application != want {
				t.Errorf("%s %+v belongs to %q, want %q", x.Category, x, x.Application, want)
			}
		}
	})
	t.Run("visual elements", func(t *testing.T) {
		u, err := ParseUser([]byte(`<UserConfiguration ` + pkgID + ` ` + usrNS + `><Applications><Application Id="` + appA + `"><VisualElements><Name/><Icon>other.png</Icon><Description/></VisualElements></Application></Applications></UserConfiguration>`))
		if err != nil {
			t.Fatal(err)
		}
		a := Merge(m, nil, u).Applications[0]
		if a.DisplayName != "A" || a.Icon != "other.png" || a.Description != "the a" || !a.Enabled {
			t.Errorf("%+v", a)
		}
	})
	t.Run("virtualization and machine", func(t *testing.T) {
		d, err := ParseDeployment([]byte(`<DeploymentConfiguration ` + pkgID + ` ` + depNS + `>
		  <UserConfiguration><Subsystems><Objects Enabled="false"/><Fonts Enabled="0"/><Registry/></Subsystems></UserConfiguration>
		  <MachineConfiguration><ProductSourceURLOptOut Enabled="false"/><TerminateChildProcesses><Application Path="` + appA + `"/></TerminateChildProcesses></MachineConfiguration>
		</DeploymentConfiguration>`))
		if err != nil {
			t.Fatal(err)
		}
		e := Merge(m, d, nil)
		want := Virtualization{Registry: true, FileSystem: true, EnvironmentVariables: true, Services: true}
		if e.Virtualization != want {
			t.Errorf("virtualization %+v, want %+v", e.Virtualization, want)
		}
		if e.PackageSourceRoot || !slices.Equal(e.TerminateChildProcesses, []string{appA}) {
			t.Errorf("machine: %v %v", e.PackageSourceRoot, e.TerminateChildProcesses)
		}
		// A user file does not change the machine's part.
		u, _ := ParseUser([]byte(`<UserConfiguration ` + pkgID + ` ` + usrNS + `/>`))
		if e := Merge(m, d, u); e.PackageSourceRoot || len(e.TerminateChildProcesses) != 1 || !e.Virtualization.Objects {
			t.Errorf("with a user file: %+v", e)
		}
		if e := Merge(m, nil, nil); !e.PackageSourceRoot || e.Virtualization != (Virtualization{true, true, true, true, true, true}) {
			t.Errorf("defaults: %+v", e)
		}
	})
	t.Run("machine-wide extension points", func(t *testing.T) {
		d, err := ParseDeployment([]byte(`<DeploymentConfiguration ` + pkgID + ` ` + depNS + `><MachineConfiguration><Subsystems>
		  <ApplicationCapabilities><Extensions><Extension Category="AppV.ApplicationCapabilities"><ApplicationCapabilities/></Extension></Extensions></ApplicationCapabilities>
		</Subsystems></MachineConfiguration></DeploymentConfiguration>`))
		if err != nil {
			t.Fatal(err)
		}
		got := summary(Merge(m, d, nil))
		if !strings.Contains(got, "path b; ext AppV.ApplicationCapabilities; env") {
			t.Errorf("%s", got)
		}
	})
	t.Run("nil manifest", func(t *testing.T) {
		if e := Merge(nil, nil, nil); len(e.Applications) != 0 || len(e.Extensions) != 0 || !e.PackageSourceRoot {
			t.Errorf("%+v", e)
		}
	})
}

// TestScriptExamples: the examples the templates hold in comments are valid
// once uncommented.
func TestScriptExamples(t *testing.T) {
	dep, _, err := Generate(mergeManifestNoScripts(t))
	if err != nil {
		t.Fatal(err)
	}
	s := string(dep)
	for _, cut := range []string{"User scripts: uncomment", "Machine scripts: uncomment"} {
		i := strings.Index(s, cut)
		start := strings.LastIndex(s[:i], "<!--")
		end := i + strings.Index(s[i:], "-->")
		body := s[i:end]
		body = body[strings.Index(body, "<"):]
		s = s[:start] + body + s[end+3:]
	}
	d, err := ParseDeployment([]byte(s))
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	if len(d.User.Scripts) != 1 || d.User.Scripts[0].Event != "StartVirtualEnvironment" || len(d.Machine.Scripts) != 1 || d.Machine.Scripts[0].Wait.Timeout != 30 {
		t.Errorf("user %+v, machine %+v", d.User.Scripts, d.Machine.Scripts)
	}
}

func mergeManifestNoScripts(t *testing.T) *appvpkg.Manifest {
	t.Helper()
	m := appvpkg.NewManifest(appvpkg.Identity{
		Name: "ab", Publisher: "CN=appv", Version: "1.0.0.0",
		PackageID: "3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b", VersionID: "8e2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a",
	})
	if err := m.AddApplication(appvpkg.Application{ID: "[{Usr}]/bin/x--y", DisplayName: "x"}); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGenerateNestedOwner: an extension point nested in an application, with
// no ApplicationId of its own, still belongs to it through the templates.
func TestGenerateNestedOwner(t *testing.T) {
	m := mergeManifestNoScripts(t)
	const app = "[{Usr}]/bin/x--y"
	for _, x := range []appvpkg.Extension{
		{Application: app, Shortcut: &appvpkg.Shortcut{File: "[{Usr}]/share/applications/x.desktop"}},
		{Application: app, AppPath: &appvpkg.AppPath{Name: "x"}},
		{Application: app, URLProtocol: &appvpkg.URLProtocol{Name: "x", ShellCommands: &appvpkg.ShellCommands{Commands: []appvpkg.ShellCommand{{Name: "open", CommandLine: "x %u"}}}}},
		{Application: app, FileTypeAssociation: &appvpkg.FileTypeAssociation{
			FileExtension: &appvpkg.FileExtension{Name: ".x", ProgID: "x"},
			ProgID:        &appvpkg.ProgID{Name: "x", ShellCommands: &appvpkg.ShellCommands{Commands: []appvpkg.ShellCommand{{Name: "Open", CommandLine: "x %f"}}}},
		}},
	} {
		if err := m.AddExtension(x); err != nil {
			t.Fatal(err)
		}
	}
	dep, user, err := Generate(m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	want := Merge(m, nil, nil)
	if got := Merge(m, d, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	for _, x := range want.Extensions {
		if x.Application != app {
			t.Errorf("%+v belongs to %q", x, x.Application)
		}
	}
	if want.Extensions[0].Shortcut.ApplicationID != app || m.Extensions()[0].Shortcut.ApplicationID != "" {
		t.Error("the owner is not in the effective shortcut's ApplicationId, or the manifest's view was changed")
	}
	off := strings.Replace(string(user), `Enabled="true">`+"\n      <VisualElements>", `Enabled="false">`+"\n      <VisualElements>", 1)
	u, err := ParseUser([]byte(off))
	if err != nil {
		t.Fatal(err)
	}
	if got := Merge(m, d, u); len(got.Extensions) != 0 || got.Applications[0].Enabled {
		t.Errorf("with the application disabled: %s\n%s", summary(got), off)
	}
}
