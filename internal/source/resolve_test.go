package source

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name     string
		location string
		root     string
		want     string
		wantErr  bool
	}{
		{name: "no root, URL", location: "http://server/content/p.appv", want: "http://server/content/p.appv"},
		{name: "no root, path", location: "/srv/p.appv", want: "/srv/p.appv"},
		{name: "no root, file URL", location: "file:///srv/p.appv", want: "file:///srv/p.appv"},

		{name: "http root replaces host and port", location: "http://server/content/pkg/p.appv", root: "http://mirror:8080",
			want: "http://mirror:8080/content/pkg/p.appv"},
		{name: "http root replaces scheme", location: "http://server:81/content/p.appv", root: "https://mirror",
			want: "https://mirror/content/p.appv"},
		{name: "trailing slash on root", location: "http://server/content/p.appv", root: "http://mirror/",
			want: "http://mirror/content/p.appv"},
		{name: "root prefix prepended", location: "https://server/content/pkg/p.appv", root: "http://mirror/prefix",
			want: "http://mirror/prefix/content/pkg/p.appv"},
		{name: "root prefix with slash", location: "https://server/content/p.appv", root: "http://mirror/a/b/",
			want: "http://mirror/a/b/content/p.appv"},
		{name: "query kept", location: "https://server/p.appv?token=x", root: "http://mirror",
			want: "http://mirror/p.appv?token=x"},
		{name: "escapes kept", location: "http://server/my%20apps/p%3Fq.appv", root: "http://mirror/a%20b",
			want: "http://mirror/a%20b/my%20apps/p%3Fq.appv"},
		{name: "root user kept, location user dropped", location: "http://u:p@server/p.appv", root: "http://m:s@mirror",
			want: "http://m:s@mirror/p.appv"},
		{name: "root with IPv6 host", location: "http://server/p.appv", root: "http://[::1]:8080",
			want: "http://[::1]:8080/p.appv"},

		{name: "http location, directory root", location: "http://server/content/pkg/p.appv", root: "/mnt/appv",
			want: "/mnt/appv/content/pkg/p.appv"},
		{name: "http location, file URL root", location: "http://server/content/p.appv", root: "file:///mnt/appv/",
			want: "/mnt/appv/content/p.appv"},
		{name: "http location, escaped path", location: "http://server/my%20apps/p.appv", root: "/mnt",
			want: "/mnt/my apps/p.appv"},
		{name: "http location cannot climb out", location: "http://server/../../etc/p.appv", root: "/mnt/appv",
			want: "/mnt/appv/etc/p.appv"},
		{name: "http location, relative directory root", location: "http://server/c/p.appv", root: "mirror",
			want: "mirror/c/p.appv"},

		{name: "path location, directory root", location: "/srv/pkgs/p.appv", root: "/mnt/appv",
			want: "/mnt/appv/p.appv"},
		{name: "file URL location, file URL root", location: "file://localhost/srv/p%20q.appv", root: "file:///mnt",
			want: "/mnt/p q.appv"},
		{name: "relative path location", location: "pkgs/p.appv", root: "/mnt",
			want: "/mnt/p.appv"},
		{name: "path location, http root", location: "/srv/pkgs/p.appv", root: "http://mirror/appv",
			want: "http://mirror/appv/p.appv"},
		{name: "path location, http root, escaped", location: "/srv/my app#1.appv", root: "http://mirror/",
			want: "http://mirror/my%20app%231.appv"},

		{name: "empty location", location: "", wantErr: true},
		{name: "unsupported scheme", location: "ftp://server/p.appv", wantErr: true},
		{name: "unsupported root scheme", location: "/srv/p.appv", root: "smb://server/share", wantErr: true},
		{name: "http URL without host", location: "http:///p.appv", wantErr: true},
		{name: "file URL on another host", location: "file://server/share/p.appv", wantErr: true},
		{name: "root with query", location: "http://server/p.appv", root: "http://mirror/?x=1", wantErr: true},
		{name: "root with fragment", location: "http://server/p.appv", root: "http://mirror/#x", wantErr: true},
		{name: "path location without a name", location: "/", root: "/mnt", wantErr: true},
		{name: "bad URL", location: "http://server/%zz", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.location, tt.root)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Resolve(%q, %q) = %q, want an error", tt.location, tt.root, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q, %q): %v", tt.location, tt.root, err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q, %q) = %q, want %q", tt.location, tt.root, got, tt.want)
			}
		})
	}
}

func TestResolveRedactsPasswords(t *testing.T) {
	_, err := Resolve("http://user:secret@server/p.appv", "smb://x")
	if err == nil {
		t.Fatal("no error")
	}
	if got := err.Error(); strings.Contains(got, "secret") {
		t.Errorf("error shows the password: %s", got)
	}
}
