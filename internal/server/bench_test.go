package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/appv/appv/internal/serverdb"
)

// BenchmarkRefresh measures a publishing refresh through the handler
// (without the network): 1,000 users in 100 groups, 1,000 packages, each
// group entitled to 10. "unchanged" sends the ETag the client holds (304),
// "full" does not.
func BenchmarkRefresh(b *testing.B) {
	ctx := context.Background()
	db, err := serverdb.Open(ctx, "sqlite://"+b.TempDir()+"/appv.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	const users, groups, packages = 1000, 100, 1000
	var gids []int64
	for i := range groups {
		g, err := db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindGroup, Name: fmt.Sprint("g", i)})
		if err != nil {
			b.Fatal(err)
		}
		gids = append(gids, g.ID)
	}
	for i := range packages {
		v := serverdb.Version{PackageID: guid(i + 1), VersionID: guid(100000 + i), Name: fmt.Sprint("P", i), Version: "1.0.0.0",
			ContentKey: fmt.Sprintf("%064x", i), Size: 1 << 20}
		if err := db.CreateVersion(ctx, v); err != nil {
			b.Fatal(err)
		}
		if err := db.Entitle(ctx, v.PackageID, gids[i%groups]); err != nil {
			b.Fatal(err)
		}
	}
	secrets := make([]string, users)
	for i := range users {
		u, err := db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindUser, Name: fmt.Sprint("u", i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.AddMember(ctx, gids[i%groups], u.ID); err != nil {
			b.Fatal(err)
		}
		if secrets[i], err = db.CreateToken(ctx, u.ID, false, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(ctx, Options{DB: db, DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	h := srv.Handler()
	etags := make([]string, users)
	for i, s := range secrets {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+s)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		etags[i] = w.Header().Get("ETag")
	}
	for _, unchanged := range []bool{true, false} {
		name := map[bool]string{true: "unchanged", false: "full"}[unchanged]
		b.Run(name, func(b *testing.B) {
			want := map[bool]int{true: http.StatusNotModified, false: http.StatusOK}[unchanged]
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					i := rng.IntN(users)
					r := httptest.NewRequest("GET", "/", nil)
					r.Header.Set("Authorization", "Bearer "+secrets[i])
					if unchanged {
						r.Header.Set("If-None-Match", etags[i])
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != want {
						b.Errorf("%d, want %d", w.Code, want)
						return
					}
				}
			})
		})
	}
}
