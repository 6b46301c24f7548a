package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/integration"
)

// Publishing a package to a user integrates its extension points into
// the user's home; unpublishing removes them.
func Example() {
	home, err := os.MkdirTemp("", "home")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(home)

	const app = "[{AppVPackageRoot}]/bin/hello"
	m := appvpkg.NewManifest(appvpkg.Identity{Name: "Hello", Publisher: "CN=Example", Version: "1.0.0.0",
		PackageID: "0a1b2c3d-1111-4111-8111-aaaaaaaaaaaa", VersionID: "11111111-1111-4111-8111-111111111111"})
	for _, err := range []error{
		m.AddApplication(appvpkg.Application{ID: app, DisplayName: "Hello"}),
		m.AddExtension(appvpkg.Extension{Application: app, AppPath: &appvpkg.AppPath{Name: "hello", ApplicationID: app}}),
		m.AddExtension(appvpkg.Extension{Application: app, Shortcut: &appvpkg.Shortcut{
			File: "[{XdgDataHome}]/applications/hello.desktop", ApplicationID: app, Arguments: "%U"}}),
		m.AddExtension(appvpkg.Extension{Application: app, URLProtocol: &appvpkg.URLProtocol{Name: "hello"}}),
	} {
		if err != nil {
			panic(err)
		}
	}

	ctx := context.Background()
	t := integration.UserTarget(home, "", "", os.Getuid(), os.Getgid())
	p := integration.Package{Manifest: m, Launcher: "/usr/bin/appv"}
	if err := integration.Integrate(ctx, t, p); err != nil {
		panic(err)
	}
	for _, f := range []string{".local/bin/hello", ".local/share/applications/appv-0a1b2c3d-hello.desktop"} {
		_, err := os.Stat(filepath.Join(home, f))
		fmt.Println(f, err == nil)
	}
	list, _ := os.ReadFile(filepath.Join(home, ".config", "mimeapps.list"))
	fmt.Print(string(list))

	if err := integration.Deintegrate(ctx, t, p); err != nil {
		panic(err)
	}
	left, _ := os.ReadDir(home)
	fmt.Println(len(left), "files left")
	// Output:
	// .local/bin/hello true
	// .local/share/applications/appv-0a1b2c3d-hello.desktop true
	// [Default Applications]
	// x-scheme-handler/hello=appv-0a1b2c3d-hello.desktop;
	//
	// [Added Associations]
	// x-scheme-handler/hello=appv-0a1b2c3d-hello.desktop;
	// 0 files left
}
