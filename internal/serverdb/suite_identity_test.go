package serverdb

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testIdentities(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	alice := mustIdentity(t, db, KindUser, "alice")
	staff := mustIdentity(t, db, KindGroup, "staff")
	pc := mustIdentity(t, db, KindMachine, "pc1.example.org")
	if alice.ID == 0 || staff.ID == alice.ID || pc.ID == staff.ID {
		t.Fatalf("IDs %d %d %d", alice.ID, staff.ID, pc.ID)
	}
	got, err := db.Identity(ctx, KindUser, "alice")
	ok(t, err)
	if got != alice {
		t.Errorf("Identity = %+v, want %+v", got, alice)
	}
	got, err = db.IdentityByID(ctx, pc.ID)
	ok(t, err)
	if got != pc {
		t.Errorf("IdentityByID = %+v, want %+v", got, pc)
	}
	_, err = db.Identity(ctx, KindUser, "Alice")
	wantErr(t, err, ErrNotFound) // names are case-sensitive

	all, err := db.Identities(ctx, "")
	ok(t, err)
	if !reflect.DeepEqual(all, []Identity{alice, staff, pc}) {
		t.Errorf("Identities = %+v", all)
	}
	users, err := db.Identities(ctx, KindUser)
	ok(t, err)
	if !reflect.DeepEqual(users, []Identity{alice}) {
		t.Errorf("Identities(user) = %+v", users)
	}

	// IDs are never reused.
	ok(t, db.RemoveIdentity(ctx, pc.ID))
	again := mustIdentity(t, db, KindMachine, "pc1.example.org")
	if again.ID <= pc.ID {
		t.Errorf("a new identity got ID %d after %d was removed", again.ID, pc.ID)
	}
}

func testMembership(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	alice := mustIdentity(t, db, KindUser, "alice")
	bob := mustIdentity(t, db, KindUser, "bob")
	pc := mustIdentity(t, db, KindMachine, "pc")
	g1 := mustIdentity(t, db, KindGroup, "g1")
	g2 := mustIdentity(t, db, KindGroup, "g2")
	ok(t, db.AddMember(ctx, g1.ID, alice.ID))
	ok(t, db.AddMember(ctx, g1.ID, alice.ID)) // twice is fine
	ok(t, db.AddMember(ctx, g2.ID, alice.ID))
	ok(t, db.AddMember(ctx, g1.ID, bob.ID))
	ok(t, db.AddMember(ctx, g2.ID, pc.ID))

	groups, err := db.Groups(ctx, alice.ID)
	ok(t, err)
	if !reflect.DeepEqual(groups, []Identity{g1, g2}) {
		t.Errorf("Groups(alice) = %+v", groups)
	}
	members, err := db.Members(ctx, g2.ID)
	ok(t, err)
	if !reflect.DeepEqual(members, []Identity{alice, pc}) {
		t.Errorf("Members(g2) = %+v", members)
	}
	ok(t, db.RemoveMember(ctx, g2.ID, alice.ID))
	groups, err = db.Groups(ctx, alice.ID)
	ok(t, err)
	if !reflect.DeepEqual(groups, []Identity{g1}) {
		t.Errorf("Groups(alice) after RemoveMember = %+v", groups)
	}
	ok(t, db.RemoveIdentity(ctx, g1.ID))
	groups, err = db.Groups(ctx, bob.ID)
	ok(t, err)
	if len(groups) != 0 {
		t.Errorf("removing a group left memberships: %+v", groups)
	}
}

func testTokensStoreOnlyHashes(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	alice := mustIdentity(t, db, KindUser, "alice")
	secret, err := db.CreateToken(ctx, alice.ID, true, time.Time{})
	ok(t, err)
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) < len(tokenPrefix)+43 {
		t.Fatalf("secret %q: want %s and 256 bits", secret, tokenPrefix)
	}
	other, err := db.CreateToken(ctx, alice.ID, false, time.Time{})
	ok(t, err)
	if other == secret {
		t.Fatal("two tokens with one secret")
	}

	// Every column of every token row: the hash is there, the secret is not.
	s := internal(t, db)
	rows, err := s.reader().query(ctx, `SELECT * FROM tokens`)
	ok(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	ok(t, err)
	want := sha256.Sum256([]byte(secret))
	var n int
	hashFound := false
	for rows.Next() {
		n++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		ok(t, rows.Scan(ptrs...))
		for i, v := range vals {
			var b []byte
			switch v := v.(type) {
			case []byte:
				b = v
			case string:
				b = []byte(v)
			default:
				b = []byte(fmt.Sprint(v))
			}
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(strings.TrimPrefix(secret, tokenPrefix))) {
				t.Errorf("column %s holds the secret", cols[i])
			}
			if cols[i] == "hash" && bytes.Equal(b, want[:]) {
				hashFound = true
			}
		}
	}
	ok(t, rows.Err())
	if n != 2 || !hashFound {
		t.Errorf("%d token rows, SHA-256 of the secret found: %v", n, hashFound)
	}

	p, err := db.Authenticate(ctx, secret)
	ok(t, err)
	if p.Identity != alice || !p.Admin {
		t.Errorf("Authenticate = %+v", p)
	}
	toks, err := db.Tokens(ctx, alice.ID)
	ok(t, err)
	if len(toks) != 2 || toks[0].ID != p.TokenID || !toks[0].Admin || toks[1].Admin || toks[0].CreatedAt.IsZero() {
		t.Errorf("Tokens = %+v", toks)
	}
	ok(t, db.RevokeToken(ctx, p.TokenID))
	_, err = db.Authenticate(ctx, secret)
	wantErr(t, err, ErrNotFound)
	_, err = db.Authenticate(ctx, other)
	ok(t, err)
	ok(t, db.RemoveIdentity(ctx, alice.ID))
	_, err = db.Authenticate(ctx, other)
	wantErr(t, err, ErrNotFound)
}

func testTokenExpiry(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	u := mustIdentity(t, db, KindUser, "u")
	now := time.Now()
	tests := []struct {
		name    string
		expires time.Time
		want    error
	}{
		{"never", time.Time{}, nil},
		{"in an hour", now.Add(time.Hour), nil},
		{"a minute ago", now.Add(-time.Minute), ErrExpired},
		{"last year", now.AddDate(-1, 0, 0), ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret, err := db.CreateToken(ctx, u.ID, false, tc.expires)
			ok(t, err)
			_, err = db.Authenticate(ctx, secret)
			wantErr(t, err, tc.want)
		})
	}
	toks, err := db.Tokens(ctx, u.ID)
	ok(t, err)
	if len(toks) != len(tests) || !toks[0].ExpiresAt.IsZero() || !toks[1].ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("Tokens = %+v", toks)
	}
}

func testAuthenticatePrincipal(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	alice := mustIdentity(t, db, KindUser, "alice")
	lonely := mustIdentity(t, db, KindUser, "lonely")
	pc := mustIdentity(t, db, KindMachine, "pc")
	g1 := mustIdentity(t, db, KindGroup, "g1")
	g2 := mustIdentity(t, db, KindGroup, "g2")
	mustIdentity(t, db, KindGroup, "g3")
	ok(t, db.AddMember(ctx, g2.ID, alice.ID))
	ok(t, db.AddMember(ctx, g1.ID, alice.ID))
	ok(t, db.AddMember(ctx, g1.ID, pc.ID))
	tests := []struct {
		name  string
		id    Identity
		admin bool
		want  Principal
	}{
		{"user in two groups", alice, false, Principal{Identity: alice, Groups: []Identity{g1, g2}}},
		{"admin without groups", lonely, true, Principal{Identity: lonely, Admin: true}},
		{"machine", pc, false, Principal{Identity: pc, Groups: []Identity{g1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret, err := db.CreateToken(ctx, tc.id.ID, tc.admin, time.Now().Add(time.Hour))
			ok(t, err)
			got, err := db.Authenticate(ctx, secret)
			ok(t, err)
			if got.TokenID == 0 {
				t.Error("no TokenID")
			}
			got.TokenID = 0
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Authenticate = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func testClients(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	pc := mustIdentity(t, db, KindMachine, "pc")
	t1 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ok(t, db.RecordClient(ctx, "pc.example.org", pc.ID, t1))
	ok(t, db.RecordClient(ctx, "b.example.org", 0, t1))
	ok(t, db.RecordClient(ctx, "pc.example.org", pc.ID, t1.Add(time.Minute)))
	got, err := db.Clients(ctx)
	ok(t, err)
	want := []Client{{"b.example.org", 0, t1}, {"pc.example.org", pc.ID, t1.Add(time.Minute)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Clients = %+v\nwant %+v", got, want)
	}
	ok(t, db.RemoveIdentity(ctx, pc.ID))
	got, err = db.Clients(ctx)
	ok(t, err)
	if len(got) != 2 || got[1].IdentityID != 0 {
		t.Errorf("Clients after removing the identity = %+v", got)
	}
}
