package publishing

import (
	"cmp"
	"slices"
)

// Changes is what a refresh changes: how the document a client applied last
// differs from the one it has just received. Every list is sorted by
// PackageID or GroupID.
type Changes struct {
	// Added are packages the identity is newly entitled to.
	Added []Package
	// Upgraded are packages entitled at another version: the client adds
	// the new version beside the old one and switches to it. (App-V has no
	// order between versions; a server may go back to an older one.)
	Upgraded []PackageChange
	// Reconfigured are packages entitled at the same version whose URL or
	// configuration references changed.
	Reconfigured []PackageChange
	// Removed are packages the identity is no longer entitled to.
	Removed []Package

	// GroupsAdded are connection groups the identity is newly entitled to.
	GroupsAdded []Group
	// GroupsChanged are groups whose version, name, priority, members or
	// usability changed.
	GroupsChanged []GroupChange
	// GroupsRemoved are groups the identity is no longer entitled to.
	GroupsRemoved []Group
}

// PackageChange is a package in the old and in the new document.
type PackageChange struct {
	Old, New Package
}

// GroupChange is a group in the old and in the new document.
type GroupChange struct {
	Old, New Group
}

// Empty reports whether nothing changed.
func (c *Changes) Empty() bool {
	return len(c.Added)+len(c.Upgraded)+len(c.Reconfigured)+len(c.Removed)+
		len(c.GroupsAdded)+len(c.GroupsChanged)+len(c.GroupsRemoved) == 0
}

// Diff compares the document a client applied last (old; nil for none) with
// a new one (nil stands for an empty document). Packages are matched by
// PackageID and groups by GroupID; NoGroup is not compared (a client acts
// on Packages). A client applies the changes in this order, so that no
// group is enabled over packages it does not have and no package is removed
// from under a group:
//  1. disable GroupsRemoved and the Old groups of GroupsChanged;
//  2. add and publish Added, the New versions of Upgraded, and Reconfigured
//     (fetching their configurations again);
//  3. enable GroupsAdded and the New groups of GroupsChanged that are usable;
//  4. unpublish Removed and the Old versions of Upgraded.
func Diff(old, new *Document) Changes {
	if old == nil {
		old = &Document{}
	}
	if new == nil {
		new = &Document{}
	}
	var c Changes
	oldPkgs := make(map[string]*Package, len(old.Packages))
	for i := range old.Packages {
		oldPkgs[old.Packages[i].PackageID] = &old.Packages[i]
	}
	for _, n := range new.Packages {
		o, ok := oldPkgs[n.PackageID]
		switch {
		case !ok:
			c.Added = append(c.Added, n)
		case o.VersionID != n.VersionID:
			c.Upgraded = append(c.Upgraded, PackageChange{Old: *o, New: n})
		case !samePackage(o, &n):
			c.Reconfigured = append(c.Reconfigured, PackageChange{Old: *o, New: n})
		}
		delete(oldPkgs, n.PackageID)
	}
	for _, o := range old.Packages {
		if _, gone := oldPkgs[o.PackageID]; gone {
			c.Removed = append(c.Removed, o)
		}
	}

	oldGroups := make(map[string]*Group, len(old.Groups))
	for i := range old.Groups {
		oldGroups[old.Groups[i].GroupID] = &old.Groups[i]
	}
	for _, n := range new.Groups {
		o, ok := oldGroups[n.GroupID]
		switch {
		case !ok:
			c.GroupsAdded = append(c.GroupsAdded, n)
		case !sameGroup(o, &n):
			c.GroupsChanged = append(c.GroupsChanged, GroupChange{Old: *o, New: n})
		}
		delete(oldGroups, n.GroupID)
	}
	for _, o := range old.Groups {
		if _, gone := oldGroups[o.GroupID]; gone {
			c.GroupsRemoved = append(c.GroupsRemoved, o)
		}
	}

	byPkg := func(a, b Package) int { return cmp.Compare(a.PackageID, b.PackageID) }
	byPkgChange := func(a, b PackageChange) int { return cmp.Compare(a.New.PackageID, b.New.PackageID) }
	byGroup := func(a, b Group) int { return cmp.Compare(a.GroupID, b.GroupID) }
	slices.SortFunc(c.Added, byPkg)
	slices.SortFunc(c.Upgraded, byPkgChange)
	slices.SortFunc(c.Reconfigured, byPkgChange)
	slices.SortFunc(c.Removed, byPkg)
	slices.SortFunc(c.GroupsAdded, byGroup)
	slices.SortFunc(c.GroupsChanged, func(a, b GroupChange) int { return cmp.Compare(a.New.GroupID, b.New.GroupID) })
	slices.SortFunc(c.GroupsRemoved, byGroup)
	return c
}

// samePackage reports whether two entitlements of one package version are
// the same: URL and configuration references.
func samePackage(a, b *Package) bool {
	return a.URL == b.URL && sameConfig(a.DeploymentConfig, b.DeploymentConfig) && sameConfig(a.UserConfig, b.UserConfig)
}

func sameConfig(a, b *Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.URL == b.URL && a.ID == b.ID && a.Timestamp.Equal(b.Timestamp) && a.Conflict == b.Conflict
}

// sameGroup reports whether two versions of a group are the same in every
// respect, usability included.
func sameGroup(a, b *Group) bool {
	return a.VersionID == b.VersionID && a.Name == b.Name && a.Priority == b.Priority &&
		a.Unusable == b.Unusable && slices.Equal(a.Members, b.Members)
}
