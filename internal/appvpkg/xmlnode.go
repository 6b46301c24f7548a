package appvpkg

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Helpers shared by the XML parts (manifest, stream map, file-system
// metadata, package history): namespace lookup and declaration on etree
// trees, preservation of content a part does not model, and deterministic
// writing.
//
// Two ways of keeping unknown content are used:
//   - AppxManifest.xml is kept as the parsed etree document itself and edited
//     in place, so prefixes, order, comments and everything unknown survive.
//   - The other parts are decoded into plain structs (sorted, canonical) and
//     written afresh. What they do not model is kept in an xmlExtra: unknown
//     attributes with their resolved namespace, and unknown child elements
//     serialized together with the namespace declarations they use, so they
//     can be written back under a different parent and still mean the same.

// nsXML is the namespace the "xml" prefix is bound to by definition.
const nsXML = "http://www.w3.org/XML/1998/namespace"

// newXMLDocument returns an empty document whose write settings escape
// carriage returns, tabs and newlines in attribute values and carriage
// returns in text, so every string survives a write and a re-read.
func newXMLDocument() *etree.Document {
	doc := etree.NewDocument()
	doc.WriteSettings.CanonicalAttrVal = true
	doc.WriteSettings.CanonicalText = true
	return doc
}

// nsLookup returns the namespace URI bound to prefix at e ("" is the default
// namespace, which is "" when nothing declares it) and whether it is bound.
func nsLookup(e *etree.Element, prefix string) (string, bool) {
	switch prefix {
	case "xml":
		return nsXML, true
	case "xmlns":
		return "", false
	}
	for el := e; el != nil; el = el.Parent() {
		for _, a := range el.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" {
				return a.Value, true
			}
			if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value, true
			}
		}
	}
	return "", prefix == ""
}

// elemURI returns the namespace URI of element e.
func elemURI(e *etree.Element) string {
	u, _ := nsLookup(e, e.Space)
	return u
}

// attrURI returns the namespace URI of attribute a of element e ("" for an
// unprefixed attribute).
func attrURI(e *etree.Element, a etree.Attr) string {
	if a.Space == "" {
		return ""
	}
	u, _ := nsLookup(e, a.Space)
	return u
}

// isNSDecl reports whether a is a namespace declaration (xmlns or xmlns:p).
func isNSDecl(a etree.Attr) bool {
	return a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")
}

// declPrefix returns the prefix a namespace declaration binds ("" for xmlns).
func declPrefix(a etree.Attr) string {
	if a.Space == "xmlns" {
		return a.Key
	}
	return ""
}

// isElem reports whether e is the element {uri}local.
func isElem(e *etree.Element, uri, local string) bool {
	return e != nil && e.Tag == local && elemURI(e) == uri
}

// nsPrefix returns a prefix bound to uri at e, declaring one on e (preferring
// preferred) when none is in scope. With allowDefault an element may use the
// default namespace, and "" is returned when that is uri.
func nsPrefix(e *etree.Element, uri, preferred string, allowDefault bool) string {
	if p, ok := nsFind(e, uri, allowDefault); ok {
		return p
	}
	if preferred == "" || preferred == "xml" || preferred == "xmlns" {
		preferred = "ns"
	}
	p := preferred
	for i := 1; !prefixFreeOn(e, p); i++ {
		p = preferred + strconv.Itoa(i)
	}
	e.CreateAttr("xmlns:"+p, uri)
	return p
}

// nsFind returns a prefix bound to uri at e, if there is one. With
// allowDefault, "" is returned when the default namespace is uri.
func nsFind(e *etree.Element, uri string, allowDefault bool) (string, bool) {
	if uri == nsXML {
		return "xml", true
	}
	if allowDefault {
		if u, _ := nsLookup(e, ""); u == uri {
			return "", true
		}
	}
	for el := e; el != nil; el = el.Parent() {
		for _, a := range el.Attr {
			if a.Space == "xmlns" && a.Value == uri {
				if u, ok := nsLookup(e, a.Key); ok && u == uri {
					return a.Key, true
				}
			}
		}
	}
	return "", false
}

// prefixFreeOn reports whether p can be declared on e without changing the
// meaning of e's own name or attributes.
func prefixFreeOn(e *etree.Element, p string) bool {
	if e.Space == p {
		return false
	}
	for _, a := range e.Attr {
		if a.Space == p || (a.Space == "xmlns" && a.Key == p) {
			return false
		}
	}
	return true
}

// setElemNS gives a freshly created element e (already attached to its
// parent) the name {uri}local, declaring a prefix if needed.
func setElemNS(e *etree.Element, uri, local, preferred string) {
	e.Space = nsPrefix(e, uri, preferred, true)
	e.Tag = local
}

// xmlAttr is an attribute a part does not model, with its namespace resolved.
type xmlAttr struct {
	URI    string // namespace URI, "" for an unprefixed attribute
	Prefix string // prefix it was written with, reused when possible
	Local  string
	Value  string
}

// xmlExtra is the content of one element that a part does not model.
type xmlExtra struct {
	Attrs []xmlAttr // unknown attributes (namespace declarations excluded)
	Elems []string  // unknown child elements, each self-contained XML
}

func (x *xmlExtra) empty() bool { return x == nil || (len(x.Attrs) == 0 && len(x.Elems) == 0) }

// keepAttr records attribute a of e as unknown.
func (x *xmlExtra) keepAttr(e *etree.Element, a etree.Attr) {
	x.Attrs = append(x.Attrs, xmlAttr{URI: attrURI(e, a), Prefix: a.Space, Local: a.Key, Value: a.Value})
}

// keepElem records child element c as unknown.
func (x *xmlExtra) keepElem(c *etree.Element) {
	x.Elems = append(x.Elems, fragmentOf(c))
}

// merge appends the unknown content of y.
func (x *xmlExtra) merge(y xmlExtra) {
	x.Attrs = append(x.Attrs, y.Attrs...)
	x.Elems = append(x.Elems, y.Elems...)
}

// writeAttrs writes the unknown attributes onto e.
func (x *xmlExtra) writeAttrs(e *etree.Element) {
	for _, a := range x.Attrs {
		if a.URI == "" {
			e.CreateAttr(a.Local, a.Value)
			continue
		}
		p := nsPrefix(e, a.URI, a.Prefix, false)
		e.CreateAttr(p+":"+a.Local, a.Value)
	}
}

// writeElems appends the unknown child elements to e and records them in
// skip, so that indentTree leaves their whitespace alone.
func (x *xmlExtra) writeElems(part string, e *etree.Element, skip map[*etree.Element]bool) error {
	for _, s := range x.Elems {
		c, err := insertFragment(e, s)
		if err != nil {
			return formatErr(part, err, "kept unknown element cannot be written back")
		}
		skip[c] = true
	}
	return nil
}

// parsePart parses an XML part with parseXMLTree and also rejects what
// XML Namespaces forbids and the checks there let through: a prefix declared
// with an empty namespace name, the prefixes xml and xmlns misused, and
// element names prefixed with xmlns.
func parsePart(part string, data []byte) (*etree.Document, error) {
	doc, err := parseXMLTree(part, data)
	if err != nil {
		return nil, err
	}
	var walk func(e *etree.Element) error
	walk = func(e *etree.Element) error {
		if e.Space == "xmlns" {
			return formatErr(part, nil, "element <%s:%s> uses the reserved prefix xmlns", e.Space, e.Tag)
		}
		if !qnameOK(e.Space, e.Tag) {
			return formatErr(part, nil, "element name %q is not a qualified name", e.FullTag())
		}
		for _, a := range e.Attr {
			if !qnameOK(a.Space, a.Key) {
				return formatErr(part, nil, "attribute name %q is not a qualified name", a.FullKey())
			}
			if a.Space != "xmlns" {
				continue
			}
			switch {
			case a.Value == "":
				return formatErr(part, nil, "prefix %q is declared with an empty namespace name", a.Key)
			case a.Key == "xmlns", a.Key == "xml" && a.Value != nsXML, a.Key != "xml" && a.Value == nsXML:
				return formatErr(part, nil, "declaration xmlns:%s=%q misuses a reserved prefix or namespace", a.Key, a.Value)
			}
		}
		for _, c := range e.ChildElements() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(doc.Root()); err != nil {
		return nil, err
	}
	return doc, nil
}

// qnameOK reports whether prefix:local is a namespace-well-formed name as
// encoding/xml splits it: a non-empty local part, no further colon.
func qnameOK(prefix, local string) bool {
	return local != "" && !strings.Contains(local, ":") && !strings.Contains(prefix, ":")
}

// checkAttrNames rejects an element carrying two attributes with the same
// expanded name (a namespace well-formedness rule encoding/xml does not
// enforce): written back with one prefix they would collapse into one.
func checkAttrNames(part string, e *etree.Element) error {
	if len(e.Attr) < 2 {
		return nil
	}
	seen := make(map[[2]string]bool, len(e.Attr))
	for _, a := range e.Attr {
		if isNSDecl(a) {
			continue
		}
		k := [2]string{attrURI(e, a), a.Key}
		if seen[k] {
			return formatErr(part, nil, "element <%s> has attribute %s twice", e.Tag, a.Key)
		}
		seen[k] = true
	}
	return nil
}

// fragmentOf serializes element e of a parsed tree so that it stands on its
// own: the namespace declarations its subtree uses are copied onto it from
// its ancestors. The root's declarations are sorted first, so the same
// element always serializes the same way wherever it was found.
func fragmentOf(e *etree.Element) string {
	c := e.Copy()
	used := usedPrefixes(c)
	declared := map[string]bool{}
	var decls, rest []etree.Attr
	for _, a := range c.Attr {
		if isNSDecl(a) {
			declared[declPrefix(a)] = true
			decls = append(decls, a)
		} else {
			rest = append(rest, a)
		}
	}
	for p := range used {
		if p == "xml" || declared[p] {
			continue
		}
		uri, ok := nsLookup(e.Parent(), p)
		if !ok {
			continue
		}
		if p == "" {
			decls = append(decls, etree.Attr{Key: "xmlns", Value: uri})
		} else {
			decls = append(decls, etree.Attr{Space: "xmlns", Key: p, Value: uri})
		}
	}
	slices.SortFunc(decls, func(a, b etree.Attr) int { return strings.Compare(declPrefix(a), declPrefix(b)) })
	c.Attr = c.Attr[:0]
	for _, a := range append(decls, rest...) {
		c.CreateAttr(a.FullKey(), a.Value)
	}
	doc := newXMLDocument()
	doc.SetRoot(c)
	s, _ := doc.WriteToString() // writing to memory does not fail
	return s
}

// insertFragment parses a fragment made by fragmentOf and appends it to
// parent, leaving out declarations of used prefixes that parent already
// binds the same way. It returns the appended element.
func insertFragment(parent *etree.Element, s string) (*etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		return nil, err
	}
	r := doc.Root()
	if r == nil {
		return nil, errors.New("no element in fragment")
	}
	used := usedPrefixes(r)
	kept := make([]etree.Attr, 0, len(r.Attr))
	for _, a := range r.Attr {
		if isNSDecl(a) && used[declPrefix(a)] {
			if u, ok := nsLookup(parent, declPrefix(a)); ok && u == a.Value {
				continue
			}
		}
		kept = append(kept, a)
	}
	r.Attr = r.Attr[:0]
	for _, a := range kept {
		r.CreateAttr(a.FullKey(), a.Value)
	}
	parent.AddChild(r)
	return r, nil
}

// usedPrefixes returns the prefixes that e and its descendants use in their
// names ("" for unprefixed elements) and attributes.
func usedPrefixes(e *etree.Element) map[string]bool {
	used := map[string]bool{}
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		used[el.Space] = true
		for _, a := range el.Attr {
			if a.Space != "" && a.Space != "xmlns" && a.Space != "xml" {
				used[a.Space] = true
			}
		}
		for _, ch := range el.ChildElements() {
			walk(ch)
		}
	}
	walk(e)
	return used
}

// indentTree puts each child element of a container element on its own line,
// two spaces deeper than its parent. Elements holding text, and the elements
// in skip (kept fragments, whose whitespace is content), are left alone.
func indentTree(e *etree.Element, depth int, skip map[*etree.Element]bool) {
	if skip[e] || len(e.Child) == 0 {
		return
	}
	for _, t := range e.Child {
		if cd, ok := t.(*etree.CharData); ok && !isBlank(cd.Data) {
			return
		}
	}
	kids := e.ChildElements()
	if len(kids) == 0 {
		return
	}
	for _, t := range detachChildren(e) {
		switch t := t.(type) {
		case *etree.CharData:
			// drop whitespace; it is rewritten below
		case *etree.Element:
			e.CreateText("\n" + strings.Repeat("  ", depth+1))
			e.AddChild(t)
			indentTree(t, depth+1, skip)
		default:
			e.CreateText("\n" + strings.Repeat("  ", depth+1))
			e.AddChild(t)
		}
	}
	e.CreateText("\n" + strings.Repeat("  ", depth))
}

// detachChildren removes and returns all child tokens of e.
func detachChildren(e *etree.Element) []etree.Token {
	out := make([]etree.Token, 0, len(e.Child))
	for len(e.Child) > 0 {
		out = append(out, e.RemoveChildAt(len(e.Child)-1))
	}
	slices.Reverse(out)
	return out
}

// writeXMLPart writes a document built by one of the struct-backed parts: an
// XML declaration, root indented, a final newline.
func writeXMLPart(root *etree.Element, skip map[*etree.Element]bool) ([]byte, error) {
	doc := newXMLDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="utf-8"`)
	doc.CreateText("\n")
	doc.SetRoot(root)
	indentTree(root, 0, skip)
	doc.CreateText("\n")
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// validXMLString reports whether s can be written into an XML document and
// read back unchanged: valid UTF-8 with only characters XML 1.0 allows.
func validXMLString(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// parseXSDBool parses an xs:boolean ("true", "false", "1", "0", surrounding
// whitespace allowed).
func parseXSDBool(s string) (bool, bool) {
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// isBlank reports whether s is only XML whitespace. (etree's IsWhitespace
// only knows text it parsed itself.)
func isBlank(s string) bool { return strings.Trim(s, " \t\r\n") == "" }
