package publishing

import (
	"reflect"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	a := Package{PackageID: pkgA, VersionID: verA, URL: "/a.appv"}
	aNew := Package{PackageID: pkgA, VersionID: verB, URL: "/a2.appv"}
	aMoved := Package{PackageID: pkgA, VersionID: verA, URL: "https://mirror/a.appv"}
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	aConf := Package{PackageID: pkgA, VersionID: verA, URL: "/a.appv", DeploymentConfig: &Config{URL: "/c/a", ID: 1, Timestamp: ts}}
	aConf2 := Package{PackageID: pkgA, VersionID: verA, URL: "/a.appv", DeploymentConfig: &Config{URL: "/c/a", ID: 2, Timestamp: ts}}
	aConfSame := Package{PackageID: pkgA, VersionID: verA, URL: "/a.appv", DeploymentConfig: &Config{URL: "/c/a", ID: 1, Timestamp: ts.In(time.FixedZone("CET", 3600))}}
	aUser := Package{PackageID: pkgA, VersionID: verA, URL: "/a.appv", UserConfig: &Config{URL: "/u/a", ID: 1}}
	aUserConflict := Package{PackageID: pkgA, VersionID: verA, URL: "/a.appv", UserConfig: &Config{URL: "/u/a", ID: 1, Conflict: true}}
	b := Package{PackageID: pkgB, VersionID: verB, URL: "/b.appv"}
	c := Package{PackageID: pkgC, VersionID: verC, URL: "/c.appv"}
	d := Package{PackageID: pkgD, VersionID: verD, URL: "/d.appv"}

	g1 := Group{GroupID: grp1, VersionID: gv1, Name: "one", Members: []Member{{PackageID: pkgA, VersionID: verA}, {PackageID: pkgB, VersionID: AnyVersion}}}
	g1v2 := g1
	g1v2.VersionID = gv2
	g1Renamed := g1
	g1Renamed.Name = "uno"
	g1Priority := g1
	g1Priority.Priority = 5
	g1Reordered := g1
	g1Reordered.Members = []Member{g1.Members[1], g1.Members[0]}
	g1Optional := g1
	g1Optional.Members = []Member{g1.Members[0], {PackageID: pkgB, VersionID: AnyVersion, Optional: true}}
	g1Unusable := g1
	g1Unusable.Unusable = "package x is not entitled"
	g2 := Group{GroupID: grp2, VersionID: gv2, Members: []Member{{PackageID: pkgC, VersionID: verC}}}

	docOf := func(pkgs []Package, groups ...Group) *Document { return &Document{Packages: pkgs, Groups: groups} }
	tests := []struct {
		name     string
		old, new *Document
		want     Changes
	}{
		{"nothing before", nil, docOf([]Package{b, a}, g1), Changes{Added: []Package{a, b}, GroupsAdded: []Group{g1}}},
		{"nothing after", docOf([]Package{b, a}, g1), nil, Changes{Removed: []Package{a, b}, GroupsRemoved: []Group{g1}}},
		{"both empty", &Document{}, nil, Changes{}},
		{"unchanged", docOf([]Package{a, b}, g1), docOf([]Package{b, a}, g1), Changes{}},
		{"NoGroup is not compared", &Document{Packages: []Package{a}, NoGroup: []string{pkgA}}, &Document{Packages: []Package{a}}, Changes{}},
		{"added", docOf([]Package{a}), docOf([]Package{a, d, c}), Changes{Added: []Package{c, d}}},
		{"removed", docOf([]Package{d, a, c}), docOf([]Package{a}), Changes{Removed: []Package{c, d}}},
		{"upgraded", docOf([]Package{a, b}), docOf([]Package{aNew, b}), Changes{Upgraded: []PackageChange{{Old: a, New: aNew}}}},
		{"downgraded", docOf([]Package{aNew}), docOf([]Package{a}), Changes{Upgraded: []PackageChange{{Old: aNew, New: a}}}},
		{"moved", docOf([]Package{a}), docOf([]Package{aMoved}), Changes{Reconfigured: []PackageChange{{Old: a, New: aMoved}}}},
		{"configuration added", docOf([]Package{a}), docOf([]Package{aConf}), Changes{Reconfigured: []PackageChange{{Old: a, New: aConf}}}},
		{"configuration removed", docOf([]Package{aConf}), docOf([]Package{a}), Changes{Reconfigured: []PackageChange{{Old: aConf, New: a}}}},
		{"configuration changed", docOf([]Package{aConf}), docOf([]Package{aConf2}), Changes{Reconfigured: []PackageChange{{Old: aConf, New: aConf2}}}},
		{"same instant in another zone", docOf([]Package{aConf}), docOf([]Package{aConfSame}), Changes{}},
		{"user configuration conflict", docOf([]Package{aUser}), docOf([]Package{aUserConflict}), Changes{Reconfigured: []PackageChange{{Old: aUser, New: aUserConflict}}}},
		{"upgrade and configuration", docOf([]Package{aConf}), docOf([]Package{aNew}), Changes{Upgraded: []PackageChange{{Old: aConf, New: aNew}}}},
		{"group added", docOf(nil, g2), docOf(nil, g2, g1), Changes{GroupsAdded: []Group{g1}}},
		{"group removed", docOf(nil, g2, g1), docOf(nil, g1), Changes{GroupsRemoved: []Group{g2}}},
		{"group new version", docOf(nil, g1), docOf(nil, g1v2), Changes{GroupsChanged: []GroupChange{{Old: g1, New: g1v2}}}},
		{"group renamed", docOf(nil, g1), docOf(nil, g1Renamed), Changes{GroupsChanged: []GroupChange{{Old: g1, New: g1Renamed}}}},
		{"group priority", docOf(nil, g1), docOf(nil, g1Priority), Changes{GroupsChanged: []GroupChange{{Old: g1, New: g1Priority}}}},
		{"group order", docOf(nil, g1), docOf(nil, g1Reordered), Changes{GroupsChanged: []GroupChange{{Old: g1, New: g1Reordered}}}},
		{"member optional", docOf(nil, g1), docOf(nil, g1Optional), Changes{GroupsChanged: []GroupChange{{Old: g1, New: g1Optional}}}},
		{"group became unusable", docOf(nil, g1), docOf(nil, g1Unusable), Changes{GroupsChanged: []GroupChange{{Old: g1, New: g1Unusable}}}},
		{"everything", docOf([]Package{a, b, c}, g1, g2), docOf([]Package{aNew, d, c}, g1v2),
			Changes{
				Added: []Package{d}, Upgraded: []PackageChange{{Old: a, New: aNew}}, Removed: []Package{b},
				GroupsChanged: []GroupChange{{Old: g1, New: g1v2}}, GroupsRemoved: []Group{g2},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.old, tt.new)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff:\n got %+v\nwant %+v", got, tt.want)
			}
			if got.Empty() != reflect.DeepEqual(tt.want, Changes{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
		})
	}
}

// TestDiffParsed diffs two parsed documents: an upgrade published by the
// server, seen by the client.
func TestDiffParsed(t *testing.T) {
	old := sample()
	newer := sample()
	newer.Packages[1].VersionID = verD // pkgA upgraded
	newer.Groups[1].Members[0].VersionID = verD
	newer.Groups[1].VersionID = gv2
	parse := func(d *Document) *Document {
		body, err := Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := Diff(parse(old), parse(newer))
	if len(c.Upgraded) != 1 || c.Upgraded[0].New.PackageID != pkgA || c.Upgraded[0].New.VersionID != verD {
		t.Errorf("Upgraded = %+v; want %s to %s", c.Upgraded, pkgA, verD)
	}
	if len(c.GroupsChanged) != 1 || c.GroupsChanged[0].New.GroupID != grp1 || c.GroupsChanged[0].New.Unusable != "" {
		t.Errorf("GroupsChanged = %+v; want %s, usable", c.GroupsChanged, grp1)
	}
	if len(c.Added)+len(c.Removed)+len(c.Reconfigured)+len(c.GroupsAdded)+len(c.GroupsRemoved) != 0 {
		t.Errorf("unexpected changes %+v", c)
	}
}
