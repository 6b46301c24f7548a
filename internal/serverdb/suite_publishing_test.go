package serverdb

import (
	"reflect"
	"strings"
	"testing"
)

// published lists a Publication's packages as "PackageID@VersionID" for
// comparing.
func published(p Publication) []string {
	var out []string
	for _, pp := range p.Packages {
		out = append(out, pp.PackageID+"@"+pp.VersionID)
	}
	return out
}

func at(p, n int) string { return guidN(p) + "@" + guidN(p*1000+n) }

func testPublishing(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	const (
		office = 1 + iota
		browser
		cad
		tools
		unentitled
		empty
	)
	mustVersion(t, db, ver(office, 1, "1.0.0.0"))
	mustVersion(t, db, ver(office, 2, "2.0.0.0"))
	mustVersion(t, db, ver(browser, 1, "1.0.0.0"))
	mustVersion(t, db, ver(cad, 1, "1.0.0.0"))
	mustVersion(t, db, ver(tools, 1, "1.0.0.0"))
	mustVersion(t, db, ver(unentitled, 1, "1.0.0.0"))
	mustVersion(t, db, ver(empty, 1, "1.0.0.0"))
	_, err := db.RemoveVersion(ctx, ver(empty, 1, "").VersionID)
	ok(t, err)

	id := map[string]Identity{}
	for _, n := range []struct {
		kind Kind
		name string
	}{
		{KindUser, "alice"}, {KindUser, "bob"}, {KindUser, "carol"}, {KindUser, "dave"},
		{KindMachine, "pc"}, {KindMachine, "pc2"},
		{KindGroup, "staff"}, {KindGroup, "eng"}, {KindGroup, "machines"},
	} {
		id[n.name] = mustIdentity(t, db, n.kind, n.name)
	}
	member := func(group, m string) { ok(t, db.AddMember(ctx, id[group].ID, id[m].ID)) }
	member("staff", "alice")
	member("staff", "bob")
	member("eng", "bob")
	member("eng", "dave")
	member("machines", "pc")
	entitle := func(p int, who string) { ok(t, db.Entitle(ctx, guidN(p), id[who].ID)) }
	entitle(office, "staff")
	entitle(browser, "eng")
	entitle(cad, "bob")
	entitle(cad, "eng") // bob gets cad twice: published once
	entitle(tools, "machines")
	entitle(empty, "alice") // no version: not published

	tests := []struct {
		who    string
		want   []string
		global bool
	}{
		{"alice", []string{at(office, 2)}, false},
		{"bob", []string{at(office, 2), at(browser, 1), at(cad, 1)}, false},
		{"carol", nil, false},
		{"dave", []string{at(browser, 1), at(cad, 1)}, false},
		{"pc", []string{at(tools, 1)}, true},
		{"pc2", nil, true},
		{"staff", []string{at(office, 2)}, false}, // a group asking for itself
	}
	for _, tc := range tests {
		t.Run(tc.who, func(t *testing.T) {
			pub, err := db.Publishing(ctx, Principal{Identity: id[tc.who]})
			ok(t, err)
			if got := published(pub); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("published %v\nwant %v", got, tc.want)
			}
			if pub.Global != tc.global {
				t.Errorf("Global = %v", pub.Global)
			}
		})
	}

	// Every field of a published package.
	pub, err := db.Publishing(ctx, Principal{Identity: id["alice"]})
	ok(t, err)
	v := ver(office, 2, "2.0.0.0")
	want := PublishedPackage{PackageID: v.PackageID, VersionID: v.VersionID, Name: v.Name, Version: v.Version,
		Location: v.Location, Size: v.Size, SHA256: v.SHA256}
	if len(pub.Packages) != 1 || !reflect.DeepEqual(pub.Packages[0], want) {
		t.Errorf("published %+v\nwant %+v", pub.Packages, want)
	}

	// Changes show at once.
	ok(t, db.Unentitle(ctx, guidN(office), id["staff"].ID))
	ok(t, db.RemoveMember(ctx, id["eng"].ID, id["bob"].ID))
	pub, err = db.Publishing(ctx, Principal{Identity: id["bob"]})
	ok(t, err)
	if got, want := published(pub), []string{at(cad, 1)}; !reflect.DeepEqual(got, want) {
		t.Errorf("after changes, bob gets %v, want %v", got, want)
	}
}

// groupsOf lists a Publication's connection groups as "name: members",
// members as "package@version" with "*" for any version and "?" for
// optional.
func groupsOf(p Publication) []string {
	var out []string
	for _, g := range p.ConnectionGroups {
		var ms []string
		for _, m := range g.Members {
			s := m.PackageID[len(m.PackageID)-3:] + "@" + m.VersionID[len(m.VersionID)-4:]
			if m.AnyVersion {
				s += "*"
			}
			if m.Optional {
				s += "?"
			}
			ms = append(ms, s)
		}
		out = append(out, g.Name+": "+strings.Join(ms, " "))
	}
	return out
}

func testPublishingConnectionGroups(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	// Packages 0x0a..0x0d; their versions end in their number then the
	// version number (0x0a -> ...2711 is version 1 of package 0x0a).
	const a, b, c, d = 0xa, 0xb, 0xc, 0xd
	mustVersion(t, db, ver(a, 1, "1.0.0.0"))
	mustVersion(t, db, ver(a, 2, "2.0.0.0"))
	mustVersion(t, db, ver(b, 1, "1.0.0.0"))
	mustVersion(t, db, ver(b, 2, "1.1.0.0"))
	mustVersion(t, db, ver(c, 1, "1.0.0.0"))
	mustVersion(t, db, ver(d, 1, "1.0.0.0"))
	u := mustIdentity(t, db, KindUser, "u")
	other := mustIdentity(t, db, KindUser, "other")
	g := mustIdentity(t, db, KindGroup, "g")
	ok(t, db.AddMember(ctx, g.ID, u.ID))
	ok(t, db.Entitle(ctx, guidN(a), g.ID))
	ok(t, db.Entitle(ctx, guidN(b), u.ID))
	ok(t, db.Entitle(ctx, guidN(c), u.ID))
	ok(t, db.Entitle(ctx, guidN(a), other.ID))

	put := func(n int, name string, prio int, who Identity, members ...GroupMember) {
		t.Helper()
		_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(0x100 + n), Name: name, Priority: prio, Members: members})
		ok(t, err)
		if who.ID != 0 {
			ok(t, db.EntitleConnectionGroup(ctx, guidN(0x100+n), who.ID))
		}
	}
	anyV := func(p int) GroupMember { return GroupMember{PackageID: guidN(p)} }
	pinned := func(p, n int) GroupMember { return GroupMember{PackageID: guidN(p), VersionID: guidN(p*1000 + n)} }
	optional := func(m GroupMember) GroupMember { m.Optional = true; return m }
	put(1, "pinned and any", 2, g, anyV(a), pinned(b, 1))
	put(2, "optional missing", 1, u, anyV(c), optional(anyV(d)))
	put(3, "required missing", 0, u, anyV(a), anyV(d))
	put(4, "not entitled", 0, Identity{}, anyV(a))
	put(5, "optional present", 3, u, optional(pinned(a, 1)), anyV(b))

	// Version IDs end in hex: package 0xa version 1 is ...2711, 0xa v2
	// ...2712, 0xb v1 ...2af9, 0xc v1 ...2ee1.
	want := []string{
		"optional missing: 00c@2ee1*",
		"pinned and any: 00a@2712* 00b@2af9",
		"optional present: 00a@2711? 00b@2afa*",
	}
	pub, err := db.Publishing(ctx, Principal{Identity: u})
	ok(t, err)
	if got := groupsOf(pub); !reflect.DeepEqual(got, want) {
		t.Errorf("groups\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	pub, err = db.Publishing(ctx, Principal{Identity: other})
	ok(t, err)
	if len(pub.ConnectionGroups) != 0 {
		t.Errorf("a user entitled to no group gets %v", groupsOf(pub))
	}

	// A new version: any-version members follow it.
	mustVersion(t, db, ver(a, 3, "3.0.0.0"))
	pub, err = db.Publishing(ctx, Principal{Identity: u})
	ok(t, err)
	if got := groupsOf(pub); len(got) != 3 || got[1] != "pinned and any: 00a@2713* 00b@2af9" {
		t.Errorf("after a new version of a: %v", got)
	}
	g1 := pub.ConnectionGroups[1]
	if g1.GroupID != guidN(0x101) || g1.Priority != 2 || g1.VersionID == "" {
		t.Errorf("group = %+v", g1)
	}

	// The stored groups, as put.
	stored, err := db.ConnectionGroup(ctx, guidN(0x105))
	ok(t, err)
	wantStored := ConnectionGroup{GroupID: guidN(0x105), VersionID: stored.VersionID, Name: "optional present", Priority: 3,
		Members: []GroupMember{optional(pinned(a, 1)), anyV(b)}}
	if !reflect.DeepEqual(stored, wantStored) {
		t.Errorf("ConnectionGroup = %+v\nwant %+v", stored, wantStored)
	}
}

func testConnectionGroups(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	mustVersion(t, db, ver(2, 1, "1.0.0.0"))
	u := mustIdentity(t, db, KindUser, "u")
	cg := ConnectionGroup{GroupID: strings.ToUpper(guidN(50)), Name: "cg", Priority: 5,
		Members: []GroupMember{{PackageID: guidN(2), Optional: true}, {PackageID: guidN(1), VersionID: guidN(1001)}}}
	first, err := db.PutConnectionGroup(ctx, cg)
	ok(t, err)
	if first.GroupID != guidN(50) || first.VersionID == "" {
		t.Fatalf("PutConnectionGroup = %+v", first)
	}
	cg.Members = cg.Members[1:]
	cg.Name = "renamed"
	second, err := db.PutConnectionGroup(ctx, cg)
	ok(t, err)
	if second.VersionID == first.VersionID {
		t.Error("a changed group kept its VersionId")
	}
	mine := ConnectionGroup{GroupID: guidN(51), VersionID: guidN(5151), Name: "mine", Priority: -1,
		Members: []GroupMember{{PackageID: guidN(2)}}}
	_, err = db.PutConnectionGroup(ctx, mine)
	ok(t, err)
	all, err := db.ConnectionGroups(ctx)
	ok(t, err)
	want := []ConnectionGroup{mine, second}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("ConnectionGroups = %+v\nwant %+v", all, want)
	}

	ok(t, db.EntitleConnectionGroup(ctx, guidN(50), u.ID))
	ok(t, db.EntitleConnectionGroup(ctx, guidN(50), u.ID))
	ents, err := db.ConnectionGroupEntitlements(ctx, guidN(50))
	ok(t, err)
	if !reflect.DeepEqual(ents, []Identity{u}) {
		t.Errorf("ConnectionGroupEntitlements = %+v", ents)
	}
	ok(t, db.UnentitleConnectionGroup(ctx, guidN(50), u.ID))
	ok(t, db.RemoveConnectionGroup(ctx, guidN(50)))
	// The member package can go once its group is gone.
	_, err = db.RemovePackage(ctx, guidN(1))
	ok(t, err)
}

func testEntitlements(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	u := mustIdentity(t, db, KindUser, "u")
	g := mustIdentity(t, db, KindGroup, "g")
	m := mustIdentity(t, db, KindMachine, "m")
	for _, id := range []Identity{m, u, g, u} {
		ok(t, db.Entitle(ctx, strings.ToUpper(guidN(1)), id.ID))
	}
	got, err := db.Entitlements(ctx, guidN(1))
	ok(t, err)
	if !reflect.DeepEqual(got, []Identity{u, g, m}) {
		t.Errorf("Entitlements = %+v", got)
	}
	ok(t, db.Unentitle(ctx, guidN(1), g.ID))
	ok(t, db.RemoveIdentity(ctx, m.ID))
	got, err = db.Entitlements(ctx, guidN(1))
	ok(t, err)
	if !reflect.DeepEqual(got, []Identity{u}) {
		t.Errorf("Entitlements after changes = %+v", got)
	}
}

func testDynamicConfigPrecedence(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	pkg := guidN(1)
	// gA is created first, so its ID is lower than gB's.
	gA := mustIdentity(t, db, KindGroup, "gA")
	gB := mustIdentity(t, db, KindGroup, "gB")
	id := map[string]Identity{}
	for _, n := range []string{"own", "inB", "inBoth", "none"} {
		id[n] = mustIdentity(t, db, KindUser, n)
		ok(t, db.Entitle(ctx, pkg, id[n].ID))
	}
	ok(t, db.AddMember(ctx, gB.ID, id["own"].ID))
	ok(t, db.AddMember(ctx, gB.ID, id["inB"].ID))
	ok(t, db.AddMember(ctx, gB.ID, id["inBoth"].ID))
	ok(t, db.AddMember(ctx, gA.ID, id["inBoth"].ID))
	put := func(who int64, kind, xml string) { ok(t, db.PutDynamicConfig(ctx, pkg, who, kind, []byte(xml))) }
	put(0, ConfigUser, "user default")
	put(gB.ID, ConfigUser, "user gB")
	put(gA.ID, ConfigUser, "user gA")
	put(id["own"].ID, ConfigUser, "user own")
	put(0, ConfigDeployment, "deployment default")
	put(gB.ID, ConfigDeployment, "deployment gB")

	configs := func(who string) (user, deployment string) {
		t.Helper()
		pub, err := db.Publishing(ctx, Principal{Identity: id[who]})
		ok(t, err)
		if len(pub.Packages) != 1 {
			t.Fatalf("%s: packages %v", who, published(pub))
		}
		p := pub.Packages[0]
		if p.UserConfig != nil {
			user = string(p.UserConfig.XML)
		}
		if p.DeploymentConfig != nil {
			deployment = string(p.DeploymentConfig.XML)
		}
		return user, deployment
	}
	tests := []struct {
		who              string
		user, deployment string
	}{
		{"own", "user own", "deployment gB"},
		{"inB", "user gB", "deployment gB"},
		{"inBoth", "user gA", "deployment gB"}, // lowest group ID first
		{"none", "user default", "deployment default"},
	}
	for _, tc := range tests {
		t.Run(tc.who, func(t *testing.T) {
			user, deployment := configs(tc.who)
			if user != tc.user || deployment != tc.deployment {
				t.Errorf("configs %q %q, want %q %q", user, deployment, tc.user, tc.deployment)
			}
		})
	}

	ok(t, db.RemoveDynamicConfig(ctx, pkg, id["own"].ID, ConfigUser))
	ok(t, db.RemoveDynamicConfig(ctx, pkg, 0, ConfigDeployment))
	if user, deployment := configs("own"); user != "user gB" || deployment != "deployment gB" {
		t.Errorf("own after removal: %q %q", user, deployment)
	}
	if user, deployment := configs("none"); user != "user default" || deployment != "" {
		t.Errorf("none after removal: %q %q", user, deployment)
	}
	ok(t, db.RemoveIdentity(ctx, gB.ID))
	if user, _ := configs("inB"); user != "user default" {
		t.Errorf("removing a group left its configuration: %q", user)
	}
}

func testDynamicConfigStore(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	g := mustIdentity(t, db, KindGroup, "g")
	pkg := guidN(1)
	ok(t, db.PutDynamicConfig(ctx, pkg, 0, ConfigDeployment, []byte("<DeploymentConfiguration/>")))
	ok(t, db.PutDynamicConfig(ctx, pkg, g.ID, ConfigUser, []byte("<UserConfiguration>1</UserConfiguration>")))
	ok(t, db.PutDynamicConfig(ctx, pkg, g.ID, ConfigUser, []byte("<UserConfiguration>2</UserConfiguration>")))
	xml, err := db.DynamicConfig(ctx, pkg, g.ID, ConfigUser)
	ok(t, err)
	if string(xml) != "<UserConfiguration>2</UserConfiguration>" {
		t.Errorf("DynamicConfig = %q", xml)
	}
	list, err := db.DynamicConfigs(ctx, pkg)
	ok(t, err)
	if len(list) != 2 || list[0].IdentityID != 0 || list[0].Kind != ConfigDeployment ||
		list[1].IdentityID != g.ID || string(list[1].XML) != string(xml) || list[1].UpdatedAt.IsZero() {
		t.Errorf("DynamicConfigs = %+v", list)
	}

	// Serial is the counter of the write that stored the file: it grows
	// with every put, and Publishing reports it with UpdatedAt.
	rev, err := db.Revision(ctx)
	ok(t, err)
	if len(list) == 2 && (list[1].Serial != rev || list[0].Serial >= list[1].Serial) {
		t.Errorf("serials %d, %d; want increasing, the last %d", list[0].Serial, list[1].Serial, rev)
	}
	u := mustIdentity(t, db, KindUser, "u")
	ok(t, db.AddMember(ctx, g.ID, u.ID))
	ok(t, db.Entitle(ctx, pkg, u.ID))
	ok(t, db.PutDynamicConfig(ctx, pkg, g.ID, ConfigUser, []byte("<UserConfiguration>3</UserConfiguration>")))
	list, err = db.DynamicConfigs(ctx, pkg)
	ok(t, err)
	pub, err := db.Publishing(ctx, Principal{Identity: u})
	ok(t, err)
	if len(pub.Packages) != 1 || pub.Packages[0].UserConfig == nil || pub.Packages[0].DeploymentConfig == nil {
		t.Fatalf("published %+v", pub.Packages)
	}
	uc, dc := pub.Packages[0].UserConfig, pub.Packages[0].DeploymentConfig
	if uc.Serial != list[1].Serial || !uc.UpdatedAt.Equal(list[1].UpdatedAt) || uc.Serial <= rev {
		t.Errorf("published user config serial %d at %v, want %d at %v (> %d)", uc.Serial, uc.UpdatedAt, list[1].Serial, list[1].UpdatedAt, rev)
	}
	if dc.Serial != list[0].Serial || !dc.UpdatedAt.Equal(list[0].UpdatedAt) {
		t.Errorf("published deployment config serial %d at %v, want %d at %v", dc.Serial, dc.UpdatedAt, list[0].Serial, list[0].UpdatedAt)
	}
}
