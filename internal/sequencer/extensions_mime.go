package sequencer

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/beevik/etree"

	"github.com/appv/appv/internal/appvpkg"
)

// MIME types, from shared-mime-info: the package's own mime/packages/*.xml
// (types it defines or extends) and the host's database (globs2, aliases and
// packages/freedesktop.org.xml) for the types every system knows. Only file
// name globs, comments, aliases and icon names are used; magic and XML root
// rules are kept in the copied XML for the client but not interpreted.

// nsSharedMIMEInfo is the namespace of shared-mime-info XML files.
const nsSharedMIMEInfo = "http://www.freedesktop.org/standards/shared-mime-info"

// hostMIMEDir is where the host's shared-mime-info database is.
const hostMIMEDir = "/usr/share/mime"

// maxMIMEXML bounds a MIME XML file read from the package or the host
// (freedesktop.org.xml, with its translations, is 2.4 MiB).
const maxMIMEXML = 16 << 20

// mimeInfo is what is known of one MIME type.
type mimeInfo struct {
	comment string
	globs   []string
	icon    string // icon name (<icon name>), if given
}

// packageMIMEType is a <mime-type> element of one of the package's XML files.
type packageMIMEType struct {
	typ    string
	source string // token path of the XML file
	elem   *etree.Element
}

// mimeDB is the package's MIME types over the host's.
type mimeDB struct {
	pkg     map[string]*mimeInfo
	defined []packageMIMEType // in file and document order
	host    map[string]*mimeInfo
	aliases map[string]string // alias -> canonical type (package and host)
}

// lookup returns what is known of a type: the package's definition and the
// host's, merged (globs of both, the package's comment and icon first), and
// the same for the canonical type when t is an alias.
func (db *mimeDB) lookup(t string) mimeInfo {
	var out mimeInfo
	names := []string{t}
	if c, ok := db.aliases[t]; ok && c != t {
		names = append(names, c)
	}
	for _, n := range names {
		for _, src := range []map[string]*mimeInfo{db.pkg, db.host} {
			mi := src[n]
			if mi == nil {
				continue
			}
			if out.comment == "" {
				out.comment = mi.comment
			}
			if out.icon == "" {
				out.icon = mi.icon
			}
			for _, g := range mi.globs {
				if !slices.Contains(out.globs, g) {
					out.globs = append(out.globs, g)
				}
			}
		}
	}
	return out
}

// fileExtensions returns the file name extensions (".txt") of a type's globs:
// the patterns "*.ext" with no other wildcard. Other patterns ("README*",
// "Makefile") name files, not extensions, and have no App-V equivalent.
func fileExtensions(globs []string) []string {
	var out []string
	for _, g := range globs {
		ext, ok := strings.CutPrefix(g, "*.")
		if !ok || ext == "" || strings.ContainsAny(ext, "*?[]/\\") {
			continue
		}
		if e := "." + ext; !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// loadPackageMIME reads the package's shared-mime-info XML files (in the data
// directories' mime/packages). Files that do not parse are reported and
// skipped. It returns the package paths of the files it used.
func (d *detector) loadPackageMIME(db *mimeDB) ([]string, error) {
	var used []string
	for _, dd := range d.dataDirs() {
		dir := filepath.Join(dd.staged, "mime", "packages")
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sequencer: MIME types: %w", err)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".xml") {
				continue
			}
			native := dd.native + "/mime/packages/" + e.Name()
			staged, ok := d.resolveFile(native)
			if !ok {
				continue
			}
			data, err := readLimited(staged, maxMIMEXML)
			if err == nil {
				err = checkXMLLimits(data)
			}
			var doc *etree.Document
			if err == nil {
				doc = etree.NewDocument()
				err = doc.ReadFromBytes(data)
			}
			if err == nil && (doc.Root() == nil || doc.Root().Tag != "mime-info" || doc.Root().NamespaceURI() != nsSharedMIMEInfo) {
				err = errors.New("the root element is not <mime-info> of shared-mime-info")
			}
			if err != nil {
				d.r.Add(Warning, "Extension", native, fmt.Sprintf("MIME type definitions not used: %v", err))
				continue
			}
			used = append(used, d.packagePath(staged))
			source := d.tokenPath(native)
			for _, mt := range doc.Root().ChildElements() {
				if mt.Tag != "mime-type" || mt.NamespaceURI() != nsSharedMIMEInfo {
					continue
				}
				typ := mt.SelectAttrValue("type", "")
				if !validMIMEType(typ) {
					d.r.Add(Warning, "Extension", native, fmt.Sprintf("MIME type %q is not a valid type name; not used", typ))
					continue
				}
				mi := db.pkg[typ]
				if mi == nil {
					mi = &mimeInfo{}
					db.pkg[typ] = mi
				}
				readMIMEElement(mt, mi, db.aliases, typ)
				db.defined = append(db.defined, packageMIMEType{typ: typ, source: source, elem: mt})
			}
		}
	}
	return used, nil
}

// readMIMEElement adds what a <mime-type> element says to mi.
func readMIMEElement(mt *etree.Element, mi *mimeInfo, aliases map[string]string, typ string) {
	for _, c := range mt.ChildElements() {
		if c.NamespaceURI() != nsSharedMIMEInfo {
			continue
		}
		switch c.Tag {
		case "comment":
			if c.SelectAttr("xml:lang") == nil && mi.comment == "" {
				mi.comment = strings.TrimSpace(c.Text())
			}
		case "glob":
			if p := c.SelectAttrValue("pattern", ""); p != "" && !slices.Contains(mi.globs, p) {
				mi.globs = append(mi.globs, p)
			}
		case "alias":
			if a := c.SelectAttrValue("type", ""); a != "" {
				aliases[a] = typ
			}
		case "icon":
			if mi.icon == "" {
				mi.icon = c.SelectAttrValue("name", "")
			}
		}
	}
}

// validMIMEType checks a MIME type name: major/minor, printable ASCII without
// spaces (shared-mime-info's update-mime-database is no stricter).
func validMIMEType(t string) bool {
	major, minor, ok := strings.Cut(t, "/")
	if !ok || major == "" || minor == "" || strings.Contains(minor, "/") {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f || strings.IndexByte(`"<>&'\`, t[i]) >= 0 {
			return false
		}
	}
	return true
}

// loadHostMIME reads the host's database in dir: globs2 ("weight:type:glob"
// lines, highest weight first), aliases ("alias canonical" lines) and
// packages/freedesktop.org.xml (comments, globs, aliases, icons). Missing
// files are not an error: a host without shared-mime-info only knows less.
func loadHostMIME(dir string, db *mimeDB) error {
	get := func(t string) *mimeInfo {
		mi := db.host[t]
		if mi == nil {
			mi = &mimeInfo{}
			db.host[t] = mi
		}
		return mi
	}
	err := readLines(filepath.Join(dir, "globs2"), func(line string) {
		f := strings.Split(line, ":")
		if len(f) < 3 || !validMIMEType(f[1]) {
			return
		}
		if mi := get(f[1]); !slices.Contains(mi.globs, f[2]) {
			mi.globs = append(mi.globs, f[2])
		}
	})
	if err != nil {
		return err
	}
	err = readLines(filepath.Join(dir, "aliases"), func(line string) {
		if a, c, ok := strings.Cut(line, " "); ok {
			db.aliases[a] = c
		}
	})
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, "packages", "freedesktop.org.xml"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var info struct {
		Types []struct {
			Type     string `xml:"type,attr"`
			Comments []struct {
				Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
				Text string `xml:",chardata"`
			} `xml:"comment"`
			Globs []struct {
				Pattern string `xml:"pattern,attr"`
			} `xml:"glob"`
			Aliases []struct {
				Type string `xml:"type,attr"`
			} `xml:"alias"`
			Icon struct {
				Name string `xml:"name,attr"`
			} `xml:"icon"`
		} `xml:"mime-type"`
	}
	if err := xml.NewDecoder(io.LimitReader(f, maxMIMEXML)).Decode(&info); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	for _, t := range info.Types {
		if !validMIMEType(t.Type) {
			continue
		}
		mi := get(t.Type)
		for _, c := range t.Comments {
			if c.Lang == "" && mi.comment == "" {
				mi.comment = strings.TrimSpace(c.Text)
			}
		}
		for _, g := range t.Globs {
			if !slices.Contains(mi.globs, g.Pattern) {
				mi.globs = append(mi.globs, g.Pattern)
			}
		}
		for _, a := range t.Aliases {
			if _, ok := db.aliases[a.Type]; !ok {
				db.aliases[a.Type] = t.Type
			}
		}
		if mi.icon == "" {
			mi.icon = t.Icon.Name
		}
	}
	return nil
}

// readLines calls fn for each line of a text file that is not blank or a
// comment; a missing file has no lines.
func readLines(name string, fn func(string)) error {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxMIMEXML))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && line[0] != '#' {
			fn(line)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// checkXMLLimits makes one pass over an XML document's tokens before a tree
// is built from it: well-formed, no DOCTYPE (the carrier of entity
// expansion), at most appvpkg.MaxXMLDepth levels deep.
func checkXMLLimits(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			if depth != 0 {
				return errors.New("unclosed element")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth > appvpkg.MaxXMLDepth {
				return fmt.Errorf("nested deeper than %d elements", appvpkg.MaxXMLDepth)
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			if bytes.HasPrefix(bytes.TrimSpace(t), []byte("DOCTYPE")) {
				return errors.New("DOCTYPE declarations are not allowed")
			}
		}
	}
}

// mimeTypesElement builds <appvlinux:MimeTypes>: each type the package's
// XML defines, with the <mime-type> element copied as it was (in
// shared-mime-info's namespace), so the client can install it into
// shared-mime-info when it publishes the package.
func mimeTypesElement(defined []packageMIMEType) *etree.Element {
	if len(defined) == 0 {
		return nil
	}
	sorted := slices.Clone(defined)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].source < sorted[j].source })
	root := linuxElem("MimeTypes")
	for _, mt := range sorted {
		e := linuxElem("MimeType")
		e.CreateAttr("Type", mt.typ)
		e.CreateAttr("Source", mt.source)
		e.AddChild(copyForeign(mt.elem, nsSharedMIMEInfo))
		root.AddChild(e)
	}
	return root
}

// copyForeign copies an element of namespace uri (and its subtree) out of
// its document: the copy declares uri as its default namespace and drops
// the prefixes and declarations of its old place, keeping xml:lang.
func copyForeign(src *etree.Element, uri string) *etree.Element {
	var cp func(e *etree.Element) *etree.Element
	cp = func(e *etree.Element) *etree.Element {
		n := etree.NewElement(e.Tag)
		for _, a := range e.Attr {
			switch {
			case a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns"):
				continue
			case a.Space == "xml":
				n.CreateAttr("xml:"+a.Key, a.Value)
			case a.Space == "":
				n.CreateAttr(a.Key, a.Value)
			}
		}
		for _, c := range e.Child {
			switch c := c.(type) {
			case *etree.Element:
				if c.NamespaceURI() == uri {
					n.AddChild(cp(c))
				}
			case *etree.CharData:
				n.AddChild(etree.NewText(c.Data))
			case *etree.Comment:
				n.CreateComment(c.Data)
			}
		}
		return n
	}
	out := cp(src)
	out.CreateAttr("xmlns", uri)
	// The declaration goes first.
	out.Attr = append(out.Attr[len(out.Attr)-1:], out.Attr[:len(out.Attr)-1]...)
	return out
}
