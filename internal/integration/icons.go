package integration

import (
	"bytes"
	"encoding/binary"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/appv/appv/internal/appvpkg"
)

// iconSizes are the size directories of the hicolor theme (its
// index.theme) that application icons go into.
var iconSizes = []int{16, 22, 24, 32, 36, 48, 64, 72, 96, 128, 192, 256, 512}

// maxIconSize bounds an icon file read from a package.
const maxIconSize = 4 << 20

// packagePath maps a manifest path reference to the package path of the
// file ("Root/…", "/"-separated): [{AppVPackageRoot}]\x is Root/x, a
// known folder's [{Token}]\x is Root/VFS/<Token>/x, and an absolute Linux
// path under a known folder is that folder's. A Windows icon index
// ("app.exe,0") is dropped. ok is false for anything else.
func packagePath(ref string) (string, bool) {
	ref = strings.ReplaceAll(strings.TrimSpace(ref), `\`, "/")
	if i := strings.LastIndexByte(ref, ','); i >= 0 {
		if _, err := strconv.Atoi(ref[i+1:]); err == nil {
			ref = ref[:i]
		}
	}
	var out string
	switch {
	case strings.HasPrefix(ref, "[{"):
		j := strings.Index(ref, "}]")
		if j < 0 {
			return "", false
		}
		name, rest := ref[2:j], ref[j+2:]
		if strings.EqualFold(name, appvpkg.PackageRootToken) {
			out = appvpkg.RootDir + "/" + rest
		} else if tok, ok := appvpkg.LookupToken(name); ok {
			out = appvpkg.RootDir + "/VFS/" + tok.Name + "/" + rest
		} else {
			return "", false
		}
	case strings.HasPrefix(ref, "/"):
		tok, rel, ok := appvpkg.TokenForPath(ref, "")
		if !ok {
			return "", false
		}
		out = appvpkg.RootDir + "/VFS/" + tok.Name + "/" + rel
	default:
		return "", false
	}
	out = path.Clean(out)
	if slices.Contains(strings.Split(out, "/"), "..") || out == appvpkg.RootDir {
		return "", false
	}
	return out, true
}

// themeIconName matches an icon name of the icon theme specification (an
// Icon= value that is not a path).
var themeIconName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// themedIcon matches a package path inside an icon theme:
// …/icons/<theme>/<size>/<context>/<name>.
var themedIcon = regexp.MustCompile(`^(.*/icons/[^/]+/)([0-9]+x[0-9]+|scalable)(/[^/]+/[^/]+)$`)

// iconFile is one file of an installed icon: the size directory it goes
// in, and its content.
type iconFile struct {
	dir  string // "48x48" or "scalable"
	ext  string // ".png", ".svg", ".xpm"
	data []byte
}

// readIcon reads the icon a manifest refers to from the package, with
// the other sizes of a themed icon. It returns nothing for a format the
// icon theme specification does not have (a Windows .ico) or a file the
// package cannot give.
func readIcon(read func(string) ([]byte, error), pkgPath string) ([]iconFile, error) {
	ext := strings.ToLower(path.Ext(pkgPath))
	if ext != ".png" && ext != ".svg" && ext != ".xpm" {
		return nil, nil
	}
	data, err := readLimited(read, pkgPath)
	if err != nil {
		return nil, err
	}
	main := iconFile{dir: sizeDir(ext, data), ext: ext, data: data}
	m := themedIcon.FindStringSubmatch(pkgPath)
	if m == nil {
		return []iconFile{main}, nil
	}
	if n, ok := squareSize(m[2]); ok && slices.Contains(iconSizes, n) {
		main.dir = m[2]
	}
	out := []iconFile{main}
	stem := strings.TrimSuffix(m[3], path.Ext(m[3]))
	try := func(dir, ext string) {
		if dir == main.dir {
			return
		}
		if d, err := readLimited(read, m[1]+dir+stem+ext); err == nil && len(d) > 0 {
			out = append(out, iconFile{dir: dir, ext: ext, data: d})
		}
	}
	for _, n := range iconSizes {
		dir := strconv.Itoa(n) + "x" + strconv.Itoa(n)
		try(dir, ".png")
	}
	try("scalable", ".svg")
	return out, nil
}

func readLimited(read func(string) ([]byte, error), p string) ([]byte, error) {
	data, err := read(p)
	if err != nil {
		return nil, err
	}
	if len(data) > maxIconSize {
		return nil, errIconTooBig
	}
	return data, nil
}

// squareSize parses "48x48".
func squareSize(dir string) (int, bool) {
	w, h, ok := strings.Cut(dir, "x")
	if !ok || w != h {
		return 0, false
	}
	n, err := strconv.Atoi(w)
	return n, err == nil
}

// sizeDir picks the hicolor directory for an icon that is not in a size
// directory of its own: scalable for SVG, else the smallest standard size
// that holds its width and height (read from the PNG or XPM header).
func sizeDir(ext string, data []byte) string {
	if ext == ".svg" {
		return "scalable"
	}
	w, h := 48, 48
	switch ext {
	case ".png":
		if len(data) >= 24 && bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) && string(data[12:16]) == "IHDR" {
			w, h = int(binary.BigEndian.Uint32(data[16:20])), int(binary.BigEndian.Uint32(data[20:24]))
		}
	case ".xpm":
		if m := xpmValues.FindSubmatch(data); m != nil {
			w, _ = strconv.Atoi(string(m[1]))
			h, _ = strconv.Atoi(string(m[2]))
		}
	}
	n := max(w, h)
	for _, s := range iconSizes {
		if s >= n {
			return strconv.Itoa(s) + "x" + strconv.Itoa(s)
		}
	}
	return "512x512"
}

// xpmValues matches the values line of an XPM: "<width> <height> …".
var xpmValues = regexp.MustCompile(`"\s*([0-9]+)\s+([0-9]+)\s+[0-9]+\s+[0-9]+`)
