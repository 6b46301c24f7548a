package serverdb

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testVersions(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	added := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	v1 := ver(1, 1, "1.0.0.0")
	v1.AddedAt = added
	v1.PackageID = strings.ToUpper(v1.PackageID) // stored in App-V's lower-case form
	mustVersion(t, db, v1)
	upload := ver(1, 2, "1.1.0.0")
	upload.Location, upload.ContentKey, upload.SHA256 = "", "sha256/ab/abcdef", ""
	mustVersion(t, db, upload)
	mustVersion(t, db, ver(2, 1, "3.0.0.0"))

	got, err := db.Version(ctx, v1.VersionID)
	ok(t, err)
	want := v1
	want.PackageID = guidN(1)
	if !got.AddedAt.Equal(added) {
		t.Errorf("AddedAt = %v, want %v", got.AddedAt, added)
	}
	got.AddedAt, want.AddedAt = time.Time{}, time.Time{}
	if !equalVersion(got, want) {
		t.Errorf("Version = %+v\nwant %+v", got, want)
	}

	gotUp, err := db.Version(ctx, strings.ToUpper(upload.VersionID))
	ok(t, err)
	if gotUp.ContentKey != "sha256/ab/abcdef" || gotUp.Location != "" || gotUp.AddedAt.IsZero() {
		t.Errorf("uploaded version = %+v", gotUp)
	}

	pkgs, err := db.Packages(ctx)
	ok(t, err)
	if len(pkgs) != 2 || pkgs[0].PackageID != guidN(1) || pkgs[1].PackageID != guidN(2) {
		t.Fatalf("Packages = %+v", pkgs)
	}
	p := pkgs[0]
	if p.LatestVersionID != upload.VersionID || p.Name != upload.Name {
		t.Errorf("package 1: latest %s %q, want %s %q", p.LatestVersionID, p.Name, upload.VersionID, upload.Name)
	}
	if len(p.Versions) != 2 || p.Versions[0].VersionID != upload.VersionID || p.Versions[1].VersionID != v1.VersionID {
		t.Errorf("package 1 versions = %+v, want highest first", p.Versions)
	}
	for _, v := range p.Versions {
		if v.ManifestXML != nil {
			t.Errorf("Packages returned a manifest for %s", v.VersionID)
		}
	}
}

func equalVersion(a, b Version) bool {
	return bytes.Equal(a.ManifestXML, b.ManifestXML) && reflect.DeepEqual(
		[]any{a.PackageID, a.VersionID, a.Name, a.Version, a.Location, a.ContentKey, a.Size, a.SHA256, a.AddedAt},
		[]any{b.PackageID, b.VersionID, b.Name, b.Version, b.Location, b.ContentKey, b.Size, b.SHA256, b.AddedAt})
}

func testLatestVersion(t *testing.T, newDB newDatabase) {
	tests := []struct {
		name     string
		versions []string // added in this order, numbered 1, 2...
		want     int      // the number of the latest
	}{
		{"one", []string{"1.0.0.0"}, 1},
		{"numeric not lexical", []string{"1.10.0.0", "1.9.0.0"}, 1},
		{"numeric not lexical, added later", []string{"1.9.0.0", "1.10.0.0"}, 2},
		{"every component", []string{"1.2.3.4", "1.2.3.10", "1.2.3.9"}, 2},
		{"major wins", []string{"2.0.0.0", "10.0.0.0", "9.99.99.99"}, 2},
		{"older added last", []string{"2.0.0.0", "1.0.0.0"}, 1},
		{"tie: latest added", []string{"1.0.0.0", "1.0.0.0", "0.9.0.0"}, 2},
		{"leading zeros", []string{"1.01.0.0", "1.1.0.0"}, 2},
		{"maximum", []string{"65535.65535.65535.65535", "1.0.0.0"}, 1},
	}
	db := fresh(t, newDB)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkg := 100 + i
			for n, vs := range tc.versions {
				mustVersion(t, db, ver(pkg, n+1, vs))
			}
			got, err := db.LatestVersion(t.Context(), guidN(pkg))
			ok(t, err)
			if want := ver(pkg, tc.want, tc.versions[tc.want-1]); got.VersionID != want.VersionID {
				t.Errorf("latest = %s (%s), want %s (%s)", got.VersionID, got.Version, want.VersionID, want.Version)
			}
			if len(got.ManifestXML) == 0 {
				t.Errorf("LatestVersion has no manifest")
			}
		})
	}
}

func testRemoveVersions(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	a, b, c := ver(1, 1, "1.0.0.0"), ver(1, 2, "2.0.0.0"), ver(2, 1, "1.0.0.0")
	c.ContentKey = "uploads/c"
	for _, v := range []Version{a, b, c} {
		mustVersion(t, db, v)
	}

	removed, err := db.RemoveVersion(ctx, b.VersionID)
	ok(t, err)
	if removed.VersionID != b.VersionID || removed.Location != b.Location {
		t.Errorf("RemoveVersion returned %+v", removed)
	}
	latest, err := db.LatestVersion(ctx, a.PackageID)
	ok(t, err)
	if latest.VersionID != a.VersionID {
		t.Errorf("after removing the latest, latest = %s, want %s", latest.VersionID, a.VersionID)
	}

	_, err = db.RemoveVersion(ctx, a.VersionID)
	ok(t, err)
	_, err = db.LatestVersion(ctx, a.PackageID)
	wantErr(t, err, ErrNotFound)
	pkgs, err := db.Packages(ctx)
	ok(t, err)
	if len(pkgs) != 2 || pkgs[0].LatestVersionID != "" || len(pkgs[0].Versions) != 0 {
		t.Errorf("a package without versions stays, without a latest: %+v", pkgs)
	}

	id := mustIdentity(t, db, KindUser, "u")
	ok(t, db.Entitle(ctx, c.PackageID, id.ID))
	ok(t, db.PutDynamicConfig(ctx, c.PackageID, 0, ConfigDeployment, []byte("<x/>")))
	gone, err := db.RemovePackage(ctx, c.PackageID)
	ok(t, err)
	if len(gone) != 1 || gone[0].ContentKey != "uploads/c" {
		t.Errorf("RemovePackage returned %+v", gone)
	}
	_, err = db.Version(ctx, c.VersionID)
	wantErr(t, err, ErrNotFound)
	_, err = db.DynamicConfig(ctx, c.PackageID, 0, ConfigDeployment)
	wantErr(t, err, ErrNotFound)
	_, err = db.Entitlements(ctx, c.PackageID)
	wantErr(t, err, ErrNotFound)
	pub, err := db.Publishing(ctx, Principal{Identity: id})
	ok(t, err)
	if len(pub.Packages) != 0 {
		t.Errorf("removed package still published: %+v", pub.Packages)
	}
}

func testInvalidArguments(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	user := mustIdentity(t, db, KindUser, "u")
	group := mustIdentity(t, db, KindGroup, "g")
	other := mustIdentity(t, db, KindGroup, "g2")
	with := func(f func(v *Version)) Version {
		v := ver(2, 1, "1.0.0.0")
		f(&v)
		return v
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"PackageId not a GUID", func() error {
			return db.CreateVersion(ctx, with(func(v *Version) { v.PackageID = "pkg" }))
		}},
		{"VersionId not a GUID", func() error {
			return db.CreateVersion(ctx, with(func(v *Version) { v.VersionID = "" }))
		}},
		{"three-part version", func() error {
			return db.CreateVersion(ctx, with(func(v *Version) { v.Version = "1.2.3" }))
		}},
		{"version component too big", func() error {
			return db.CreateVersion(ctx, with(func(v *Version) { v.Version = "1.65536.0.0" }))
		}},
		{"version with a sign", func() error {
			return db.CreateVersion(ctx, with(func(v *Version) { v.Version = "1.-2.0.0" }))
		}},
		{"no content", func() error {
			return db.CreateVersion(ctx, with(func(v *Version) { v.Location, v.ContentKey = "", "" }))
		}},
		{"bad SHA256", func() error {
			return db.CreateVersion(ctx, with(func(v *Version) { v.SHA256 = "abc" }))
		}},
		{"bad identity kind", func() error {
			_, err := db.CreateIdentity(ctx, Identity{Kind: "robot", Name: "r"})
			return err
		}},
		{"empty identity name", func() error {
			_, err := db.CreateIdentity(ctx, Identity{Kind: KindUser, Name: " "})
			return err
		}},
		{"group in a group", func() error { return db.AddMember(ctx, group.ID, other.ID) }},
		{"member of a user", func() error { return db.AddMember(ctx, user.ID, user.ID) }},
		{"token for a group", func() error {
			_, err := db.CreateToken(ctx, group.ID, false, time.Time{})
			return err
		}},
		{"config kind", func() error { return db.PutDynamicConfig(ctx, guidN(1), 0, "machine", []byte("<x/>")) }},
		{"empty config", func() error { return db.PutDynamicConfig(ctx, guidN(1), 0, ConfigUser, nil) }},
		{"group without members", func() error {
			_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg"})
			return err
		}},
		{"group with a package twice", func() error {
			_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg",
				Members: []GroupMember{{PackageID: guidN(1)}, {PackageID: guidN(1), Optional: true}}})
			return err
		}},
		{"group pinning another package's version", func() error {
			mustVersion(t, db, ver(3, 1, "1.0.0.0"))
			_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg",
				Members: []GroupMember{{PackageID: guidN(1), VersionID: ver(3, 1, "").VersionID}}})
			return err
		}},
		{"group priority out of range", func() error {
			_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg", Priority: 1 << 40,
				Members: []GroupMember{{PackageID: guidN(1)}}})
			return err
		}},
		{"publishing without identity", func() error {
			_, err := db.Publishing(ctx, Principal{})
			return err
		}},
		{"unknown scheme", func() error {
			_, err := Open(ctx, "mysql://localhost/appv")
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.call(), ErrInvalid)
		})
	}
}

func testConflicts(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	mustVersion(t, db, ver(2, 1, "1.0.0.0"))
	mustIdentity(t, db, KindUser, "alice")
	cg, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg",
		Members: []GroupMember{{PackageID: guidN(1), VersionID: ver(1, 1, "").VersionID}}})
	ok(t, err)
	tests := []struct {
		name string
		call func() error
	}{
		{"same VersionId", func() error { return db.CreateVersion(ctx, ver(1, 1, "1.0.0.0")) }},
		{"same VersionId in another package", func() error {
			v := ver(1, 1, "1.0.0.0")
			v.PackageID = guidN(3)
			return db.CreateVersion(ctx, v)
		}},
		{"same user", func() error {
			_, err := db.CreateIdentity(ctx, Identity{Kind: KindUser, Name: "alice"})
			return err
		}},
		{"group VersionId unchanged", func() error {
			_, err := db.PutConnectionGroup(ctx, cg)
			return err
		}},
		{"group VersionId of another group", func() error {
			_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(51), VersionID: cg.VersionID, Name: "other",
				Members: []GroupMember{{PackageID: guidN(2)}}})
			return err
		}},
		{"remove a member package", func() error {
			_, err := db.RemovePackage(ctx, guidN(1))
			return err
		}},
		{"remove a pinned version", func() error {
			_, err := db.RemoveVersion(ctx, ver(1, 1, "").VersionID)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.call(), ErrConflict)
		})
	}
	// A user and a group may share a name: names are unique per kind.
	mustIdentity(t, db, KindGroup, "alice")
}

func testNotFound(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	u := mustIdentity(t, db, KindUser, "u")
	g := mustIdentity(t, db, KindGroup, "g")
	missing := guidN(999)
	tests := []struct {
		name string
		call func() error
	}{
		{"Version", func() error { _, err := db.Version(ctx, missing); return err }},
		{"LatestVersion", func() error { _, err := db.LatestVersion(ctx, missing); return err }},
		{"RemoveVersion", func() error { _, err := db.RemoveVersion(ctx, missing); return err }},
		{"RemovePackage", func() error { _, err := db.RemovePackage(ctx, missing); return err }},
		{"Identity", func() error { _, err := db.Identity(ctx, KindUser, "nobody"); return err }},
		{"Identity of another kind", func() error { _, err := db.Identity(ctx, KindMachine, "u"); return err }},
		{"IdentityByID", func() error { _, err := db.IdentityByID(ctx, 12345); return err }},
		{"RemoveIdentity", func() error { return db.RemoveIdentity(ctx, 12345) }},
		{"AddMember to no group", func() error { return db.AddMember(ctx, 12345, u.ID) }},
		{"AddMember no member", func() error { return db.AddMember(ctx, g.ID, 12345) }},
		{"RemoveMember not a member", func() error { return db.RemoveMember(ctx, g.ID, u.ID) }},
		{"CreateToken no identity", func() error { _, err := db.CreateToken(ctx, 12345, false, time.Time{}); return err }},
		{"Authenticate", func() error { _, err := db.Authenticate(ctx, "appv_nothing"); return err }},
		{"RevokeToken", func() error { return db.RevokeToken(ctx, 12345) }},
		{"Entitle no package", func() error { return db.Entitle(ctx, missing, u.ID) }},
		{"Entitle no identity", func() error { return db.Entitle(ctx, guidN(1), 12345) }},
		{"Unentitle", func() error { return db.Unentitle(ctx, guidN(1), u.ID) }},
		{"Entitlements", func() error { _, err := db.Entitlements(ctx, missing); return err }},
		{"ConnectionGroup", func() error { _, err := db.ConnectionGroup(ctx, missing); return err }},
		{"RemoveConnectionGroup", func() error { return db.RemoveConnectionGroup(ctx, missing) }},
		{"EntitleConnectionGroup", func() error { return db.EntitleConnectionGroup(ctx, missing, u.ID) }},
		{"UnentitleConnectionGroup", func() error { return db.UnentitleConnectionGroup(ctx, missing, u.ID) }},
		{"ConnectionGroupEntitlements", func() error { _, err := db.ConnectionGroupEntitlements(ctx, missing); return err }},
		{"group member package", func() error {
			_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg",
				Members: []GroupMember{{PackageID: missing}}})
			return err
		}},
		{"group member version", func() error {
			_, err := db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg",
				Members: []GroupMember{{PackageID: guidN(1), VersionID: missing}}})
			return err
		}},
		{"PutDynamicConfig no package", func() error { return db.PutDynamicConfig(ctx, missing, 0, ConfigUser, []byte("<x/>")) }},
		{"PutDynamicConfig no identity", func() error {
			return db.PutDynamicConfig(ctx, guidN(1), 12345, ConfigUser, []byte("<x/>"))
		}},
		{"DynamicConfig", func() error { _, err := db.DynamicConfig(ctx, guidN(1), 0, ConfigUser); return err }},
		{"RemoveDynamicConfig", func() error { return db.RemoveDynamicConfig(ctx, guidN(1), 0, ConfigUser) }},
		{"RecordClient no identity", func() error { return db.RecordClient(ctx, "host", 12345, time.Now()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.call(), ErrNotFound)
		})
	}
}
