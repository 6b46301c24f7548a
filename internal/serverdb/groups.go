package serverdb

import (
	"cmp"
	"context"
	"database/sql"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
)

// checkGroup validates a connection group and returns it with its GUIDs in
// canonical form.
func checkGroup(g ConnectionGroup) (ConnectionGroup, error) {
	out := g
	var err error
	if out.GroupID, err = guid("GroupId", g.GroupID); err != nil {
		return out, err
	}
	if g.VersionID == "" {
		out.VersionID = appvpkg.NewGUID()
	} else if out.VersionID, err = guid("VersionId", g.VersionID); err != nil {
		return out, err
	}
	if err := checkName(g.Name); err != nil {
		return out, err
	}
	if g.Priority < math.MinInt32 || g.Priority > math.MaxInt32 {
		return out, invalidf("priority %d out of range", g.Priority)
	}
	if len(g.Members) == 0 {
		return out, invalidf("no members")
	}
	out.Members = make([]GroupMember, len(g.Members))
	seen := map[string]bool{}
	for i, m := range g.Members {
		if m.PackageID, err = guid("member PackageId", m.PackageID); err != nil {
			return out, err
		}
		if m.VersionID != "" {
			if m.VersionID, err = guid("member VersionId", m.VersionID); err != nil {
				return out, err
			}
		}
		if seen[m.PackageID] {
			return out, invalidf("package %s is a member twice", m.PackageID)
		}
		seen[m.PackageID] = true
		out.Members[i] = m
	}
	return out, nil
}

func (s *store) PutConnectionGroup(ctx context.Context, g ConnectionGroup) (ConnectionGroup, error) {
	const op = "put connection group"
	g, err := checkGroup(g)
	if err != nil {
		return ConnectionGroup{}, s.wrap(op, g.GroupID, err)
	}
	err = s.write(ctx, func(c conn) error {
		var owner string
		err := c.row(ctx, `SELECT group_id FROM connection_groups WHERE version_id = ?`, g.VersionID).Scan(&owner)
		switch {
		case err == nil && owner == g.GroupID:
			return conflictf("VersionId %s is the group's current one: a changed group needs a new one", g.VersionID)
		case err == nil:
			return conflictf("VersionId %s is connection group %s's", g.VersionID, owner)
		case !isNoRows(err):
			return err
		}
		for _, m := range g.Members {
			if err := requirePackage(ctx, c, m.PackageID); err != nil {
				return err
			}
			if m.VersionID == "" {
				continue
			}
			var pkg string
			err := c.row(ctx, `SELECT p.package_id`+versionsJoin+`WHERE v.version_id = ?`, m.VersionID).Scan(&pkg)
			switch {
			case isNoRows(err):
				return notFoundf("no version %s", m.VersionID)
			case err != nil:
				return err
			case pkg != m.PackageID:
				return invalidf("version %s is package %s's, not %s's", m.VersionID, pkg, m.PackageID)
			}
		}
		if _, err := c.exec(ctx, `INSERT INTO connection_groups (group_id, version_id, name, priority, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (group_id) DO UPDATE SET version_id = excluded.version_id, name = excluded.name,
				priority = excluded.priority, updated_at = excluded.updated_at`,
			g.GroupID, g.VersionID, g.Name, g.Priority, unixNano(time.Now())); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `DELETE FROM connection_group_members WHERE group_id = ?`, g.GroupID); err != nil {
			return err
		}
		for i, m := range g.Members {
			if _, err := c.exec(ctx, `INSERT INTO connection_group_members (group_id, position, package_id, version_id, optional)
				VALUES (?, ?, ?, ?, ?)`, g.GroupID, i, m.PackageID, nullString(m.VersionID), m.Optional); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return ConnectionGroup{}, s.wrap(op, g.GroupID, err)
	}
	return g, nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// groupsQuery selects connection groups with their members; where filters
// connection_groups g.
func groupsQuery(where string) string {
	return `SELECT g.group_id, g.version_id, g.name, g.priority,
			m.package_id, COALESCE(m.version_id, ''), m.optional
		FROM connection_groups g JOIN connection_group_members m ON m.group_id = g.group_id
		` + where + `
		ORDER BY g.group_id, m.position`
}

// readGroups runs a groupsQuery and returns the groups ordered by priority
// then GroupID.
func readGroups(ctx context.Context, c conn, query string, args ...any) ([]ConnectionGroup, error) {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ConnectionGroup
	for rows.Next() {
		var (
			g ConnectionGroup
			m GroupMember
		)
		if err := rows.Scan(&g.GroupID, &g.VersionID, &g.Name, &g.Priority, &m.PackageID, &m.VersionID, &m.Optional); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].GroupID != g.GroupID {
			out = append(out, g)
		}
		last := &out[len(out)-1]
		last.Members = append(last.Members, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b ConnectionGroup) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.GroupID, b.GroupID))
	})
	return out, nil
}

func (s *store) ConnectionGroup(ctx context.Context, groupID string) (ConnectionGroup, error) {
	const op = "get connection group"
	gid, err := guid("GroupId", groupID)
	if err != nil {
		return ConnectionGroup{}, s.wrap(op, groupID, err)
	}
	groups, err := readGroups(ctx, s.reader(), groupsQuery(`WHERE g.group_id = ?`), gid)
	if err == nil && len(groups) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return ConnectionGroup{}, s.wrap(op, gid, err)
	}
	return groups[0], nil
}

func (s *store) ConnectionGroups(ctx context.Context) ([]ConnectionGroup, error) {
	groups, err := readGroups(ctx, s.reader(), groupsQuery(""))
	return groups, s.wrap("list connection groups", "", err)
}

func (s *store) RemoveConnectionGroup(ctx context.Context, groupID string) error {
	const op = "remove connection group"
	gid, err := guid("GroupId", groupID)
	if err != nil {
		return s.wrap(op, groupID, err)
	}
	err = s.write(ctx, func(c conn) error {
		return c.execOne(ctx, `DELETE FROM connection_groups WHERE group_id = ?`, gid)
	})
	return s.wrap(op, gid, err)
}
