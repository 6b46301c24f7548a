package serverdb

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
)

// principalSet selects the identity IDs a principal acts as: itself and
// its groups. Its two placeholders both take the principal's ID.
const principalSet = `SELECT CAST(? AS BIGINT) UNION ALL SELECT m.group_id FROM memberships m WHERE m.member_id = ?`

// publishingQuery reads everything a Publication needs in one statement,
// so in one snapshot and, on PostgreSQL, one round trip. It is the union of
// three kinds of rows, told apart by the first column (part), with the
// columns t1... (text), n1... (integer), b (bytes) meaning:
//
//	part 0: the revision counter              n1 = value
//	part 1: an entitled package at its latest version, once per dynamic
//	        configuration file that may apply (the principal's, its
//	        groups', the default), or once with NULL configuration columns
//	        when none does; a package entitled several ways comes several
//	        times                             t1..t7 = package_id, name,
//	                                          version_id, version, location,
//	                                          content_key, sha256; n1 = size;
//	                                          n2, t8, b, n3, n4 = the
//	                                          configuration's identity_id,
//	                                          kind, xml, updated_at, serial
//	part 2: a member of an entitled connection group
//	                                          t1..t5 = group_id, version_id,
//	                                          name, member package_id,
//	                                          member version_id (NULL: any);
//	                                          n1 = priority, n2 = position,
//	                                          n3 = optional (0 or 1)
//
// Its placeholders all take the principal's ID. The first part gives the
// columns their types, as PostgreSQL needs (the blob's comes from part 1).
const publishingQuery = `SELECT 0, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
		CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), value,
		CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS TEXT), NULL, CAST(NULL AS BIGINT)
	FROM revision WHERE id = 1
UNION ALL
SELECT 1, p.package_id, p.name, v.version_id, v.version, v.location, v.content_key, v.sha256, v.size,
		d.identity_id, d.updated_at, d.kind, d.xml, d.serial
	FROM entitlements e
	JOIN packages p ON p.id = e.package
	JOIN versions v ON v.id = p.latest_version
	LEFT JOIN dynamic_configs d ON d.package = e.package
		AND d.identity_id IN (SELECT 0 UNION ALL ` + principalSet + `)
	WHERE e.identity_id IN (` + principalSet + `)
UNION ALL
SELECT 2, g.group_id, g.version_id, g.name, m.package_id, m.version_id, NULL, NULL, g.priority,
		m.position, CASE WHEN m.optional THEN 1 ELSE 0 END, NULL, NULL, NULL
	FROM connection_groups g
	JOIN connection_group_members m ON m.group_id = g.group_id
	WHERE g.group_id IN (SELECT ce.group_id FROM connection_group_entitlements ce
		WHERE ce.identity_id IN (` + principalSet + `))`

func (s *store) Publishing(ctx context.Context, p Principal) (Publication, error) {
	const op = "publishing for"
	id := p.Identity.ID
	if id == 0 {
		return Publication{}, s.wrap(op, p.Identity.Name, invalidf("no identity"))
	}
	pub, err := readPublication(ctx, s.reader(), id)
	if err != nil {
		return Publication{}, s.wrap(op, idString(id), err)
	}
	pub.Global = p.Identity.Kind == KindMachine
	return pub, nil
}

// readPublication runs publishingQuery for identity id.
func readPublication(ctx context.Context, c conn, id int64) (Publication, error) {
	rows, err := c.query(ctx, publishingQuery, id, id, id, id, id, id)
	if err != nil {
		return Publication{}, err
	}
	defer rows.Close()
	var (
		pub    Publication
		rev    int64
		pkgs   []PublishedPackage
		index  = map[string]int{}
		groups = map[string]*ConnectionGroup{}
		pos    = map[string][]int64{} // group_id -> its members' positions
	)
	for rows.Next() {
		var (
			part           int
			t              [8]sql.NullString
			n1, n2, n3, n4 sql.NullInt64
			b              []byte
		)
		if err := rows.Scan(&part, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &n1, &n2, &n3, &t[7], &b, &n4); err != nil {
			return Publication{}, err
		}
		switch part {
		case 0:
			rev = n1.Int64
		case 1:
			i, ok := index[t[0].String]
			if !ok {
				i = len(pkgs)
				index[t[0].String] = i
				pkgs = append(pkgs, PublishedPackage{PackageID: t[0].String, Name: t[1].String, VersionID: t[2].String,
					Version: t[3].String, Location: t[4].String, ContentKey: t[5].String, SHA256: t[6].String, Size: n1.Int64})
			}
			if n2.Valid {
				offerConfig(&pkgs[i], &DynamicConfig{PackageID: t[0].String, IdentityID: n2.Int64, Kind: t[7].String, XML: b,
					UpdatedAt: fromUnixNano(n3.Int64), Serial: n4.Int64}, id)
			}
		case 2:
			g := groups[t[0].String]
			if g == nil {
				g = &ConnectionGroup{GroupID: t[0].String, VersionID: t[1].String, Name: t[2].String, Priority: int(n1.Int64)}
				groups[g.GroupID] = g
			}
			g.Members = append(g.Members, GroupMember{PackageID: t[3].String, VersionID: t[4].String, Optional: n3.Int64 != 0})
			pos[g.GroupID] = append(pos[g.GroupID], n2.Int64)
		}
	}
	if err := rows.Err(); err != nil {
		return Publication{}, err
	}
	if rev == 0 {
		return Publication{}, errors.New("no revision counter")
	}
	pub.Revision = Tag(id, rev)
	slices.SortFunc(pkgs, func(a, b PublishedPackage) int { return strings.Compare(a.PackageID, b.PackageID) })
	pub.Packages = pkgs
	sorted := make([]ConnectionGroup, 0, len(groups))
	for gid, g := range groups {
		sortMembers(g.Members, pos[gid])
		sorted = append(sorted, *g)
	}
	slices.SortFunc(sorted, func(a, b ConnectionGroup) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.GroupID, b.GroupID))
	})
	pub.ConnectionGroups = resolveGroups(sorted, pkgs)
	return pub, nil
}

// sortMembers puts members in the order of their positions.
func sortMembers(members []GroupMember, positions []int64) {
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(positions[a], positions[b]) })
	sorted := make([]GroupMember, len(members))
	for i, j := range order {
		sorted[i] = members[j]
	}
	copy(members, sorted)
}

// offerConfig keeps d as p's configuration of its kind if it ranks before
// the one p has: per kind, the principal's own file wins, then its groups'
// with the lowest group ID, then the package default.
func offerConfig(p *PublishedPackage, d *DynamicConfig, principal int64) {
	slot := &p.UserConfig
	if d.Kind == ConfigDeployment {
		slot = &p.DeploymentConfig
	}
	if *slot == nil || configRank(d.IdentityID, principal) < configRank((*slot).IdentityID, principal) {
		*slot = d
	}
}

// configRank orders the dynamic configuration files that may apply to
// principal: lower wins. Its own file comes first, then groups' by ID, then
// the default (identity 0).
func configRank(identityID, principal int64) int64 {
	switch identityID {
	case principal:
		return -1
	case 0:
		return 1<<63 - 1
	}
	return identityID
}

// resolveGroups keeps the connection groups whose required members are
// all published, resolving each member to a version: the pinned one, or
// the published (latest) one for any-version members. Optional members
// that are not published are left out.
func resolveGroups(groups []ConnectionGroup, pkgs []PublishedPackage) []PublishedGroup {
	latest := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		latest[p.PackageID] = p.VersionID
	}
	var out []PublishedGroup
next:
	for _, g := range groups {
		pg := PublishedGroup{GroupID: g.GroupID, VersionID: g.VersionID, Name: g.Name, Priority: g.Priority}
		for _, m := range g.Members {
			v, ok := latest[m.PackageID]
			switch {
			case !ok && m.Optional:
				continue
			case !ok:
				continue next
			}
			pm := PublishedMember{PackageID: m.PackageID, VersionID: m.VersionID, Optional: m.Optional}
			if m.VersionID == "" {
				pm.VersionID, pm.AnyVersion = v, true
			}
			pg.Members = append(pg.Members, pm)
		}
		out = append(out, pg)
	}
	return out
}
