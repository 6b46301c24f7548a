package serverdb

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"
)

func (s *store) RecordClient(ctx context.Context, name string, identityID int64, lastSeen time.Time) error {
	const op = "record client"
	if err := checkName(name); err != nil {
		return s.wrap(op, name, err)
	}
	id := sql.NullInt64{Int64: identityID, Valid: identityID != 0}
	err := s.writeQuiet(ctx, func(c conn) error {
		if id.Valid {
			if err := requireIdentity(ctx, c, identityID); err != nil {
				return err
			}
		}
		_, err := c.exec(ctx, `INSERT INTO clients (name, identity_id, last_seen) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET identity_id = excluded.identity_id, last_seen = excluded.last_seen`,
			name, id, unixNano(lastSeen))
		return err
	})
	return s.wrap(op, name, err)
}

func (s *store) Clients(ctx context.Context) ([]Client, error) {
	const op = "list clients"
	rows, err := s.reader().query(ctx, `SELECT name, COALESCE(identity_id, 0), last_seen FROM clients`)
	if err != nil {
		return nil, s.wrap(op, "", err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		var (
			c    Client
			seen int64
		)
		if err := rows.Scan(&c.Name, &c.IdentityID, &seen); err != nil {
			return nil, s.wrap(op, "", err)
		}
		c.LastSeen = fromUnixNano(seen)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, "", err)
	}
	slices.SortFunc(out, func(a, b Client) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
