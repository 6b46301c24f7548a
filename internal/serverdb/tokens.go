package serverdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"time"
)

// tokenPrefix starts every secret, so that secret scanners and people can
// tell what it is.
const tokenPrefix = "appv_"

// hashSecret is what the tokens table keeps of a secret. A secret holds 256
// random bits, so a fast unsalted hash is enough: nothing can be guessed,
// and looking the hash up by index leaks nothing about the secret.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func (s *store) CreateToken(ctx context.Context, identityID int64, admin bool, expires time.Time) (string, error) {
	const op = "create token for"
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	err := s.writeQuiet(ctx, func(c conn) error {
		k, err := kindOf(ctx, c, identityID)
		if err != nil {
			return err
		}
		if k == KindGroup {
			return invalidf("groups cannot hold tokens")
		}
		_, err = c.exec(ctx, `INSERT INTO tokens (hash, identity_id, admin, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			hashSecret(secret), identityID, admin, unixNano(time.Now()), unixNano(expires))
		return err
	})
	if err != nil {
		return "", s.wrap(op, idString(identityID), err)
	}
	return secret, nil
}

func (s *store) Authenticate(ctx context.Context, secret string) (Principal, error) {
	const op = "authenticate"
	rows, err := s.reader().query(ctx, `SELECT t.id, t.admin, t.expires_at, i.id, i.kind, i.name, g.id, g.kind, g.name
		FROM tokens t
		JOIN identities i ON i.id = t.identity_id
		LEFT JOIN memberships m ON m.member_id = i.id
		LEFT JOIN identities g ON g.id = m.group_id
		WHERE t.hash = ?
		ORDER BY g.id`, hashSecret(secret))
	if err != nil {
		return Principal{}, s.wrap(op, "", err)
	}
	defer rows.Close()
	var (
		p       Principal
		expires int64
		found   bool
	)
	for rows.Next() {
		var (
			gid         sql.NullInt64
			gkind, name sql.NullString
		)
		if err := rows.Scan(&p.TokenID, &p.Admin, &expires, &p.Identity.ID, &p.Identity.Kind, &p.Identity.Name,
			&gid, &gkind, &name); err != nil {
			return Principal{}, s.wrap(op, "", err)
		}
		found = true
		if gid.Valid {
			p.Groups = append(p.Groups, Identity{ID: gid.Int64, Kind: Kind(gkind.String), Name: name.String})
		}
	}
	if err := rows.Err(); err != nil {
		return Principal{}, s.wrap(op, "", err)
	}
	switch {
	case !found:
		return Principal{}, s.wrap(op, "", notFoundf("unknown token"))
	case expires != 0 && !time.Now().Before(fromUnixNano(expires)):
		return Principal{}, s.wrap(op, "token "+idString(p.TokenID), ErrExpired)
	}
	return p, nil
}

func (s *store) Tokens(ctx context.Context, identityID int64) ([]Token, error) {
	const op = "list tokens of"
	rows, err := s.reader().query(ctx, `SELECT id, admin, created_at, expires_at FROM tokens WHERE identity_id = ? ORDER BY id`, identityID)
	if err != nil {
		return nil, s.wrap(op, idString(identityID), err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t := Token{IdentityID: identityID}
		var created, expires int64
		if err := rows.Scan(&t.ID, &t.Admin, &created, &expires); err != nil {
			return nil, s.wrap(op, idString(identityID), err)
		}
		t.CreatedAt, t.ExpiresAt = fromUnixNano(created), fromUnixNano(expires)
		out = append(out, t)
	}
	return out, s.wrap(op, idString(identityID), rows.Err())
}

func (s *store) RevokeToken(ctx context.Context, tokenID int64) error {
	err := s.writeQuiet(ctx, func(c conn) error {
		return c.execOne(ctx, `DELETE FROM tokens WHERE id = ?`, tokenID)
	})
	return s.wrap("revoke token", idString(tokenID), err)
}
