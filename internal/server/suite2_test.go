package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/appv/appv/internal/dynconfig"
	"github.com/appv/appv/internal/publishing"
	"github.com/appv/appv/internal/server/api"
)

func testConnectionGroups(t *testing.T, e *env) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Base", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	e.upload(pkgSpec{name: "Plugin", version: "1.0.0.0", pkg: 2, ver: 201, payload: 10})
	e.upload(pkgSpec{name: "Extra", version: "1.0.0.0", pkg: 3, ver: 301, payload: 10})
	alice, c := e.user("user", "alice", false)
	for _, p := range []string{"Base", "Plugin"} {
		must(t, e.admin.Entitle(ctx, p, alice.Ref()))
	}

	g, err := e.admin.PutConnectionGroup(ctx, "", api.PutConnectionGroup{Name: "Office", Priority: 3, Members: []api.MemberSpec{
		{Package: "Base", Version: guid(101)},
		{Package: "Plugin", Version: api.AnyVersion},
		{Package: guid(3), Optional: true},
	}})
	must(t, err)
	if g.GroupID == "" || g.VersionID == "" || g.Name != "Office" || g.Priority != 3 || len(g.Members) != 3 ||
		g.Members[0].VersionID != guid(101) || g.Members[1].VersionID != "" || !g.Members[2].Optional {
		t.Fatalf("group %+v", g)
	}
	byName, err := e.admin.ConnectionGroup(ctx, "office")
	must(t, err)
	if byName.GroupID != g.GroupID {
		t.Errorf("by name %+v", byName)
	}
	// PUT replaces, and gives a new VersionId.
	g2, err := e.admin.PutConnectionGroup(ctx, g.GroupID, api.PutConnectionGroup{Name: "Office", Priority: 1, Members: []api.MemberSpec{
		{Package: "Plugin"}, {Package: "Base"}, {Package: "Extra", Optional: true},
	}})
	must(t, err)
	if g2.GroupID != g.GroupID || g2.VersionID == g.VersionID || g2.Priority != 1 || g2.Members[0].PackageID != guid(2) {
		t.Errorf("replaced %+v", g2)
	}
	// PUT with a new GroupId creates.
	g3, err := e.admin.PutConnectionGroup(ctx, guid(900), api.PutConnectionGroup{Name: "Solo", Members: []api.MemberSpec{{Package: "Extra"}}})
	must(t, err)
	if g3.GroupID != guid(900) {
		t.Errorf("created %+v", g3)
	}
	list, err := e.admin.ConnectionGroups(ctx)
	must(t, err)
	if len(list) != 2 || list[0].Name != "Solo" || list[1].Name != "Office" { // by priority
		t.Errorf("groups %+v", list)
	}
	bad := []struct {
		name string
		id   string
		req  api.PutConnectionGroup
		want int
	}{
		{"no members", "", api.PutConnectionGroup{Name: "X"}, http.StatusBadRequest},
		{"no name", "", api.PutConnectionGroup{Members: []api.MemberSpec{{Package: "Base"}}}, http.StatusBadRequest},
		{"priority", "", api.PutConnectionGroup{Name: "X", Priority: 256, Members: []api.MemberSpec{{Package: "Base"}}}, http.StatusBadRequest},
		{"unknown package", "", api.PutConnectionGroup{Name: "X", Members: []api.MemberSpec{{Package: "Nope"}}}, http.StatusNotFound},
		{"bad version", "", api.PutConnectionGroup{Name: "X", Members: []api.MemberSpec{{Package: "Base", Version: "latest"}}}, http.StatusBadRequest},
		{"version of another package", "", api.PutConnectionGroup{Name: "X", Members: []api.MemberSpec{{Package: "Base", Version: guid(201)}}}, http.StatusBadRequest},
		{"package twice", "", api.PutConnectionGroup{Name: "X", Members: []api.MemberSpec{{Package: "Base"}, {Package: guid(1)}}}, http.StatusBadRequest},
		{"bad GroupId", "office", api.PutConnectionGroup{Name: "X", Members: []api.MemberSpec{{Package: "Base"}}}, http.StatusBadRequest},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			_, err := e.admin.PutConnectionGroup(ctx, tc.id, tc.req)
			wantStatus(t, err, tc.want)
			e.unchanged(before)
		})
	}

	// Entitled, the group is in alice's document without the optional
	// member she is not entitled to.
	must(t, e.admin.EntitleConnectionGroup(ctx, "Office", alice.Ref()))
	ids, err := e.admin.ConnectionGroupEntitlements(ctx, g.GroupID)
	must(t, err)
	if len(ids) != 1 || ids[0] != alice {
		t.Errorf("group entitlements %+v", ids)
	}
	doc := fetchDocument(t, e, c)
	if len(doc.Groups) != 1 || doc.Groups[0].GroupID != g.GroupID || len(doc.Groups[0].Members) != 2 ||
		doc.Groups[0].Members[0].PackageID != guid(2) || doc.Groups[0].Members[0].VersionID != publishing.AnyVersion {
		t.Errorf("groups in the document %+v", doc.Groups)
	}
	if len(doc.NoGroup) != 0 {
		t.Errorf("NoGroup %v", doc.NoGroup)
	}
	// A member package cannot be removed.
	wantStatus(t, e.admin.RemovePackage(ctx, "Plugin"), http.StatusConflict)

	must(t, e.admin.UnentitleConnectionGroup(ctx, "Office", alice.Ref()))
	wantStatus(t, e.admin.UnentitleConnectionGroup(ctx, "Office", alice.Ref()), http.StatusNotFound)
	if doc := fetchDocument(t, e, c); len(doc.Groups) != 0 {
		t.Errorf("unentitled group still published: %+v", doc.Groups)
	}
	must(t, e.admin.RemoveConnectionGroup(ctx, g.GroupID))
	wantStatus(t, e.admin.RemoveConnectionGroup(ctx, g.GroupID), http.StatusNotFound)
	_, err = e.admin.ConnectionGroup(ctx, "Office")
	wantStatus(t, err, http.StatusNotFound)
}

// configXML returns a valid dynamic configuration file of kind for a
// package, with marker in its DisplayName.
func configXML(t *testing.T, kind, packageID, marker string) []byte {
	t.Helper()
	var s string
	if kind == api.ConfigDeployment {
		s = `<?xml version="1.0" encoding="utf-8"?>
<DeploymentConfiguration PackageId="` + packageID + `" DisplayName="` + marker + `" xmlns="` + dynconfig.NSDeployment + `">
  <UserConfiguration/>
  <MachineConfiguration/>
</DeploymentConfiguration>
`
	} else {
		s = `<?xml version="1.0" encoding="utf-8"?>
<UserConfiguration PackageId="` + packageID + `" DisplayName="` + marker + `" xmlns="` + dynconfig.NSUser + `"/>
`
	}
	if kind == api.ConfigDeployment {
		_, err := dynconfig.ParseDeployment([]byte(s))
		must(t, err)
	} else {
		_, err := dynconfig.ParseUser([]byte(s))
		must(t, err)
	}
	return []byte(s)
}

func testDynamicConfig(t *testing.T, e *env) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	alice, ca := e.user("user", "alice", false)
	_, cb := e.user("user", "bob", false)
	_, err := e.admin.CreateIdentity(ctx, "group", "staff")
	must(t, err)
	must(t, e.admin.AddMember(ctx, "group:staff", alice.Ref()))
	must(t, e.admin.Entitle(ctx, "Editor", "group:staff"))
	must(t, e.admin.Entitle(ctx, "Editor", "user:bob"))

	def, err := e.admin.PutConfig(ctx, "Editor", "", api.ConfigDeployment, configXML(t, api.ConfigDeployment, guid(1), "default"))
	must(t, err)
	staff, err := e.admin.PutConfig(ctx, "Editor", "group:staff", api.ConfigDeployment, configXML(t, api.ConfigDeployment, guid(1), "staff"))
	must(t, err)
	_, err = e.admin.PutConfig(ctx, guid(1), "group:staff", api.ConfigUser, configXML(t, api.ConfigUser, guid(1), "staff user"))
	must(t, err)
	if def.Identity != nil || staff.Identity == nil || staff.Identity.Name != "staff" || staff.ConfigurationID <= def.ConfigurationID {
		t.Errorf("stored %+v and %+v", def, staff)
	}
	list, err := e.admin.Configs(ctx, "Editor")
	must(t, err)
	if len(list) != 3 || list[0].Scope() != api.DefaultScope || list[1].Scope() != "group:staff" {
		t.Errorf("configs %+v", list)
	}
	xml, err := e.admin.Config(ctx, "Editor", "group:staff", api.ConfigUser)
	must(t, err)
	if !strings.Contains(string(xml), "staff user") {
		t.Errorf("got %s", xml)
	}

	// Alice gets the group's files, Bob the default; each by the path and
	// ID the document gives.
	tests := []struct {
		name               string
		c                  *api.Client
		deployment, user   string // markers; "" none
		deploymentConfigID int
	}{
		{"alice", ca, "staff", "staff user", staff.ConfigurationID},
		{"bob", cb, "default", "", def.ConfigurationID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := fetchDocument(t, e, tc.c)
			p := doc.Packages[0]
			if p.DeploymentConfig == nil || p.DeploymentConfig.URL != "/config/"+guid(1)+"/deployment" ||
				p.DeploymentConfig.ID != tc.deploymentConfigID || p.DeploymentConfig.Timestamp.IsZero() {
				t.Errorf("deployment reference %+v", p.DeploymentConfig)
			}
			resp, body := e.do("GET", p.DeploymentConfig.URL, secretOf(e, tc.c), "", nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `DisplayName="`+tc.deployment+`"`) {
				t.Errorf("GET %s: %d %s", p.DeploymentConfig.URL, resp.StatusCode, body)
			}
			resp, body = e.do("GET", "/config/"+guid(1)+"/user", secretOf(e, tc.c), "", nil)
			switch {
			case tc.user == "" && (resp.StatusCode != http.StatusNotFound || p.UserConfig != nil):
				t.Errorf("user config: %d %s, reference %+v", resp.StatusCode, body, p.UserConfig)
			case tc.user != "" && (resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.user)):
				t.Errorf("user config: %d %s", resp.StatusCode, body)
			}
		})
	}

	// A change gives a higher ConfigurationId.
	before := fetchDocument(t, e, ca).Packages[0].DeploymentConfig.ID
	_, err = e.admin.PutConfig(ctx, "Editor", "group:staff", api.ConfigDeployment, configXML(t, api.ConfigDeployment, guid(1), "staff v2"))
	must(t, err)
	if after := fetchDocument(t, e, ca).Packages[0].DeploymentConfig.ID; after <= before {
		t.Errorf("ConfigurationId went from %d to %d", before, after)
	}

	must(t, e.admin.RemoveConfig(ctx, "Editor", "group:staff", api.ConfigDeployment))
	wantStatus(t, e.admin.RemoveConfig(ctx, "Editor", "group:staff", api.ConfigDeployment), http.StatusNotFound)
	_, err = e.admin.Config(ctx, "Editor", "group:staff", api.ConfigDeployment)
	wantStatus(t, err, http.StatusNotFound)
	if p := fetchDocument(t, e, ca).Packages[0]; p.DeploymentConfig == nil || p.DeploymentConfig.ID != def.ConfigurationID {
		t.Errorf("after removing the group's file, alice gets %+v", p.DeploymentConfig)
	}
	_, err = e.admin.Config(ctx, "Editor", "group:staff", "machine")
	wantStatus(t, err, http.StatusNotFound)
}

func testClients(t *testing.T, e *env) {
	ctx := t.Context()
	alice, c := e.user("user", "alice", false)
	resp, _ := e.do("GET", "/", secretOf(e, c), "", nil, api.ClientHeader, "pc-42")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publishing: %d", resp.StatusCode)
	}
	e.do("GET", "/", e.secret, "", nil)
	eventually(t, func() error {
		list, err := e.admin.Clients(ctx)
		if err != nil {
			return err
		}
		if len(list) != 2 || list[0].Name != AdminName || list[1].Name != "pc-42" ||
			list[1].Identity == nil || *list[1].Identity != alice || list[1].LastSeen.IsZero() {
			return fmt.Errorf("clients %+v", list)
		}
		return nil
	})
}
