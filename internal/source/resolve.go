package source

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// location is a parsed package location: a local path or an HTTP(S) URL.
type location struct {
	path string   // local path, when u is nil
	u    *url.URL // http or https
}

func (l location) isHTTP() bool { return l.u != nil }

// parseLocation reads a local path, a file:// URL (no host, or localhost)
// or an http:// or https:// URL with a host.
func parseLocation(s string) (location, error) {
	if s == "" {
		return location{}, errors.New("empty location")
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || strings.ContainsAny(scheme, `/\`) {
		return location{path: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return location{}, err
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return location{}, errors.New("URL has no host")
		}
		return location{u: u}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return location{}, fmt.Errorf("file URLs on another host (%s) are not supported; mount the share and use its path", u.Host)
		}
		if u.Path == "" {
			return location{}, errors.New("file URL has no path")
		}
		return location{path: u.Path}, nil
	}
	return location{}, fmt.Errorf("unsupported scheme %q; use a path, file://, http:// or https://", u.Scheme)
}

// Resolve returns the location a package at location is read from when
// App-V's PackageSourceRoot (ASR) is sourceRoot. With an empty sourceRoot
// it returns location unchanged. Otherwise sourceRoot replaces where the
// package is fetched from and keeps the rest of its path:
//
//   - HTTP(S) location, HTTP(S) root: the root's scheme, host and port (and
//     user, if any) replace the location's; the root's path, if any, is
//     prepended to the location's path; the location's query is kept.
//     http://server/content/pkg/p.appv with root https://mirror:8443 is
//     https://mirror:8443/content/pkg/p.appv, and with root
//     http://mirror/appv it is http://mirror/appv/content/pkg/p.appv.
//   - HTTP(S) location, local directory or file:// root: the location's URL
//     path (cleaned, so it cannot climb out of the root) is joined under the
//     root: http://server/content/pkg/p.appv with root /mnt/appv is
//     /mnt/appv/content/pkg/p.appv.
//   - Local or file:// location, local directory or file:// root: the
//     location's last path element is joined under the root:
//     /srv/pkgs/p.appv with root /mnt/appv is /mnt/appv/p.appv.
//   - Local or file:// location, HTTP(S) root: the last path element is
//     appended to the root URL: /srv/pkgs/p.appv with root http://mirror/appv
//     is http://mirror/appv/p.appv.
//
// A local result is a plain path, even when the location or root was a
// file:// URL. A root URL must not carry a query or fragment.
func Resolve(location, sourceRoot string) (string, error) {
	loc, err := parseLocation(location)
	if err != nil {
		return "", fmt.Errorf("source: resolve %s: %w", redact(location), err)
	}
	if sourceRoot == "" {
		return location, nil
	}
	root, err := parseLocation(sourceRoot)
	if err != nil {
		return "", fmt.Errorf("source: resolve %s: PackageSourceRoot %s: %w", redact(location), redact(sourceRoot), err)
	}
	if root.isHTTP() && (root.u.RawQuery != "" || root.u.ForceQuery || root.u.Fragment != "") {
		return "", fmt.Errorf("source: resolve %s: PackageSourceRoot %s: a source root has no query or fragment", redact(location), redact(sourceRoot))
	}

	switch {
	case loc.isHTTP() && root.isHTTP():
		out := *root.u
		out.Path = strings.TrimRight(root.u.Path, "/") + loc.u.Path
		out.RawPath = strings.TrimRight(root.u.EscapedPath(), "/") + loc.u.EscapedPath()
		out.RawQuery, out.ForceQuery = loc.u.RawQuery, loc.u.ForceQuery
		return out.String(), nil

	case loc.isHTTP():
		p := path.Clean("/" + loc.u.Path)
		return filepath.Join(root.path, filepath.FromSlash(p)), nil
	}

	base := filepath.Base(loc.path)
	if base == "." || base == ".." || base == string(filepath.Separator) {
		return "", fmt.Errorf("source: resolve %s: PackageSourceRoot %s: the location has no file name to keep", redact(location), redact(sourceRoot))
	}
	if root.isHTTP() {
		return root.u.JoinPath(base).String(), nil
	}
	return filepath.Join(root.path, base), nil
}

// redact hides the password of a URL, for messages and logs.
func redact(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
