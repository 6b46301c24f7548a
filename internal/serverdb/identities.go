package serverdb

import (
	"cmp"
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// maxName bounds identity and connection group names.
const maxName = 1024

func checkKind(k Kind) error {
	switch k {
	case KindUser, KindGroup, KindMachine:
		return nil
	}
	return invalidf("identity kind %q is not user, group or machine", k)
}

func checkName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalidf("empty name")
	case len(name) > maxName:
		return invalidf("name longer than %d bytes", maxName)
	}
	return nil
}

func idString(id int64) string { return "#" + strconv.FormatInt(id, 10) }

func (s *store) CreateIdentity(ctx context.Context, id Identity) (Identity, error) {
	op := "create " + string(id.Kind)
	if err := cmp.Or(checkKind(id.Kind), checkName(id.Name)); err != nil {
		return Identity{}, s.wrap("create identity", id.Name, err)
	}
	out := Identity{Kind: id.Kind, Name: id.Name}
	err := s.write(ctx, func(c conn) error {
		if found, err := c.exists(ctx, `SELECT 1 FROM identities WHERE kind = ? AND name = ?`, string(id.Kind), id.Name); err != nil || found {
			return cmp.Or(err, conflictf("already exists"))
		}
		return c.row(ctx, `INSERT INTO identities (kind, name, created_at) VALUES (?, ?, ?) RETURNING id`,
			string(id.Kind), id.Name, unixNano(time.Now())).Scan(&out.ID)
	})
	if err != nil {
		return Identity{}, s.wrap(op, id.Name, err)
	}
	return out, nil
}

func scanIdentities(rows *sql.Rows, err error) ([]Identity, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Identity
	for rows.Next() {
		var i Identity
		if err := rows.Scan(&i.ID, &i.Kind, &i.Name); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

func (s *store) Identity(ctx context.Context, kind Kind, name string) (Identity, error) {
	op := "get " + string(kind)
	if err := checkKind(kind); err != nil {
		return Identity{}, s.wrap("get identity", name, err)
	}
	i := Identity{Kind: kind, Name: name}
	err := s.reader().row(ctx, `SELECT id FROM identities WHERE kind = ? AND name = ?`, string(kind), name).Scan(&i.ID)
	if err != nil {
		return Identity{}, s.wrap(op, name, err)
	}
	return i, nil
}

func (s *store) IdentityByID(ctx context.Context, id int64) (Identity, error) {
	i := Identity{ID: id}
	err := s.reader().row(ctx, `SELECT kind, name FROM identities WHERE id = ?`, id).Scan(&i.Kind, &i.Name)
	if err != nil {
		return Identity{}, s.wrap("get identity", idString(id), err)
	}
	return i, nil
}

func (s *store) Identities(ctx context.Context, kind Kind) ([]Identity, error) {
	const op = "list identities"
	if kind == "" {
		out, err := scanIdentities(s.reader().query(ctx, `SELECT id, kind, name FROM identities ORDER BY id`))
		return out, s.wrap(op, "", err)
	}
	if err := checkKind(kind); err != nil {
		return nil, s.wrap(op, "", err)
	}
	out, err := scanIdentities(s.reader().query(ctx, `SELECT id, kind, name FROM identities WHERE kind = ? ORDER BY id`, string(kind)))
	return out, s.wrap(op, "", err)
}

func (s *store) RemoveIdentity(ctx context.Context, id int64) error {
	err := s.write(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `DELETE FROM dynamic_configs WHERE identity_id = ?`, id); err != nil {
			return err
		}
		return c.execOne(ctx, `DELETE FROM identities WHERE id = ?`, id)
	})
	return s.wrap("remove identity", idString(id), err)
}

// kindOf returns an identity's kind; ErrNotFound if there is none.
func kindOf(ctx context.Context, c conn, id int64) (Kind, error) {
	var k Kind
	err := c.row(ctx, `SELECT kind FROM identities WHERE id = ?`, id).Scan(&k)
	if isNoRows(err) {
		return "", notFoundf("no identity %s", idString(id))
	}
	return k, err
}

func (s *store) AddMember(ctx context.Context, group, member int64) error {
	err := s.write(ctx, func(c conn) error {
		gk, err := kindOf(ctx, c, group)
		if err != nil {
			return err
		}
		mk, err := kindOf(ctx, c, member)
		if err != nil {
			return err
		}
		switch {
		case gk != KindGroup:
			return invalidf("%s %s is not a group", gk, idString(group))
		case mk == KindGroup:
			return invalidf("groups are flat: group %s cannot be a member", idString(member))
		}
		_, err = c.exec(ctx, `INSERT INTO memberships (member_id, group_id) VALUES (?, ?)
			ON CONFLICT (member_id, group_id) DO NOTHING`, member, group)
		return err
	})
	return s.wrap("add member", idString(member)+" to "+idString(group), err)
}

func (s *store) RemoveMember(ctx context.Context, group, member int64) error {
	err := s.write(ctx, func(c conn) error {
		return c.execOneOr(ctx, notFoundf("not a member"), `DELETE FROM memberships WHERE member_id = ? AND group_id = ?`, member, group)
	})
	return s.wrap("remove member", idString(member)+" from "+idString(group), err)
}

func (s *store) Groups(ctx context.Context, identityID int64) ([]Identity, error) {
	out, err := scanIdentities(s.reader().query(ctx, `SELECT g.id, g.kind, g.name
		FROM memberships m JOIN identities g ON g.id = m.group_id WHERE m.member_id = ? ORDER BY g.id`, identityID))
	return out, s.wrap("list groups of", idString(identityID), err)
}

func (s *store) Members(ctx context.Context, groupID int64) ([]Identity, error) {
	out, err := scanIdentities(s.reader().query(ctx, `SELECT i.id, i.kind, i.name
		FROM memberships m JOIN identities i ON i.id = m.member_id WHERE m.group_id = ? ORDER BY i.id`, groupID))
	return out, s.wrap("list members of", idString(groupID), err)
}
