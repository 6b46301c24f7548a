package publishing

import (
	"fmt"
	"slices"
	"time"
)

// Protocol is the only protocol version this package writes and reads, the
// value of <Publishing Protocol>. MS-VAPR says the value MUST be "2.0".
const Protocol = "2.0"

// AnyVersion as a Member's VersionID means that any version of the package
// will do (App-V's VersionOptional="true"; "*" as in App-V's connection group
// descriptors).
const AnyVersion = "*"

// Document is App-V's publishing document: what one identity (a user or a
// machine) is entitled to.
//
// GUIDs are in App-V's lower-case form without braces. Parse leaves every
// field normalized that way; Marshal requires it.
type Document struct {
	// Protocol is "2.0". Marshal writes "2.0" when it is empty.
	Protocol string
	// Packages are the package versions the identity is entitled to, at most
	// one version per PackageID.
	Packages []Package
	// NoGroup lists the PackageIDs of the packages that belong to no group
	// of the document (App-V's <NoGroup>). appv's client does not act on it:
	// every package in Packages is added and published. SetNoGroup fills it.
	NoGroup []string
	// Groups are the connection groups the identity is entitled to.
	Groups []Group
}

// Package is one entitled package version (<Packages>/<Package>).
type Package struct {
	// PackageID is the package's appv:PackageId, the same for every version.
	PackageID string
	// VersionID is this version's appv:VersionId.
	VersionID string
	// URL is where the package's bytes are (PackageUrl): an http, https or
	// file URL, a UNC path (\\server\share\…, as App-V's servers write), or
	// a reference relative to the publishing URL (ParseWithBase resolves it).
	URL string
	// DeploymentConfig is the package's dynamic deployment configuration
	// (DeploymentConfig.xml) for this identity, nil for none.
	DeploymentConfig *Config
	// UserConfig is the package's dynamic user configuration (UserConfig.xml)
	// for this identity, nil for none.
	UserConfig *Config
}

// Config refers to a dynamic configuration document (<DeploymentConfiguration>
// or <UserConfiguration> in a <Package>).
type Config struct {
	// URL is where to GET the document (the Path attribute): in App-V's
	// documents a server-relative URL, resolved by ParseWithBase.
	URL string
	// ID is the ConfigurationId, 0 to 65535. The server increases it each
	// time the configuration changes; a client fetches the document again
	// when it changes.
	ID int
	// Timestamp is when the configuration last changed on the server (UTC,
	// to 100 ns); the zero time when unknown (the attribute is then left out).
	Timestamp time.Time
	// Conflict is App-V's UserConfiguration Conflict flag: the user is given
	// more than one configuration for the package. It is false for
	// deployment configurations.
	Conflict bool
}

// Group is an entitled connection group (<Groups>/<Group>): packages that run
// in one virtual environment, earlier members winning conflicts.
type Group struct {
	// GroupID identifies the group across its versions.
	GroupID string
	// VersionID is new each time the group changes.
	VersionID string
	// Name is the group's display name.
	Name string
	// Priority, 0 to 255, decides between groups that contain the same
	// package (App-V: the lower number wins).
	Priority int
	// Members are the group's packages, in the group's order.
	Members []Member
	// Unusable, when not empty, says why a client cannot run the group with
	// the packages the document entitles (see CheckGroup). Parse sets it;
	// Marshal does not write it.
	Unusable string
}

// Member is one package of a connection group.
type Member struct {
	// PackageID is the member package's PackageId.
	PackageID string
	// VersionID is the version the group requires, or AnyVersion.
	VersionID string
	// Optional is App-V's PackageOptional: the group runs without this
	// package when the identity is not entitled to it.
	Optional bool
}

// SetNoGroup sets d.NoGroup to the PackageIDs of d.Packages that are members
// of none of d.Groups, sorted, as App-V's publishing servers write <NoGroup>.
func (d *Document) SetNoGroup() {
	inGroup := make(map[string]bool)
	for _, g := range d.Groups {
		for _, m := range g.Members {
			inGroup[m.PackageID] = true
		}
	}
	d.NoGroup = d.NoGroup[:0]
	for _, p := range d.Packages {
		if !inGroup[p.PackageID] {
			d.NoGroup = append(d.NoGroup, p.PackageID)
		}
	}
	slices.Sort(d.NoGroup)
}

// CheckGroups sets the Unusable reason of each of d's groups, with CheckGroup,
// against the packages of d and of others. A user's document may hold a
// group whose members are published to the machine (App-V's mixed-mode
// connection groups): check it with the machine's document among others.
func (d *Document) CheckGroups(others ...*Document) {
	entitled := make(map[string]string, len(d.Packages))
	for _, o := range append([]*Document{d}, others...) {
		if o == nil {
			continue
		}
		for _, p := range o.Packages {
			if _, ok := entitled[p.PackageID]; !ok {
				entitled[p.PackageID] = p.VersionID
			}
		}
	}
	lookup := func(id string) (string, bool) {
		v, ok := entitled[id]
		return v, ok
	}
	for i := range d.Groups {
		d.Groups[i].Unusable = CheckGroup(&d.Groups[i], lookup)
	}
}

// CheckGroup returns why a client cannot run g, or "" when it can. entitled
// returns the VersionID of the package with the given PackageID that the
// identity is entitled to, and false when there is none. The rules:
//   - a group has at least one package, none twice, and at least one that is
//     not optional (App-V requires a mandatory package);
//   - every package that is not optional is entitled, at the version the
//     group names unless it names AnyVersion.
//
// An optional package that is not entitled (or not at the version named) is
// left out of the group, which runs without it.
func CheckGroup(g *Group, entitled func(packageID string) (versionID string, ok bool)) string {
	if len(g.Members) == 0 {
		return "it has no packages"
	}
	seen := make(map[string]bool, len(g.Members))
	mandatory := false
	for _, m := range g.Members {
		if seen[m.PackageID] {
			return fmt.Sprintf("package %s is in it twice", m.PackageID)
		}
		seen[m.PackageID] = true
		if m.Optional {
			continue
		}
		mandatory = true
		v, ok := entitled(m.PackageID)
		switch {
		case !ok:
			return fmt.Sprintf("package %s is not entitled", m.PackageID)
		case m.VersionID != AnyVersion && v != m.VersionID:
			return fmt.Sprintf("package %s must be version %s; version %s is entitled", m.PackageID, m.VersionID, v)
		}
	}
	if !mandatory {
		return "every package in it is optional; one at least must not be"
	}
	return ""
}
