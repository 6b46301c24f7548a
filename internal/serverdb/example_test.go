package serverdb_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/appv/appv/internal/serverdb"
)

// A package is imported, entitled to a group, and a member of the group
// refreshes.
func Example() {
	ctx := context.Background()
	db, err := serverdb.Open(ctx, "sqlite::memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	err = db.CreateVersion(ctx, serverdb.Version{
		PackageID: "3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b",
		VersionID: "8e2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a",
		Name:      "Editor",
		Version:   "1.2.0.0",
		Location:  "https://content.example.org/editor.appv",
	})
	if err != nil {
		log.Fatal(err)
	}
	staff, _ := db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindGroup, Name: "staff"})
	alice, _ := db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindUser, Name: "alice"})
	if err := db.AddMember(ctx, staff.ID, alice.ID); err != nil {
		log.Fatal(err)
	}
	if err := db.Entitle(ctx, "3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b", staff.ID); err != nil {
		log.Fatal(err)
	}
	secret, err := db.CreateToken(ctx, alice.ID, false, time.Now().Add(24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}

	// The refresh.
	p, err := db.Authenticate(ctx, secret)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := db.Publishing(ctx, p)
	if err != nil {
		log.Fatal(err)
	}
	for _, pkg := range pub.Packages {
		fmt.Println(pkg.Name, pkg.Version, pkg.Location)
	}
	rev, _ := db.Revision(ctx)
	fmt.Println("unchanged:", pub.Revision == serverdb.Tag(p.Identity.ID, rev))
	// Output:
	// Editor 1.2.0.0 https://content.example.org/editor.appv
	// unchanged: true
}
