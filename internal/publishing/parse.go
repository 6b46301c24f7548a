package publishing

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
)

// ErrFormat is wrapped by every error Parse returns for a document that
// breaks a rule (through *FormatError).
var ErrFormat = errors.New("publishing: malformed publishing document")

// FormatError is one broken rule of a publishing document.
type FormatError struct {
	Line    int    // line of the document, 0 when it is the whole document
	Element string // the element: its path, e.g. "Publishing/Packages/Package", or its name for XML-level rules; "" for the document
	Rule    string // the rule broken, in a few words
	Err     error  // optional cause (an XML syntax error)
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("publishing: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Element != "" {
		fmt.Fprintf(&b, "<%s>: ", e.Element)
	}
	b.WriteString(e.Rule)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is match ErrFormat and the cause.
func (e *FormatError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrFormat, e.Err}
	}
	return []error{ErrFormat}
}

// Parse reads a publishing document without a base URL: relative references
// are left as written. A client uses ParseWithBase.
func Parse(data []byte) (*Document, error) {
	return ParseWithBase(data, nil)
}

// ParseWithBase reads a publishing document that was fetched from base (the
// publishing URL, an absolute http, https or file URL), resolving relative
// package and configuration URLs against it as RFC 3986 says.
//
// The document is untrusted: it is at most MaxDocumentSize bytes and
// MaxDepth levels deep, has no DOCTYPE, and every GUID, URL and number in it
// is checked. Its elements are in no namespace (MS-VAPR uses none); elements
// and attributes Parse does not know, or in another namespace, are ignored, so
// that later servers can add to the document. The rules:
//   - the root is <Publishing Protocol="2.0">, holding at most one each of
//     <Packages>, <NoGroup> and <Groups>, in any order;
//   - a <Package> in <Packages> has a PackageId and a VersionId (GUIDs,
//     with or without braces, in any case) and a PackageUrl: an http, https
//     or file URL, a UNC path, or a relative reference; no PackageId twice;
//   - its <DeploymentConfiguration> and <UserConfiguration> (one each at
//     most) have a ConfigurationId (0 to 65535) and a Path (a URL as above,
//     not UNC); Timestamp (xs:dateTime; UTC when it has no zone) and Conflict
//     (xs:boolean) may be left out;
//   - a <Package> in <NoGroup> has a PackageId; repeats are dropped;
//   - a <Group> has a GroupId and a VersionId (GUIDs; no GroupId twice), a
//     Priority (0 to 255, default 0) and a Name (default "");
//   - a <Package> in a <Group> has a PackageId, and a VersionId unless
//     VersionOptional is true (or VersionId is "*"): then any version will
//     do. PackageOptional defaults to false.
//
// A group that names packages the document does not entitle is kept, with
// its Unusable reason set by CheckGroups, rather than failing the document.
// Errors wrap ErrFormat and name the line, the element and the rule.
func ParseWithBase(data []byte, base *url.URL) (*Document, error) {
	if base != nil && !(base.IsAbs() && (base.Scheme == "http" || base.Scheme == "https" || base.Scheme == "file")) {
		return nil, fmt.Errorf("publishing: base URL %q is not an absolute http, https or file URL", base.Redacted())
	}
	if len(data) > MaxDocumentSize {
		return nil, &FormatError{Rule: fmt.Sprintf("document is %d bytes, more than the limit of %d", len(data), MaxDocumentSize)}
	}
	r, err := newReader(data)
	if err != nil {
		return nil, err
	}
	p := &parser{r: r, base: base, doc: &Document{Protocol: Protocol}, packages: map[string]bool{}}
	if err := p.document(); err != nil {
		return nil, err
	}
	p.doc.CheckGroups()
	return p.doc, nil
}

type parser struct {
	r        *reader
	base     *url.URL
	doc      *Document
	packages map[string]bool // PackageIds seen in <Packages>
}

const (
	pathRoot     = "Publishing"
	pathPackages = pathRoot + "/Packages"
	pathPackage  = pathPackages + "/Package"
	pathNoGroup  = pathRoot + "/NoGroup/Package"
	pathGroups   = pathRoot + "/Groups"
	pathGroup    = pathGroups + "/Group"
	pathMember   = pathGroup + "/Package"
)

// errAt returns a FormatError for the element of tok.
func errAt(tok *token, path, format string, args ...any) error {
	return &FormatError{Line: tok.line, Element: path, Rule: fmt.Sprintf(format, args...)}
}

// is reports whether tok is the start of an element called local in no namespace.
func is(tok *token, local string) bool {
	return tok.start && tok.name.Space == "" && tok.name.Local == local
}

// protocol2 matches the xs:decimal values equal to 2.
var protocol2 = regexp.MustCompile(`^\+?0*2(\.0*)?$`)

func (p *parser) document() error {
	root, err := p.r.next()
	if err != nil {
		return err
	}
	if !is(&root, "Publishing") {
		where := ""
		if root.name.Space != "" {
			where = " in namespace " + strconv.Quote(root.name.Space)
		}
		return errAt(&root, root.name.Local, "the root element must be <Publishing> in no namespace, not <%s>%s", root.name.Local, where)
	}
	proto, ok := root.attr("Protocol")
	switch {
	case !ok:
		return errAt(&root, pathRoot, "no Protocol attribute")
	case !protocol2.MatchString(strings.TrimSpace(proto)):
		return errAt(&root, pathRoot, "Protocol is %q; only %s is understood", proto, Protocol)
	}
	seen := map[string]bool{}
	for {
		tok, err := p.r.next()
		if err != nil {
			return err
		}
		if !tok.start {
			break
		}
		var section func() error
		switch {
		case is(&tok, "Packages"):
			section = p.packagesSection
		case is(&tok, "NoGroup"):
			section = p.noGroupSection
		case is(&tok, "Groups"):
			section = p.groupsSection
		default:
			if err := p.r.skip(); err != nil {
				return err
			}
			continue
		}
		if seen[tok.name.Local] {
			return errAt(&tok, pathRoot+"/"+tok.name.Local, "more than one <%s>", tok.name.Local)
		}
		seen[tok.name.Local] = true
		if err := section(); err != nil {
			return err
		}
	}
	// After the root: only comments and processing instructions.
	if _, err := p.r.next(); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// children calls f for each child element called local (in no namespace) of
// the element just opened, skipping the others, up to its end tag.
func (p *parser) children(local string, f func(tok *token) error) error {
	for {
		tok, err := p.r.next()
		if err != nil {
			return err
		}
		switch {
		case !tok.start:
			return nil
		case is(&tok, local):
			if err := f(&tok); err != nil {
				return err
			}
		default:
			if err := p.r.skip(); err != nil {
				return err
			}
		}
	}
}

func (p *parser) packagesSection() error {
	return p.children("Package", func(tok *token) error {
		pkg := Package{}
		var err error
		if pkg.PackageID, err = guidAttr(tok, pathPackage, "PackageId"); err != nil {
			return err
		}
		if p.packages[pkg.PackageID] {
			return errAt(tok, pathPackage, "package %s is listed twice", pkg.PackageID)
		}
		p.packages[pkg.PackageID] = true
		if pkg.VersionID, err = guidAttr(tok, pathPackage, "VersionId"); err != nil {
			return err
		}
		if pkg.URL, err = p.locationAttr(tok, pathPackage, "PackageUrl", true); err != nil {
			return err
		}
		for {
			child, err := p.r.next()
			if err != nil {
				return err
			}
			if !child.start {
				break
			}
			var dst **Config
			switch {
			case is(&child, "DeploymentConfiguration"):
				dst = &pkg.DeploymentConfig
			case is(&child, "UserConfiguration"):
				dst = &pkg.UserConfig
			default:
				if err := p.r.skip(); err != nil {
					return err
				}
				continue
			}
			path := pathPackage + "/" + child.name.Local
			if *dst != nil {
				return errAt(&child, path, "more than one in a package")
			}
			if *dst, err = p.config(&child, path); err != nil {
				return err
			}
			if err := p.r.skip(); err != nil {
				return err
			}
		}
		p.doc.Packages = append(p.doc.Packages, pkg)
		return nil
	})
}

func (p *parser) config(tok *token, path string) (*Config, error) {
	c := &Config{}
	v, ok := tok.attr("ConfigurationId")
	if !ok {
		return nil, errAt(tok, path, "no ConfigurationId attribute")
	}
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	if err != nil {
		return nil, errAt(tok, path, "ConfigurationId %q is not a number from 0 to 65535", v)
	}
	c.ID = int(id)
	if c.URL, err = p.locationAttr(tok, path, "Path", false); err != nil {
		return nil, err
	}
	if v, ok := tok.attr("Timestamp"); ok {
		if c.Timestamp, err = parseDateTime(v); err != nil {
			return nil, errAt(tok, path, "Timestamp %q is not an xs:dateTime (2006-01-02T15:04:05.1234567Z)", v)
		}
	}
	if tok.name.Local == "UserConfiguration" {
		if c.Conflict, err = boolAttr(tok, path, "Conflict"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (p *parser) noGroupSection() error {
	seen := map[string]bool{}
	return p.children("Package", func(tok *token) error {
		id, err := guidAttr(tok, pathNoGroup, "PackageId")
		if err != nil {
			return err
		}
		if !seen[id] {
			seen[id] = true
			p.doc.NoGroup = append(p.doc.NoGroup, id)
		}
		return p.r.skip()
	})
}

func (p *parser) groupsSection() error {
	seen := map[string]bool{}
	return p.children("Group", func(tok *token) error {
		g := Group{}
		var err error
		if g.GroupID, err = guidAttr(tok, pathGroup, "GroupId"); err != nil {
			return err
		}
		if seen[g.GroupID] {
			return errAt(tok, pathGroup, "group %s is listed twice", g.GroupID)
		}
		seen[g.GroupID] = true
		if g.VersionID, err = guidAttr(tok, pathGroup, "VersionId"); err != nil {
			return err
		}
		g.Name, _ = tok.attr("Name")
		if v, ok := tok.attr("Priority"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 8)
			if err != nil {
				return errAt(tok, pathGroup, "Priority %q is not a number from 0 to 255", v)
			}
			g.Priority = int(n)
		}
		err = p.children("Package", func(tok *token) error {
			m, err := member(tok)
			if err != nil {
				return err
			}
			g.Members = append(g.Members, m)
			return p.r.skip()
		})
		if err != nil {
			return err
		}
		p.doc.Groups = append(p.doc.Groups, g)
		return nil
	})
}

func member(tok *token) (Member, error) {
	m := Member{}
	var err error
	if m.PackageID, err = guidAttr(tok, pathMember, "PackageId"); err != nil {
		return m, err
	}
	if m.Optional, err = boolAttr(tok, pathMember, "PackageOptional"); err != nil {
		return m, err
	}
	anyVersion, err := boolAttr(tok, pathMember, "VersionOptional")
	if err != nil {
		return m, err
	}
	if v, ok := tok.attr("VersionId"); anyVersion || ok && strings.TrimSpace(v) == AnyVersion {
		m.VersionID = AnyVersion
		return m, nil
	}
	m.VersionID, err = guidAttr(tok, pathMember, "VersionId")
	return m, err
}

// guidAttr returns the GUID in attribute name of tok, in App-V's form.
func guidAttr(tok *token, path, name string) (string, error) {
	v, ok := tok.attr(name)
	if !ok {
		return "", errAt(tok, path, "no %s attribute", name)
	}
	g, err := appvpkg.ParseGUID(strings.TrimSpace(v))
	if err != nil {
		return "", errAt(tok, path, "%s %q is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", name, v)
	}
	return g, nil
}

// boolAttr returns the xs:boolean in attribute name of tok, false when absent.
func boolAttr(tok *token, path, name string) (bool, error) {
	v, ok := tok.attr(name)
	if !ok {
		return false, nil
	}
	switch strings.TrimSpace(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, errAt(tok, path, "%s %q is not true or false", name, v)
}

// locationAttr returns the URL in attribute name of tok, resolved against
// the base when it is relative. A UNC path is accepted when unc is set.
func (p *parser) locationAttr(tok *token, path, name string, unc bool) (string, error) {
	v, ok := tok.attr(name)
	if !ok {
		return "", errAt(tok, path, "no %s attribute", name)
	}
	loc, err := location(strings.TrimSpace(v), p.base, unc)
	if err != nil {
		return "", errAt(tok, path, "%s %q: %v", name, v, err)
	}
	return loc, nil
}

// location checks a package or configuration location (see ParseWithBase)
// and resolves it against base when it is relative and base is not nil.
func location(s string, base *url.URL, unc bool) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	if strings.HasPrefix(s, `\\`) {
		if !unc {
			return "", errors.New("a UNC path is not allowed here")
		}
		host, share, _ := strings.Cut(s[2:], `\`)
		share, _, _ = strings.Cut(share, `\`)
		if host == "" || share == "" {
			return "", errors.New(`a UNC path is \\server\share\…`)
		}
		return s, nil
	}
	if strings.Contains(s, `\`) {
		return "", errors.New(`a URL has no backslashes (a UNC path starts with \\)`)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "":
		if base == nil {
			return s, nil
		}
		return base.ResolveReference(u).String(), nil
	case "http", "https":
		if u.Host == "" {
			return "", errors.New("no host")
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", errors.New("a file URL's host must be empty or localhost (mount the share and use its path)")
		}
		if !strings.HasPrefix(u.Path, "/") {
			return "", errors.New("a file URL needs an absolute path")
		}
	default:
		return "", fmt.Errorf("scheme %q is not supported (http, https, file or a UNC path)", u.Scheme)
	}
	return s, nil
}

// parseDateTime reads an xs:dateTime; without a time zone it is UTC, as
// MS-VAPR says. The result is UTC, to 100 ns.
func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		var err2 error
		if t, err2 = time.Parse("2006-01-02T15:04:05.999999999", s); err2 != nil {
			return time.Time{}, err
		}
	}
	return t.UTC().Truncate(100 * time.Nanosecond), nil
}
