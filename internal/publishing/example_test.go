package publishing_test

import (
	"fmt"
	"net/url"

	"github.com/appv/appv/internal/publishing"
)

// The server marshals what an identity is entitled to; the client parses it
// against the publishing URL and diffs it with what it applied last.
func Example() {
	const (
		editor = "7d1c3e5a-2b4f-4a6c-9e8d-1f2a3b4c5d6e"
		v1     = "0b8f2a4c-1d3e-4f56-8a9b-c0d1e2f3a4b5"
		v2     = "1c9f3b5d-2e4f-4067-9bac-d1e2f3a4b5c6"
	)
	entitled := func(version string) []byte {
		d := &publishing.Document{Packages: []publishing.Package{{
			PackageID: editor, VersionID: version, URL: "/content/editor_" + version[:4] + ".appv",
		}}}
		d.SetNoGroup()
		body, err := publishing.Marshal(d)
		if err != nil {
			panic(err)
		}
		return body
	}

	base, _ := url.Parse("https://appv.example.com/")
	before, _ := publishing.ParseWithBase(entitled(v1), base)
	after, err := publishing.ParseWithBase(entitled(v2), base)
	if err != nil {
		fmt.Println(err)
		return
	}
	changes := publishing.Diff(before, after)
	for _, u := range changes.Upgraded {
		fmt.Printf("upgrade %s to %s from %s\n", u.Old.PackageID, u.New.VersionID, u.New.URL)
	}
	// Output:
	// upgrade 7d1c3e5a-2b4f-4a6c-9e8d-1f2a3b4c5d6e to 1c9f3b5d-2e4f-4067-9bac-d1e2f3a4b5c6 from https://appv.example.com/content/editor_1c9f.appv
}

func ExampleMarshal() {
	d := &publishing.Document{
		Packages: []publishing.Package{{
			PackageID: "7d1c3e5a-2b4f-4a6c-9e8d-1f2a3b4c5d6e",
			VersionID: "0b8f2a4c-1d3e-4f56-8a9b-c0d1e2f3a4b5",
			URL:       "https://content.example.com/editor.appv",
		}},
	}
	d.SetNoGroup()
	body, err := publishing.Marshal(d)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%sETag: %s\n", body, publishing.ETag(body))
	// Output:
	// <?xml version="1.0" encoding="utf-8"?>
	// <Publishing Protocol="2.0">
	//   <Packages>
	//     <Package PackageId="7d1c3e5a-2b4f-4a6c-9e8d-1f2a3b4c5d6e" VersionId="0b8f2a4c-1d3e-4f56-8a9b-c0d1e2f3a4b5" PackageUrl="https://content.example.com/editor.appv"/>
	//   </Packages>
	//   <NoGroup>
	//     <Package PackageId="7d1c3e5a-2b4f-4a6c-9e8d-1f2a3b4c5d6e"/>
	//   </NoGroup>
	// </Publishing>
	// ETag: "c93fe256f763f99724fd0a5f3ef9d185"
}
