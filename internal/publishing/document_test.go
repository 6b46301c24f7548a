package publishing

import "testing"

func TestCheckGroup(t *testing.T) {
	entitled := map[string]string{pkgA: verA, pkgB: verB}
	lookup := func(id string) (string, bool) {
		v, ok := entitled[id]
		return v, ok
	}
	tests := []struct {
		name    string
		members []Member
		want    string
	}{
		{"usable", []Member{{PackageID: pkgA, VersionID: verA}, {PackageID: pkgB, VersionID: verB}}, ""},
		{"any version", []Member{{PackageID: pkgA, VersionID: AnyVersion}}, ""},
		{"optional not entitled", []Member{{PackageID: pkgA, VersionID: verA}, {PackageID: pkgC, VersionID: verC, Optional: true}}, ""},
		{"optional at another version", []Member{{PackageID: pkgA, VersionID: verA}, {PackageID: pkgB, VersionID: verD, Optional: true}}, ""},
		{"empty", nil, "it has no packages"},
		{"not entitled", []Member{{PackageID: pkgA, VersionID: verA}, {PackageID: pkgC, VersionID: AnyVersion}}, "package " + pkgC + " is not entitled"},
		{"other version", []Member{{PackageID: pkgA, VersionID: verB}}, "package " + pkgA + " must be version " + verB + "; version " + verA + " is entitled"},
		{"twice", []Member{{PackageID: pkgA, VersionID: verA}, {PackageID: pkgA, VersionID: AnyVersion}}, "package " + pkgA + " is in it twice"},
		{"all optional", []Member{{PackageID: pkgA, VersionID: verA, Optional: true}}, "every package in it is optional; one at least must not be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Group{GroupID: grp1, VersionID: gv1, Members: tt.members}
			if got := CheckGroup(g, lookup); got != tt.want {
				t.Errorf("CheckGroup = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestCheckGroupsMixedMode checks a user's group against the user's and the
// machine's packages; the user's own entitlement wins over the machine's.
func TestCheckGroupsMixedMode(t *testing.T) {
	user := &Document{
		Packages: []Package{{PackageID: pkgA, VersionID: verA, URL: "/a"}},
		Groups: []Group{
			{GroupID: grp1, VersionID: gv1, Members: []Member{{PackageID: pkgB, VersionID: verB}, {PackageID: pkgA, VersionID: AnyVersion, Optional: true}}},
			{GroupID: grp2, VersionID: gv2, Members: []Member{{PackageID: pkgA, VersionID: verA}}},
		},
	}
	machine := &Document{Packages: []Package{
		{PackageID: pkgB, VersionID: verB, URL: "/b"},
		{PackageID: pkgA, VersionID: verD, URL: "/a-old"},
	}}
	user.CheckGroups()
	if user.Groups[0].Unusable == "" || user.Groups[1].Unusable != "" {
		t.Errorf("alone: %q, %q; want the first group unusable", user.Groups[0].Unusable, user.Groups[1].Unusable)
	}
	user.CheckGroups(nil, machine)
	if user.Groups[0].Unusable != "" || user.Groups[1].Unusable != "" {
		t.Errorf("with the machine: %q, %q; want both usable", user.Groups[0].Unusable, user.Groups[1].Unusable)
	}
}
