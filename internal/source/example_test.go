package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/appv/appv/internal/source"
)

func ExampleResolve() {
	for _, root := range []string{"", "https://mirror:8443", "http://mirror/appv", "/mnt/appv"} {
		loc, err := source.Resolve("http://server/content/pkg/p.appv", root)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%q → %s\n", root, loc)
	}
	loc, _ := source.Resolve("/srv/pkgs/p.appv", "http://mirror/appv")
	fmt.Println(loc)
	// Output:
	// "" → http://server/content/pkg/p.appv
	// "https://mirror:8443" → https://mirror:8443/content/pkg/p.appv
	// "http://mirror/appv" → http://mirror/appv/content/pkg/p.appv
	// "/mnt/appv" → /mnt/appv/content/pkg/p.appv
	// http://mirror/appv/p.appv
}

func ExampleOpen() {
	pkg := bytes.Repeat([]byte("0123456789"), 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "p.appv", time.Time{}, bytes.NewReader(pkg))
	}))
	defer srv.Close()

	ctx := context.Background()
	src, err := source.Open(ctx, srv.URL+"/content/p.appv", source.Options{})
	var he *source.HTTPError
	switch {
	case errors.As(err, &he):
		fmt.Println("refused:", he.StatusCode)
		return
	case err != nil:
		fmt.Println(err)
		return
	}
	defer src.Close()

	p := make([]byte, 4)
	if _, err := src.ReadAt(p, 12); err != nil {
		fmt.Println(err)
		return
	}
	parts, err := src.ReadRanges(ctx, []source.Range{{Off: 3, Len: 2}, {Off: 50005, Len: 3}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src.Size(), string(p), string(parts[0]), string(parts[1]))
	// Output: 100000 2345 34 567
}
