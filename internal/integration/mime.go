package integration

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// mimeNS is the shared-mime-info namespace.
const mimeNS = "http://www.freedesktop.org/standards/shared-mime-info"

// mimeMarker starts the comment of every MIME package file appv writes.
const mimeMarker = "appv MIME types"

// maxMIMEFile bounds a MIME database file read.
const maxMIMEFile = 32 << 20

// mimeType matches a MIME type ("media/subtype", RFC 6838 characters).
var mimeType = regexp.MustCompile(`^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$`)

// urlScheme matches a URL scheme (RFC 3986).
var urlScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// mimeDB is what the host's MIME database knows, apart from what appv
// added: types, aliases, and the type of each simple "*.ext" glob.
type mimeDB struct {
	types map[string]bool
	globs map[string]string // lower-case "*.ext" -> type
}

func (db *mimeDB) known(t string) bool { return db.types[t] }

func (db *mimeDB) typeOfExt(ext string) string { return db.globs["*"+strings.ToLower(ext)] }

// loadMIMEDB reads the MIME databases of the target's data directory and
// the system data directories. Where a directory holds appv's own package
// files (appv-*.xml), its source files other than those are read; else
// its generated types, aliases and globs2.
func loadMIMEDB(f *files, p paths) *mimeDB {
	db := &mimeDB{types: map[string]bool{}, globs: map[string]string{}}
	own := filepath.Join(f.t.Root, filepath.FromSlash(p.mime))
	db.readSources(f.root.FS(), path.Join(p.mime, "packages"), func(name string) ([]byte, error) {
		data, _, _, err := f.readRegular(name, maxMIMEFile)
		return data, err
	})
	for _, d := range f.t.systemDataDirs() {
		dir := filepath.Join(d, "mime")
		if filepath.Clean(dir) == filepath.Clean(own) {
			continue
		}
		sys := os.DirFS(dir)
		if m, _ := fs.Glob(sys, "packages/appv-*.xml"); len(m) > 0 {
			db.readSources(sys, "packages", func(name string) ([]byte, error) { return readFS(sys, name) })
			continue
		}
		db.readGenerated(sys)
	}
	return db
}

// readSources reads the package files of a MIME directory, except
// appv's.
func (db *mimeDB) readSources(fsys fs.FS, dir string, read func(string) ([]byte, error)) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".xml") || strings.HasPrefix(n, "appv-") || !e.Type().IsRegular() {
			continue
		}
		if data, err := read(path.Join(dir, n)); err == nil {
			db.readXML(data)
		}
	}
}

func readFS(fsys fs.FS, name string) ([]byte, error) {
	fl, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	return io.ReadAll(io.LimitReader(fl, maxMIMEFile))
}

// readXML reads the types, aliases and globs of a shared-mime-info
// package file.
func (db *mimeDB) readXML(data []byte) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var cur string
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := func(name string) string {
			for _, a := range se.Attr {
				if a.Name.Local == name {
					return a.Value
				}
			}
			return ""
		}
		switch se.Name.Local {
		case "mime-type":
			cur = strings.ToLower(attr("type"))
			db.types[cur] = true
		case "alias":
			db.types[strings.ToLower(attr("type"))] = true
		case "glob":
			db.addGlob(attr("pattern"), cur)
		}
	}
}

// readGenerated reads update-mime-database's types, aliases and globs2.
func (db *mimeDB) readGenerated(fsys fs.FS) {
	lines := func(name string, fn func(string)) {
		data, err := readFS(fsys, name)
		if err != nil {
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if l := sc.Text(); l != "" && l[0] != '#' {
				fn(l)
			}
		}
	}
	lines("types", func(l string) { db.types[strings.ToLower(strings.TrimSpace(l))] = true })
	lines("aliases", func(l string) {
		if a, _, ok := strings.Cut(l, " "); ok {
			db.types[strings.ToLower(a)] = true
		}
	})
	lines("globs2", func(l string) {
		// weight:type:glob[:flags]
		parts := strings.SplitN(l, ":", 4)
		if len(parts) >= 3 {
			db.addGlob(parts[2], parts[1])
		}
	})
}

func (db *mimeDB) addGlob(pattern, typ string) {
	pattern = strings.ToLower(pattern)
	if typ == "" || !strings.HasPrefix(pattern, "*.") || strings.ContainsAny(pattern[1:], "*?[") {
		return
	}
	if _, ok := db.globs[pattern]; !ok {
		db.globs[pattern] = strings.ToLower(typ)
	}
}

// mimeDef is a type a package's MIME file defines or adds globs to.
type mimeDef struct {
	typ     string
	comment string // only for a type new to the host
	icon    string // icon name, if the type's icon was installed
	generic string // generic-icon
	globs   []string
}

// perceivedIcons maps App-V's PerceivedType to a generic icon.
var perceivedIcons = map[string]string{
	"text":       "text-x-generic",
	"image":      "image-x-generic",
	"audio":      "audio-x-generic",
	"video":      "video-x-generic",
	"compressed": "package-x-generic",
	"document":   "x-office-document",
	"system":     "application-x-executable",
}

// renderMIME writes a shared-mime-info package file.
func renderMIME(defs []*mimeDef, p *Package) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<!-- " + mimeMarker + " of package " + xmlComment(p.Name) + " (" + xmlComment(p.PackageID) + ").\n     Managed by appv: unpublishing the package removes it. -->\n")
	b.WriteString(`<mime-info xmlns="` + mimeNS + `">` + "\n")
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	for _, d := range defs {
		b.WriteString(`  <mime-type type="` + esc(d.typ) + `">` + "\n")
		if d.comment != "" {
			b.WriteString("    <comment>" + esc(d.comment) + "</comment>\n")
		}
		if d.icon != "" {
			b.WriteString(`    <icon name="` + esc(d.icon) + `"/>` + "\n")
		}
		if d.generic != "" {
			b.WriteString(`    <generic-icon name="` + esc(d.generic) + `"/>` + "\n")
		}
		for _, g := range d.globs {
			b.WriteString(`    <glob pattern="` + esc(g) + `"/>` + "\n")
		}
		b.WriteString("  </mime-type>\n")
	}
	b.WriteString("</mime-info>\n")
	return b.Bytes()
}

// xmlComment makes s safe inside an XML comment.
func xmlComment(s string) string {
	s = oneLine(s)
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	return strings.TrimSuffix(s, "-")
}

// addGlob adds a glob to a definition once.
func (d *mimeDef) addGlob(g string) {
	if !slices.Contains(d.globs, g) {
		d.globs = append(d.globs, g)
	}
}
