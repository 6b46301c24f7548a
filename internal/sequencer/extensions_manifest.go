package sequencer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/appv/appv/internal/appvpkg"
)

// write adds the planned applications and extension points to the manifest,
// then the appvlinux elements. appvpkg's AddExtension takes typed extension
// points only, so the appvlinux elements are placed in the written
// document, which is parsed back: appvpkg keeps content of other namespaces
// through a round trip (docs/package-xml-parts.md).
func (d *detector) write() error {
	for _, a := range d.apps {
		if err := d.m.AddApplication(a); err != nil {
			return fmt.Errorf("sequencer: add application %s: %w", a.ID, err)
		}
	}
	linux := false
	for _, p := range d.exts {
		if err := d.m.AddExtension(p.x); err != nil {
			return fmt.Errorf("sequencer: add extension point: %w", err)
		}
		linux = linux || p.linux != nil
	}
	var mimeTypes *etree.Element
	if d.mime != nil {
		mimeTypes = mimeTypesElement(d.mime.defined)
	}
	if !linux && mimeTypes == nil {
		return nil
	}
	data, err := d.m.Marshal()
	if err != nil {
		return fmt.Errorf("sequencer: manifest: %w", err)
	}
	doc := etree.NewDocument()
	doc.WriteSettings.CanonicalAttrVal = true
	doc.WriteSettings.CanonicalText = true
	if err := doc.ReadFromBytes(data); err != nil {
		return fmt.Errorf("sequencer: manifest: %w", err)
	}
	root := doc.Root()
	prefix := bindNamespace(root, NSLinuxManifest, linuxPrefix)
	if linux {
		added, err := addedExtensions(root, d.exts)
		if err != nil {
			return err
		}
		for i, p := range d.exts {
			if p.linux == nil {
				continue
			}
			typed := firstAppVChild(added[i])
			if typed == nil {
				return fmt.Errorf("sequencer: manifest: extension %d has no typed element", i)
			}
			setPrefix(p.linux, prefix)
			appendIndented(typed, p.linux)
		}
	}
	if mimeTypes != nil {
		setPrefix(mimeTypes, prefix)
		appendIndented(root, mimeTypes)
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		return fmt.Errorf("sequencer: manifest: %w", err)
	}
	m, err := appvpkg.ParseManifest(out)
	if err != nil {
		return fmt.Errorf("sequencer: manifest with Linux integration data: %w", err)
	}
	*d.m = *m
	return nil
}

// isAppVNS reports whether uri is one of App-V's manifest namespaces.
func isAppVNS(uri string) bool {
	return strings.HasPrefix(uri, "http://schemas.microsoft.com/appv/") && strings.HasSuffix(uri, "/manifest")
}

// addedExtensions returns the appv:Extension elements AddExtension appended
// for exts: the last ones of the package-level appv:Extensions.
func addedExtensions(root *etree.Element, exts []plannedExt) ([]*etree.Element, error) {
	var all []*etree.Element
	for _, c := range root.ChildElements() {
		if c.Tag == "Extensions" && isAppVNS(c.NamespaceURI()) {
			for _, x := range c.ChildElements() {
				if x.Tag == "Extension" && isAppVNS(x.NamespaceURI()) {
					all = append(all, x)
				}
			}
			break
		}
	}
	if len(all) < len(exts) {
		return nil, fmt.Errorf("sequencer: manifest: %d extension points added, %d found", len(exts), len(all))
	}
	added := all[len(all)-len(exts):]
	for i, p := range exts {
		want, _ := categoryOf(p.x)
		if got := added[i].SelectAttrValue("Category", ""); got != want {
			return nil, fmt.Errorf("sequencer: manifest: extension point %d is %s, expected %s", i, got, want)
		}
	}
	return added, nil
}

// categoryOf is the category of a typed extension point.
func categoryOf(x appvpkg.Extension) (string, bool) {
	switch {
	case x.Shortcut != nil:
		return appvpkg.CategoryShortcut, true
	case x.FileTypeAssociation != nil:
		return appvpkg.CategoryFileTypeAssociation, true
	case x.URLProtocol != nil:
		return appvpkg.CategoryURLProtocol, true
	case x.AppPath != nil:
		return appvpkg.CategoryAppPath, true
	case x.EnvironmentVariables != nil:
		return appvpkg.CategoryEnvironmentVariables, true
	}
	return x.Category, false
}

func firstAppVChild(e *etree.Element) *etree.Element {
	for _, c := range e.ChildElements() {
		if isAppVNS(c.NamespaceURI()) {
			return c
		}
	}
	return nil
}

// bindNamespace returns the prefix root binds to uri, declaring it (as
// preferred, or preferred1, …) and listing it in IgnorableNamespaces when it
// is not yet declared, as App-V does with its own newer namespaces.
func bindNamespace(root *etree.Element, uri, preferred string) string {
	for _, a := range root.Attr {
		if a.Space == "xmlns" && a.Value == uri {
			return a.Key
		}
	}
	taken := func(p string) bool {
		for _, a := range root.Attr {
			if a.Space == "xmlns" && a.Key == p {
				return true
			}
		}
		return root.Space == p
	}
	p := preferred
	for i := 1; taken(p); i++ {
		p = preferred + strconv.Itoa(i)
	}
	root.CreateAttr("xmlns:"+p, uri)
	ign := strings.Fields(root.SelectAttrValue("IgnorableNamespaces", ""))
	if !slices.Contains(ign, p) {
		root.CreateAttr("IgnorableNamespaces", strings.Join(append(ign, p), " "))
	}
	return p
}

// setPrefix gives the appvlinux elements of a subtree their prefix.
func setPrefix(e *etree.Element, prefix string) {
	if e.Space == linuxPrefix {
		e.Space = prefix
	}
	for _, c := range e.ChildElements() {
		setPrefix(c, prefix)
	}
}

// appendIndented appends child as the last child element of parent,
// indented like parent's children (or one step deeper than parent), and
// indents child's own element-only content.
func appendIndented(parent, child *etree.Element) {
	pi := indentOf(parent)
	unit := "  "
	ci := pi + unit
	if kids := parent.ChildElements(); len(kids) > 0 {
		if ind, ok := indentBefore(kids[0]); ok {
			ci = ind
			if len(ci) > len(pi) && strings.HasPrefix(ci, pi) {
				unit = ci[len(pi):]
			}
		}
	}
	reindent(child, ci, unit)
	if n := len(parent.Child); n > 0 {
		if cd, ok := parent.Child[n-1].(*etree.CharData); ok && isBlank(cd.Data) {
			parent.RemoveChildAt(n - 1)
		}
	}
	parent.AddChild(etree.NewText("\n" + ci))
	parent.AddChild(child)
	parent.AddChild(etree.NewText("\n" + pi))
}

// indentOf is the indentation before element e ("" for the root).
func indentOf(e *etree.Element) string {
	ind, _ := indentBefore(e)
	return ind
}

// indentBefore returns what follows the last newline of the whitespace
// before e, and whether there is such a line break.
func indentBefore(e *etree.Element) (string, bool) {
	p := e.Parent()
	if p == nil {
		return "", false
	}
	i := e.Index()
	if i <= 0 {
		return "", false
	}
	cd, ok := p.Child[i-1].(*etree.CharData)
	if !ok || !isBlank(cd.Data) || !strings.Contains(cd.Data, "\n") {
		return "", false
	}
	return cd.Data[strings.LastIndexByte(cd.Data, '\n')+1:], true
}

func isBlank(s string) bool { return strings.Trim(s, " \t\r\n") == "" }

// reindent lays out an element whose content is elements only (and
// whitespace, and comments) one child per line at ind+unit; text content is
// left as it is.
func reindent(e *etree.Element, ind, unit string) {
	var kids []etree.Token
	for _, c := range e.Child {
		switch c := c.(type) {
		case *etree.CharData:
			if !isBlank(c.Data) {
				return
			}
		case *etree.Element, *etree.Comment:
			kids = append(kids, c)
		default:
			return
		}
	}
	if len(kids) == 0 {
		return
	}
	for len(e.Child) > 0 {
		e.RemoveChildAt(0)
	}
	for _, k := range kids {
		e.AddChild(etree.NewText("\n" + ind + unit))
		e.AddChild(k)
		if ke, ok := k.(*etree.Element); ok {
			reindent(ke, ind+unit, unit)
		}
	}
	e.AddChild(etree.NewText("\n" + ind))
}
