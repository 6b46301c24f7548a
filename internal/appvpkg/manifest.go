package appvpkg

import (
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// AppxManifest.xml of an App-V package is an AppX 2010 manifest with App-V's
// additions in the appv namespaces:
//
//	<Package xmlns="http://schemas.microsoft.com/appx/2010/manifest"
//	    xmlns:appv="http://schemas.microsoft.com/appv/2010/manifest"
//	    xmlns:appv1.1="http://schemas.microsoft.com/appv/2013/manifest"
//	    xmlns:appv1.2="http://schemas.microsoft.com/appv/2014/manifest"
//	    IgnorableNamespaces="appv appv1.1 appv1.2">
//	  <Identity Name="Reserved" Publisher="CN=Reserved" Version="0.0.0.1"
//	      appv:PackageId="…" appv:VersionId="…" />
//	  <Properties>
//	    <DisplayName>7-Zip</DisplayName> … <Logo>Reserved.jpeg</Logo>
//	    <appv:AppVPackageDescription>…</appv:AppVPackageDescription>
//	    <appv1.2:FullVFSWriteMode>false</appv1.2:FullVFSWriteMode>
//	  </Properties>
//	  <Resources>…</Resources>
//	  <Prerequisites>…</Prerequisites>
//	  <appv:Extensions>
//	    <appv:Extension Category="AppV.Shortcut"><appv:Shortcut>…</appv:Shortcut></appv:Extension>
//	  </appv:Extensions>
//	  <appv:AssetIntelligence>…</appv:AssetIntelligence>
//	  <appv:Applications>
//	    <appv:Application Id="[{AppVPackageRoot}]\7zFM.exe" Origin="Application">
//	      <appv:Target>[{AppVPackageRoot}]\7zFM.exe</appv:Target>
//	      <appv:VisualElements><appv:Name>7-Zip File Manager</appv:Name>…</appv:VisualElements>
//	      <appv:Extensions>…</appv:Extensions>
//	    </appv:Application>
//	  </appv:Applications>
//	  <appv:ExtensionsConfiguration>…</appv:ExtensionsConfiguration>
//	  <appv:MachineScripts>…</appv:MachineScripts>
//	  <appv:UserScripts>…</appv:UserScripts>
//	</Package>
//
// A Manifest keeps the parsed document itself and edits it in place, so
// everything this package does not model (asset intelligence, COM, fonts,
// extensions of other namespaces, comments) is written back as it was,
// prefixes and order included. Typed views are computed from the tree.
// App-V's elements are recognised in every appv namespace version (the
// sequencer puts newer elements in newer namespaces).

// Namespaces of AppxManifest.xml.
const (
	// NSAppx is the AppX 2010 manifest namespace, the default namespace of an
	// App-V manifest.
	NSAppx = "http://schemas.microsoft.com/appx/2010/manifest"
	// NSAppV is App-V 5.0's namespace (prefix appv).
	NSAppV = "http://schemas.microsoft.com/appv/2010/manifest"
	// NSAppV2013 is App-V 5.0 SP2's namespace (prefix appv1.1).
	NSAppV2013 = "http://schemas.microsoft.com/appv/2013/manifest"
	// NSAppV2014 is App-V 5.0 SP3's namespace (prefix appv1.2), which holds
	// FullVFSWriteMode among others.
	NSAppV2014 = "http://schemas.microsoft.com/appv/2014/manifest"
)

// isAppVNS reports whether uri is one of App-V's manifest namespaces: the
// three above and later ones of the same form.
func isAppVNS(uri string) bool {
	switch uri {
	case NSAppV, NSAppV2013, NSAppV2014:
		return true
	}
	return strings.HasPrefix(uri, "http://schemas.microsoft.com/appv/") && strings.HasSuffix(uri, "/manifest")
}

// Manifest is an AppxManifest.xml: the XML tree, with typed views and edits.
// Its zero value is not usable; use ParseManifest or NewManifest.
type Manifest struct {
	doc *etree.Document
}

// Identity is the package identity. PackageID stays the same across versions
// of a package; VersionID is new for each version.
type Identity struct {
	Name                  string `json:"name"`
	Publisher             string `json:"publisher"`
	Version               string `json:"version"` // four numbers 0-65535, "1.2.3.4"
	ProcessorArchitecture string `json:"processorArchitecture,omitempty"`
	PackageID             string `json:"packageId"` // appv:PackageId, a GUID
	VersionID             string `json:"versionId"` // appv:VersionId, a GUID
}

// Properties are the package's display properties.
type Properties struct {
	DisplayName          string `json:"displayName,omitempty"`
	PublisherDisplayName string `json:"publisherDisplayName,omitempty"`
	Description          string `json:"description,omitempty"`
	Logo                 string `json:"logo,omitempty"`
	// AppVPackageDescription is appv:AppVPackageDescription.
	AppVPackageDescription string `json:"appvPackageDescription,omitempty"`
	// FullVFSWriteMode (appv1.2) lets the application write anywhere in its
	// virtual file system.
	FullVFSWriteMode bool `json:"fullVFSWriteMode,omitempty"`
}

// Application is one application of the package (appv:Application).
type Application struct {
	// ID is the tokenized path of the executable, e.g.
	// `[{AppVPackageRoot}]\bin\app`; extension points refer to it.
	ID string `json:"id"`
	// Origin is how the sequencer found it: "Application" or "User".
	Origin string `json:"origin,omitempty"`
	// TargetInPackage says whether Target is a file of the package.
	TargetInPackage *bool  `json:"targetInPackage,omitempty"`
	Target          string `json:"target,omitempty"`
	// From appv:VisualElements.
	DisplayName string `json:"displayName,omitempty"`
	Icon        string `json:"icon,omitempty"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version,omitempty"`
}

// ManifestView is everything the manifest says that this package models,
// typed, for programs and for JSON output.
type ManifestView struct {
	Identity     Identity      `json:"identity"`
	Properties   Properties    `json:"properties"`
	Applications []Application `json:"applications,omitempty"`
	// Extensions are package-level ones first, then each application's.
	Extensions     []Extension `json:"extensions,omitempty"`
	MachineScripts []Script    `json:"machineScripts,omitempty"`
	UserScripts    []Script    `json:"userScripts,omitempty"`
}

// ParseManifest parses and validates AppxManifest.xml.
func ParseManifest(data []byte) (*Manifest, error) {
	doc, err := parsePart(ManifestPart, data)
	if err != nil {
		return nil, err
	}
	doc.WriteSettings.CanonicalAttrVal = true
	doc.WriteSettings.CanonicalText = true
	m := &Manifest{doc: doc}
	if _, err := m.view(); err != nil {
		return nil, err
	}
	return m, nil
}

// NewManifest starts a manifest for a new package: the namespace
// declarations and IgnorableNamespaces App-V's Sequencer writes, the
// identity, and the elements an AppX 2010 manifest requires, filled as the
// Sequencer fills them (DisplayName from id.Name, Logo "Reserved.jpeg",
// Resources en-us, Prerequisites 6.1). The identity is checked by Marshal
// and by SetIdentity, not here.
func NewManifest(id Identity) *Manifest {
	doc := newXMLDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="utf-8"`)
	doc.CreateText("\n")
	pkg := doc.CreateElement("Package")
	pkg.CreateAttr("xmlns", NSAppx)
	pkg.CreateAttr("xmlns:appv", NSAppV)
	pkg.CreateAttr("xmlns:appv1.1", NSAppV2013)
	pkg.CreateAttr("xmlns:appv1.2", NSAppV2014)
	pkg.CreateAttr("IgnorableNamespaces", "appv appv1.1 appv1.2")
	doc.CreateText("\n")
	ident := pkg.CreateElement("Identity")
	writeIdentity(ident, id)
	props := pkg.CreateElement("Properties")
	props.CreateElement("DisplayName").SetText(id.Name)
	props.CreateElement("PublisherDisplayName").SetText(id.Publisher)
	props.CreateElement("Logo").SetText("Reserved.jpeg")
	pkg.CreateElement("Resources").CreateElement("Resource").CreateAttr("Language", "en-us")
	pre := pkg.CreateElement("Prerequisites")
	pre.CreateElement("OSMinVersion").SetText("6.1")
	pre.CreateElement("OSMaxVersionTested").SetText("6.1")
	indentTree(pkg, 0, nil)
	return &Manifest{doc: doc}
}

// Marshal validates the manifest and writes it. A parsed manifest that was
// not edited is written back as it was read (as UTF-8, without a byte-order
// mark).
func (m *Manifest) Marshal() ([]byte, error) {
	if _, err := m.view(); err != nil {
		return nil, err
	}
	return m.doc.WriteToBytes()
}

// View returns everything the manifest models.
func (m *Manifest) View() ManifestView {
	v, _ := m.view() // validated by ParseManifest and by every edit
	return v
}

// Identity returns the package identity.
func (m *Manifest) Identity() Identity { return m.View().Identity }

// Properties returns the display properties.
func (m *Manifest) Properties() Properties { return m.View().Properties }

// Applications returns the applications in document order.
func (m *Manifest) Applications() []Application { return m.View().Applications }

// Extensions returns every extension point: the package-level ones, then
// each application's, with Application naming the owner.
func (m *Manifest) Extensions() []Extension { return m.View().Extensions }

// MachineScripts returns the scripts run in the machine's context.
func (m *Manifest) MachineScripts() []Script { return m.View().MachineScripts }

// UserScripts returns the scripts run in the user's context.
func (m *Manifest) UserScripts() []Script { return m.View().UserScripts }

// root returns the Package element, or nil for an unusable Manifest.
func (m *Manifest) root() *etree.Element {
	if m == nil || m.doc == nil {
		return nil
	}
	return m.doc.Root()
}

// view computes the typed view and validates the manifest.
func (m *Manifest) view() (ManifestView, error) {
	var v ManifestView
	root := m.root()
	if root == nil {
		return v, formatErr(ManifestPart, nil, "no manifest")
	}
	if !isElem(root, NSAppx, "Package") {
		return v, formatErr(ManifestPart, nil, "root element is <%s>, not <Package> in namespace %s", root.FullTag(), NSAppx)
	}
	ids := childrenNS(root, NSAppx, "Identity")
	switch len(ids) {
	case 0:
		return v, formatErr(ManifestPart, nil, "missing <Identity>")
	case 1:
	default:
		return v, formatErr(ManifestPart, nil, "more than one <Identity>")
	}
	v.Identity = readIdentity(ids[0])
	if err := checkIdentity(v.Identity); err != nil {
		return v, err
	}
	props := childrenNS(root, NSAppx, "Properties")
	if len(props) > 1 {
		return v, formatErr(ManifestPart, nil, "more than one <Properties>")
	}
	if len(props) == 1 {
		p, err := readProperties(props[0])
		if err != nil {
			return v, err
		}
		v.Properties = p
	}
	var appExts []Extension
	ids2 := map[string]bool{}
	for _, apps := range avChildren(root, "Applications") {
		for _, ae := range avChildren(apps, "Application") {
			a, err := readApplication(ae)
			if err != nil {
				return v, err
			}
			if ids2[a.ID] {
				return v, formatErr(ManifestPart, nil, "application %q is listed twice", a.ID)
			}
			ids2[a.ID] = true
			v.Applications = append(v.Applications, a)
			for _, exts := range avChildren(ae, "Extensions") {
				x, err := readExtensions(exts, a.ID)
				if err != nil {
					return v, err
				}
				appExts = append(appExts, x...)
			}
		}
	}
	for _, exts := range avChildren(root, "Extensions") {
		x, err := readExtensions(exts, "")
		if err != nil {
			return v, err
		}
		v.Extensions = append(v.Extensions, x...)
	}
	v.Extensions = append(v.Extensions, appExts...)
	var err error
	if v.MachineScripts, err = readScripts(root, "MachineScripts"); err != nil {
		return v, err
	}
	if v.UserScripts, err = readScripts(root, "UserScripts"); err != nil {
		return v, err
	}
	return v, nil
}

// avChildren returns the children of e named local in any App-V namespace.
func avChildren(e *etree.Element, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if c.Tag == local && isAppVNS(elemURI(c)) {
			out = append(out, c)
		}
	}
	return out
}

// avChild returns the first child of e named local in an App-V namespace.
func avChild(e *etree.Element, local string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == local && isAppVNS(elemURI(c)) {
			return c
		}
	}
	return nil
}

// avText returns the text of the first App-V child of e named local.
func avText(e *etree.Element, local string) string {
	if c := avChild(e, local); c != nil {
		return c.Text()
	}
	return ""
}

// avAttr returns attribute local of e, unprefixed or in an App-V namespace.
func avAttr(e *etree.Element, local string) (string, bool) {
	if v, ok := attrNS(e, "", local); ok {
		return v, true
	}
	for _, a := range e.Attr {
		if a.Key == local && a.Space != "" && !isNSDecl(a) && isAppVNS(attrURI(e, a)) {
			return a.Value, true
		}
	}
	return "", false
}

// appxText returns the text of the first child of e named {NSAppx}local.
func appxText(e *etree.Element, local string) string {
	if cs := childrenNS(e, NSAppx, local); len(cs) > 0 {
		return cs[0].Text()
	}
	return ""
}

func readIdentity(e *etree.Element) Identity {
	var id Identity
	id.Name, _ = attrNS(e, "", "Name")
	id.Publisher, _ = attrNS(e, "", "Publisher")
	id.Version, _ = attrNS(e, "", "Version")
	id.ProcessorArchitecture, _ = attrNS(e, "", "ProcessorArchitecture")
	id.PackageID, _ = attrNS(e, NSAppV, "PackageId")
	id.VersionID, _ = attrNS(e, NSAppV, "VersionId")
	return id
}

// checkIdentity validates an identity.
func checkIdentity(id Identity) error {
	for _, f := range []struct{ name, val string }{
		{"Name", id.Name}, {"Publisher", id.Publisher}, {"Version", id.Version},
		{"ProcessorArchitecture", id.ProcessorArchitecture},
		{"appv:PackageId", id.PackageID}, {"appv:VersionId", id.VersionID},
	} {
		if !validXMLString(f.val) {
			return formatErr(ManifestPart, nil, "Identity %s %q is not valid XML text", f.name, f.val)
		}
	}
	switch {
	case id.Name == "":
		return formatErr(ManifestPart, nil, "Identity has no Name")
	case id.Publisher == "":
		return formatErr(ManifestPart, nil, "Identity has no Publisher")
	case !isAppxVersion(id.Version):
		return formatErr(ManifestPart, nil, "Identity Version %q is not four numbers 0-65535 (like 1.0.0.0)", id.Version)
	case id.PackageID == "":
		return formatErr(ManifestPart, nil, "Identity has no appv:PackageId")
	case !isGUIDString(id.PackageID):
		return formatErr(ManifestPart, nil, "appv:PackageId %q is not a GUID", id.PackageID)
	case id.VersionID == "":
		return formatErr(ManifestPart, nil, "Identity has no appv:VersionId")
	case !isGUIDString(id.VersionID):
		return formatErr(ManifestPart, nil, "appv:VersionId %q is not a GUID", id.VersionID)
	}
	return nil
}

// isGUIDString reports whether s is a GUID written as App-V writes them:
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal, no braces.
func isGUIDString(s string) bool {
	if strings.ContainsAny(s, "{}") {
		return false
	}
	_, err := ParseGUID(s)
	return err == nil
}

// isAppxVersion reports whether s is an AppX version: four dot-separated
// decimal numbers, each 0-65535.
func isAppxVersion(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
			return false
		}
		if n, err := strconv.Atoi(p); err != nil || n > 65535 {
			return false
		}
	}
	return true
}

func readProperties(e *etree.Element) (Properties, error) {
	p := Properties{
		DisplayName:            appxText(e, "DisplayName"),
		PublisherDisplayName:   appxText(e, "PublisherDisplayName"),
		Description:            appxText(e, "Description"),
		Logo:                   appxText(e, "Logo"),
		AppVPackageDescription: avText(e, "AppVPackageDescription"),
	}
	if c := avChild(e, "FullVFSWriteMode"); c != nil {
		b, ok := parseXSDBool(c.Text())
		if !ok {
			return p, formatErr(ManifestPart, nil, "FullVFSWriteMode %q is not a boolean", c.Text())
		}
		p.FullVFSWriteMode = b
	}
	return p, nil
}

func readApplication(e *etree.Element) (Application, error) {
	var a Application
	a.ID, _ = avAttr(e, "Id")
	if a.ID == "" {
		return a, formatErr(ManifestPart, nil, "Application without an Id")
	}
	a.Origin, _ = avAttr(e, "Origin")
	if s, ok := avAttr(e, "TargetInPackage"); ok {
		b, ok := parseXSDBool(s)
		if !ok {
			return a, formatErr(ManifestPart, nil, "application %q TargetInPackage %q is not a boolean", a.ID, s)
		}
		a.TargetInPackage = &b
	}
	a.Target = avText(e, "Target")
	if ve := avChild(e, "VisualElements"); ve != nil {
		a.DisplayName = avText(ve, "Name")
		a.Icon = avText(ve, "Icon")
		a.Description = avText(ve, "Description")
		a.Version = avText(ve, "Version")
	}
	return a, nil
}

// application returns the appv:Application element with the given Id.
func (m *Manifest) application(id string) *etree.Element {
	root := m.root()
	if root == nil {
		return nil
	}
	for _, apps := range avChildren(root, "Applications") {
		for _, ae := range avChildren(apps, "Application") {
			if v, _ := avAttr(ae, "Id"); v == id {
				return ae
			}
		}
	}
	return nil
}

// SetIdentity replaces the package identity.
func (m *Manifest) SetIdentity(id Identity) error {
	if err := checkIdentity(id); err != nil {
		return err
	}
	root := m.root()
	if root == nil {
		return formatErr(ManifestPart, nil, "no manifest")
	}
	ids := childrenNS(root, NSAppx, "Identity")
	var e *etree.Element
	if len(ids) > 0 {
		e = ids[0]
	} else {
		e = m.insertChild(root, NSAppx, "Identity", packageRank)
	}
	writeIdentity(e, id)
	return nil
}

// writeIdentity sets the identity attributes of e, declaring appv if needed.
func writeIdentity(e *etree.Element, id Identity) {
	e.CreateAttr("Name", id.Name)
	e.CreateAttr("Publisher", id.Publisher)
	e.CreateAttr("Version", id.Version)
	if id.ProcessorArchitecture != "" {
		e.CreateAttr("ProcessorArchitecture", id.ProcessorArchitecture)
	} else {
		e.RemoveAttr("ProcessorArchitecture")
	}
	setAttrNS(e, NSAppV, "PackageId", id.PackageID)
	setAttrNS(e, NSAppV, "VersionId", id.VersionID)
}

// setAttrNS sets attribute {uri}local of e, reusing an existing attribute or
// a prefix in scope, or declaring "appv" on the document root.
func setAttrNS(e *etree.Element, uri, local, value string) {
	for i := range e.Attr {
		a := &e.Attr[i]
		if a.Key == local && a.Space != "" && !isNSDecl(*a) && attrURI(e, *a) == uri {
			a.Value = value
			return
		}
	}
	p := declareOnRoot(e, uri, "appv")
	e.CreateAttr(p+":"+local, value)
}

// declareOnRoot returns a prefix bound to uri at e; when there is none it
// declares one on the document's root element and lists it in
// IgnorableNamespaces, as App-V's own extension namespaces are.
func declareOnRoot(e *etree.Element, uri, preferred string) string {
	if p, ok := nsFind(e, uri, false); ok {
		return p
	}
	root := e
	for root.Parent() != nil && root.Parent().Parent() != nil {
		root = root.Parent()
	}
	p := nsPrefix(root, uri, preferred, false)
	if p, ok := nsFind(e, uri, false); !ok || p == "" {
		// A declaration on e's way down shadows the root's prefix: declare
		// on e itself.
		return nsPrefix(e, uri, preferred, false)
	}
	ign, _ := attrNS(root, "", "IgnorableNamespaces")
	if !slices.Contains(strings.Fields(ign), p) {
		root.CreateAttr("IgnorableNamespaces", strings.TrimSpace(ign+" "+p))
	}
	return p
}

// SetProperties replaces the display properties. Empty strings remove the
// element; FullVFSWriteMode false is written only if the element exists.
func (m *Manifest) SetProperties(p Properties) error {
	for _, s := range []string{p.DisplayName, p.PublisherDisplayName, p.Description, p.Logo, p.AppVPackageDescription} {
		if !validXMLString(s) {
			return formatErr(ManifestPart, nil, "property %q is not valid XML text", s)
		}
	}
	root := m.root()
	if root == nil {
		return formatErr(ManifestPart, nil, "no manifest")
	}
	var props *etree.Element
	if ps := childrenNS(root, NSAppx, "Properties"); len(ps) > 0 {
		props = ps[0]
	} else {
		props = m.insertChild(root, NSAppx, "Properties", packageRank)
	}
	set := func(uri, local, val string, find func() *etree.Element) {
		c := find()
		if val == "" {
			if c != nil {
				removeIndented(c)
			}
			return
		}
		if c == nil {
			c = m.insertChild(props, uri, local, propertiesRank)
		}
		c.SetText(val)
	}
	appx := func(local string) func() *etree.Element {
		return func() *etree.Element {
			if cs := childrenNS(props, NSAppx, local); len(cs) > 0 {
				return cs[0]
			}
			return nil
		}
	}
	av := func(local string) func() *etree.Element {
		return func() *etree.Element { return avChild(props, local) }
	}
	set(NSAppx, "DisplayName", p.DisplayName, appx("DisplayName"))
	set(NSAppx, "PublisherDisplayName", p.PublisherDisplayName, appx("PublisherDisplayName"))
	set(NSAppx, "Description", p.Description, appx("Description"))
	set(NSAppx, "Logo", p.Logo, appx("Logo"))
	set(NSAppV, "AppVPackageDescription", p.AppVPackageDescription, av("AppVPackageDescription"))
	if c := avChild(props, "FullVFSWriteMode"); c != nil || p.FullVFSWriteMode {
		if c == nil {
			c = m.insertChild(props, NSAppV2014, "FullVFSWriteMode", propertiesRank)
		}
		c.SetText(strconv.FormatBool(p.FullVFSWriteMode))
	}
	return nil
}

// AddApplication appends an application. Its ID must be new.
func (m *Manifest) AddApplication(a Application) error {
	if a.ID == "" {
		return formatErr(ManifestPart, nil, "Application without an Id")
	}
	for _, s := range []string{a.ID, a.Origin, a.Target, a.DisplayName, a.Icon, a.Description, a.Version} {
		if !validXMLString(s) {
			return formatErr(ManifestPart, nil, "application %q: %q is not valid XML text", a.ID, s)
		}
	}
	if m.application(a.ID) != nil {
		return formatErr(ManifestPart, nil, "application %q is listed twice", a.ID)
	}
	root := m.root()
	if root == nil {
		return formatErr(ManifestPart, nil, "no manifest")
	}
	apps := avChild(root, "Applications")
	if apps == nil {
		apps = m.insertChild(root, NSAppV, "Applications", packageRank)
	}
	e := newAV(apps, "Application")
	e.CreateAttr("Id", a.ID)
	if a.Origin != "" {
		e.CreateAttr("Origin", a.Origin)
	}
	if a.TargetInPackage != nil {
		e.CreateAttr("TargetInPackage", strconv.FormatBool(*a.TargetInPackage))
	}
	avLeaf(e, "Target", a.Target)
	if a.DisplayName != "" || a.Icon != "" || a.Description != "" || a.Version != "" {
		ve := newAV(e, "VisualElements")
		avLeaf(ve, "Name", a.DisplayName)
		avLeaf(ve, "Icon", a.Icon)
		avLeaf(ve, "Description", a.Description)
		avLeaf(ve, "Version", a.Version)
	}
	m.placeNew(apps, e, nil)
	return nil
}

// Ranks give the schema order of children, used to place new elements.
var (
	packageRank = map[string]int{
		"Identity": 0, "Properties": 1, "Resources": 2, "Prerequisites": 3,
		"Extensions": 4, "AssetIntelligence": 5, "Applications": 6,
		"ExtensionsConfiguration": 7, "MachineScripts": 8, "UserScripts": 9,
	}
	propertiesRank = map[string]int{
		"DisplayName": 0, "PublisherDisplayName": 1, "Description": 2, "Logo": 3,
		"AppVPackageDescription": 4, "FullVFSWriteMode": 5,
	}
)

// insertChild creates the element {uri}local under parent, before the first
// known sibling that comes after it in schema order (rank), and indents it.
func (m *Manifest) insertChild(parent *etree.Element, uri, local string, rank map[string]int) *etree.Element {
	e := etree.NewElement(local)
	r, known := rank[local]
	var before *etree.Element
	if known {
		for _, c := range parent.ChildElements() {
			if cr, ok := rank[c.Tag]; ok && cr > r && (elemURI(c) == NSAppx || isAppVNS(elemURI(c))) {
				before = c
				break
			}
		}
	}
	if before != nil {
		parent.InsertChildAt(before.Index(), e)
	} else {
		parent.AddChild(e)
	}
	if uri == NSAppx {
		e.Space = nsPrefix(e, uri, "appx", true)
	} else {
		if p, ok := nsFind(e, uri, true); ok {
			e.Space = p
		} else {
			e.Space = declareOnRoot(e, uri, avPreferredPrefix(uri))
		}
	}
	// Detach and re-place with whitespace.
	parent.RemoveChild(e)
	m.placeNew(parent, e, before)
	return e
}

func avPreferredPrefix(uri string) string {
	switch uri {
	case NSAppV2013:
		return "appv1.1"
	case NSAppV2014:
		return "appv1.2"
	}
	return "appv"
}

// newAV creates a child element of parent in the appv namespace, using a
// prefix already in scope at parent or declaring "appv" on the root. The
// element is attached at the end of parent (without whitespace); placeNew
// moves it where it belongs.
func newAV(parent *etree.Element, local string) *etree.Element {
	e := parent.CreateElement(local)
	if p, ok := nsFind(e, NSAppV, true); ok {
		e.Space = p
	} else {
		e.Space = declareOnRoot(e, NSAppV, "appv")
	}
	return e
}

// avLeaf adds <appv:local>text</appv:local> to parent if text is not empty.
func avLeaf(parent *etree.Element, local, text string) {
	if text == "" {
		return
	}
	newAV(parent, local).SetText(text)
}

// placeNew puts the new subtree e into parent before the element before
// (nil: at the end), with the document's indentation around and inside it.
func (m *Manifest) placeNew(parent, e, before *etree.Element) {
	if e.Parent() != nil {
		e.Parent().RemoveChild(e)
	}
	unit, indented := m.indentUnit()
	if !indented {
		if before != nil {
			parent.InsertChildAt(before.Index(), e)
		} else {
			parent.AddChild(e)
		}
		return
	}
	childInd := childIndent(parent, unit)
	indentNew(e, childInd, unit)
	ws := etree.NewText("\n" + childInd)
	if before != nil {
		i := before.Index()
		parent.InsertChildAt(i, ws)
		parent.InsertChildAt(i, e)
		// before's own leading whitespace now precedes e; ws precedes before.
		return
	}
	n := len(parent.Child)
	if n > 0 {
		if cd, ok := parent.Child[n-1].(*etree.CharData); ok && isBlank(cd.Data) {
			parent.InsertChildAt(n-1, e)
			parent.InsertChildAt(n-1, ws)
			return
		}
	}
	parent.AddChild(ws)
	parent.AddChild(e)
	parent.AddChild(etree.NewText("\n" + leadingIndent(parent)))
}

// removeIndented removes e and the whitespace before it.
func removeIndented(e *etree.Element) {
	p := e.Parent()
	if p == nil {
		return
	}
	i := e.Index()
	p.RemoveChildAt(i)
	if i > 0 {
		if cd, ok := p.Child[i-1].(*etree.CharData); ok && isBlank(cd.Data) {
			p.RemoveChildAt(i - 1)
		}
	}
}

// indentUnit guesses the document's indentation step from the whitespace
// before the root's first child element; indented is false for a document
// written without line breaks.
func (m *Manifest) indentUnit() (unit string, indented bool) {
	root := m.root()
	if root == nil {
		return "", false
	}
	kids := root.ChildElements()
	if len(kids) == 0 {
		return "  ", true
	}
	ind, ok := indentBefore(kids[0])
	switch {
	case !ok:
		return "", false
	case ind == "":
		return "  ", true
	}
	return ind, true
}

// indentBefore returns the indentation written before element e (what
// follows the last newline of the whitespace token before it).
func indentBefore(e *etree.Element) (string, bool) {
	p := e.Parent()
	if p == nil {
		return "", true
	}
	i := e.Index()
	if i == 0 {
		return "", false
	}
	cd, ok := p.Child[i-1].(*etree.CharData)
	if !ok || !isBlank(cd.Data) || !strings.Contains(cd.Data, "\n") {
		return "", false
	}
	return cd.Data[strings.LastIndexByte(cd.Data, '\n')+1:], true
}

// leadingIndent is the indentation of e itself ("" for the root).
func leadingIndent(e *etree.Element) string {
	if e.Parent() == nil || e.Parent().Parent() == nil {
		return ""
	}
	ind, _ := indentBefore(e)
	return ind
}

// childIndent is the indentation of parent's children: that of an existing
// child element, or parent's own plus one unit.
func childIndent(parent *etree.Element, unit string) string {
	for _, c := range parent.ChildElements() {
		if ind, ok := indentBefore(c); ok {
			return ind
		}
	}
	return leadingIndent(parent) + unit
}

// indentNew indents a freshly built subtree whose root sits at indentation
// ind: container elements get one child per line.
func indentNew(e *etree.Element, ind, unit string) {
	kids := e.ChildElements()
	if len(kids) == 0 || len(kids) != len(e.Child) {
		return
	}
	detachChildren(e)
	for _, k := range kids {
		e.AddChild(etree.NewText("\n" + ind + unit))
		e.AddChild(k)
		indentNew(k, ind+unit, unit)
	}
	e.AddChild(etree.NewText("\n" + ind))
}
