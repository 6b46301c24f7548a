package dynconfig

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/appv/appv/internal/appvpkg"
)

// extensionSubsystem names the element of an extension subsystem and the
// category of its extension points.
type extensionSubsystem struct {
	elem, category string
	// always: written even when the manifest has none of the category, so
	// the administrator finds the switch in the template.
	always bool
}

// userExtensionSubsystems are the extension subsystems of the user
// configuration, in the order App-V's documentation lists them.
var userExtensionSubsystems = []extensionSubsystem{
	{"Shortcuts", appvpkg.CategoryShortcut, true},
	{"FileTypeAssociations", appvpkg.CategoryFileTypeAssociation, true},
	{"URLProtocols", appvpkg.CategoryURLProtocol, true},
	{"SoftwareClients", CategorySoftwareClient, false},
	{"AppPaths", appvpkg.CategoryAppPath, true},
}

// Generate writes the dynamic configuration templates of a package, as App-V's
// Sequencer does: a DeploymentConfig.xml and a UserConfig.xml that mirror
// the manifest, so that applying them unchanged changes nothing and an
// administrator edits them rather than writes them. Every extension point of
// a subsystem is copied in (with its content of other namespaces, such as
// appv's appvlinux data), every subsystem is written Enabled="true", every
// application is listed with its visual elements; the manifest's scripts
// are copied, or else an example is left in a comment. The output depends
// only on the manifest.
//
// The files have no nesting: an extension point the manifest nests in an
// application gets that application's ApplicationId (on a Shortcut, an
// AppPath or a ShellCommand that names none), so that disabling the
// application still removes it; a nested association with neither verbs nor
// a ProgId of its own has no place for it. User scripts of the manifest at
// AddPackage or RemovePackage run in the machine's context and have no place
// in a user configuration; they are left out, as are a second script for an
// event (Merge, like App-V, takes one per event).
func Generate(m *appvpkg.Manifest) (deployment, user []byte, err error) {
	data, err := m.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("dynconfig: %w", err)
	}
	src := etree.NewDocument()
	if err := src.ReadFromBytes(data); err != nil {
		return nil, nil, fmt.Errorf("dynconfig: manifest: %w", err)
	}
	g := &generator{view: m.View(), byCategory: manifestExtensions(src.Root())}

	doc, root, c := g.document("DeploymentConfiguration", NSDeployment)
	g.userConfiguration(root.CreateElement("UserConfiguration"), c, "    ")
	g.machineConfiguration(root.CreateElement("MachineConfiguration"), c)
	if deployment, err = finish(doc, c); err != nil {
		return nil, nil, err
	}

	doc, root, c = g.document("UserConfiguration", NSUser)
	g.userConfiguration(root, c, "  ")
	if user, err = finish(doc, c); err != nil {
		return nil, nil, err
	}
	return deployment, user, nil
}

// generator holds what Generate reads of the manifest.
type generator struct {
	view       appvpkg.ManifestView
	byCategory map[string][]manifestExtension
}

// manifestExtension is an appv:Extension element of the manifest and the
// application it is nested in ("" at package level).
type manifestExtension struct {
	elem  *etree.Element
	owner string
}

// manifestExtensions lists the manifest's appv:Extension elements by
// category: package-level ones first, then each application's, as
// Manifest.Extensions lists them.
func manifestExtensions(root *etree.Element) map[string][]manifestExtension {
	out := map[string][]manifestExtension{}
	add := func(container *etree.Element, owner string) {
		for _, x := range container.ChildElements() {
			if x.Tag == "Extension" && isAppVNS(x.NamespaceURI()) {
				cat := x.SelectAttrValue("Category", "")
				out[cat] = append(out[cat], manifestExtension{elem: x, owner: owner})
			}
		}
	}
	for _, c := range root.ChildElements() {
		if c.Tag == "Extensions" && isAppVNS(c.NamespaceURI()) {
			add(c, "")
		}
	}
	for _, c := range root.ChildElements() {
		if c.Tag != "Applications" || !isAppVNS(c.NamespaceURI()) {
			continue
		}
		for _, a := range c.ChildElements() {
			if a.Tag != "Application" || !isAppVNS(a.NamespaceURI()) {
				continue
			}
			id := a.SelectAttrValue("Id", "")
			for _, x := range a.ChildElements() {
				if x.Tag == "Extensions" && isAppVNS(x.NamespaceURI()) {
					add(x, id)
				}
			}
		}
	}
	return out
}

// claimOwner gives a copied extension point of an application the
// ApplicationId its nesting implied: a configuration file has no nesting.
// Shortcuts, app paths and shell commands that name none get the owner's.
func claimOwner(ext *etree.Element, owner string) {
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		switch e.Tag {
		case "Shortcut", "AppPath", "ShellCommand":
			if e.Space == "" && e.SelectElement("ApplicationId") == nil {
				e.CreateElement("ApplicationId").SetText(owner)
			}
		}
		for _, c := range e.ChildElements() {
			if c.Space == "" {
				walk(c)
			}
		}
	}
	walk(ext)
}

// isAppVNS reports whether uri is one of App-V's manifest namespaces.
func isAppVNS(uri string) bool {
	return strings.HasPrefix(uri, "http://schemas.microsoft.com/appv/") && strings.HasSuffix(uri, "/manifest")
}

// document starts a configuration file with its root element.
func (g *generator) document(tag, ns string) (*etree.Document, *etree.Element, *copier) {
	doc := etree.NewDocument()
	doc.WriteSettings.CanonicalAttrVal = true
	doc.WriteSettings.CanonicalText = true
	doc.CreateProcInst("xml", `version="1.0" encoding="utf-8"`)
	root := doc.CreateElement(tag)
	name := g.view.Properties.DisplayName
	if name == "" {
		name = g.view.Identity.Name
	}
	root.CreateAttr("PackageId", g.view.Identity.PackageID)
	root.CreateAttr("DisplayName", name)
	root.CreateAttr("IgnorableNamespaces", "")
	root.CreateAttr("xmlns", ns)
	return doc, root, &copier{root: root, prefixes: map[string]string{}}
}

// finish lists the declared foreign namespaces as ignorable, indents and
// writes the document.
func finish(doc *etree.Document, c *copier) ([]byte, error) {
	doc.Root().CreateAttr("IgnorableNamespaces", strings.Join(c.order, " "))
	s := etree.NewIndentSettings()
	s.Spaces = 2
	s.PreserveLeafWhitespace = true
	doc.IndentWithSettings(s)
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("dynconfig: %w", err)
	}
	return out, nil
}

// userConfiguration fills a UserConfiguration element (the deployment file's
// section, or the user file's root); ind is the indentation of its
// children.
func (g *generator) userConfiguration(uc *etree.Element, c *copier, ind string) {
	sub := uc.CreateElement("Subsystems")
	for _, es := range userExtensionSubsystems {
		g.extensionSubsystem(sub, es, c)
	}
	for _, name := range []string{"Objects", "Registry", "FileSystem", "Fonts"} {
		sub.CreateElement(name).CreateAttr("Enabled", "true")
	}
	g.environment(sub)
	sub.CreateElement("Services").CreateAttr("Enabled", "true")

	apps := uc.CreateElement("Applications")
	for _, a := range g.view.Applications {
		ae := apps.CreateElement("Application")
		ae.CreateAttr("Id", a.ID)
		ae.CreateAttr("Enabled", "true")
		ve := ae.CreateElement("VisualElements")
		ve.CreateElement("Name").SetText(a.DisplayName)
		ve.CreateElement("Icon").SetText(a.Icon)
		ve.CreateElement("Description").SetText(a.Description)
	}

	var scripts []appvpkg.Script
	for _, s := range g.view.UserScripts {
		if !slices.Contains(machineOnly, s.Event) {
			scripts = append(scripts, s)
		}
	}
	if len(scripts) > 0 {
		writeScripts(uc.CreateElement("UserScripts"), scripts)
	} else {
		uc.CreateComment(exampleComment(userScriptsExample, ind))
	}
}

// extensionSubsystem writes one extension subsystem with copies of the
// manifest's extension points of its category.
func (g *generator) extensionSubsystem(parent *etree.Element, es extensionSubsystem, c *copier) {
	exts := g.byCategory[es.category]
	if len(exts) == 0 && !es.always {
		return
	}
	e := parent.CreateElement(es.elem)
	e.CreateAttr("Enabled", "true")
	if len(exts) == 0 {
		return
	}
	list := e.CreateElement("Extensions")
	for _, x := range exts {
		cp := c.copy(x.elem)
		if x.owner != "" {
			claimOwner(cp, x.owner)
		}
		list.AddChild(cp)
	}
}

// environment writes the EnvironmentVariables subsystem with the manifest's
// variables.
func (g *generator) environment(parent *etree.Element) {
	e := parent.CreateElement("EnvironmentVariables")
	e.CreateAttr("Enabled", "true")
	var inc []appvpkg.EnvironmentVariable
	var del []string
	for _, x := range g.view.Extensions {
		if x.EnvironmentVariables != nil {
			inc = append(inc, x.EnvironmentVariables.Include...)
			del = append(del, x.EnvironmentVariables.Delete...)
		}
	}
	if len(inc) > 0 {
		ie := e.CreateElement("Include")
		for _, v := range inc {
			ve := ie.CreateElement("Variable")
			ve.CreateAttr("Name", v.Name)
			ve.CreateAttr("Value", v.Value)
		}
	}
	if len(del) > 0 {
		de := e.CreateElement("Delete")
		for _, n := range del {
			de.CreateElement("Variable").CreateAttr("Name", n)
		}
	}
}

// machineConfiguration fills the deployment file's MachineConfiguration.
func (g *generator) machineConfiguration(mc *etree.Element, c *copier) {
	mc.CreateElement("ProductSourceURLOptOut").CreateAttr("Enabled", "true")
	sub := mc.CreateElement("Subsystems")
	if exts := g.byCategory[CategoryApplicationCapabilities]; len(exts) > 0 {
		g.extensionSubsystem(sub, extensionSubsystem{"ApplicationCapabilities", CategoryApplicationCapabilities, false}, c)
	} else {
		sub.CreateComment(" Machine-wide subsystems: ApplicationCapabilities (extension points that need a global publish). ")
	}
	if len(g.view.MachineScripts) > 0 {
		writeScripts(mc.CreateElement("MachineScripts"), g.view.MachineScripts)
	} else {
		mc.CreateComment(exampleComment(machineScriptsExample, "    "))
	}
	tcp := mc.CreateElement("TerminateChildProcesses")
	example := "[{AppVPackageRoot}]/bin/app"
	if len(g.view.Applications) > 0 {
		example = g.view.Applications[0].ID
	}
	tcp.CreateComment(commentText(" Child processes of these applications end when they exit: <Application Path=\"" + example + "\" /> "))
}

// commentText makes text safe inside an XML comment, which cannot hold two
// hyphens in a row or end with one.
func commentText(s string) string {
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "- -")
	}
	if strings.HasSuffix(s, "-") {
		s += " "
	}
	return s
}

// writeScripts writes scripts into their container, one element per event
// (the first, as Merge takes it, when the manifest has several).
func writeScripts(parent *etree.Element, scripts []appvpkg.Script) {
	var done []string
	for _, s := range scripts {
		if slices.Contains(done, s.Event) {
			continue
		}
		done = append(done, s.Event)
		e := parent.CreateElement(s.Event)
		if s.RunInVirtualEnvironment != nil {
			e.CreateAttr("RunInVirtualEnvironment", strconv.FormatBool(*s.RunInVirtualEnvironment))
		}
		e.CreateElement("Path").SetText(s.Path)
		if s.Arguments != "" {
			e.CreateElement("Arguments").SetText(s.Arguments)
		}
		if s.Wait != nil {
			w := e.CreateElement("Wait")
			w.CreateAttr("RollbackOnError", strconv.FormatBool(s.Wait.RollbackOnError))
			if s.Wait.Timeout > 0 {
				w.CreateAttr("Timeout", strconv.Itoa(s.Wait.Timeout))
			}
		}
		if s.ApplicationID != "" {
			e.CreateElement("ApplicationId").SetText(s.ApplicationID)
		}
	}
}

// The script examples left in comments (an XML comment cannot hold two
// hyphens in a row), a line each, indented below the comment.
var (
	userScriptsExample = []string{
		"User scripts: uncomment and edit to run a program at an event, in the user's context.",
		"Events: PublishPackage, UnpublishPackage, StartVirtualEnvironment, TerminateVirtualEnvironment,",
		"StartProcess and ExitProcess (these two may name an ApplicationId). Paths may use tokens.",
		"<UserScripts>",
		"  <StartVirtualEnvironment RunInVirtualEnvironment=\"true\">",
		"    <Path>[{AppVPackageRoot}]/bin/first-run</Path>",
		"    <Arguments>setup</Arguments>",
		"    <Wait RollbackOnError=\"true\" Timeout=\"30\" />",
		"  </StartVirtualEnvironment>",
		"</UserScripts>",
	}
	machineScriptsExample = []string{
		"Machine scripts: uncomment and edit to run a program at an event, in the machine's context (as root).",
		"Events: AddPackage, RemovePackage, PublishPackage, UnpublishPackage (and the user events).",
		"<MachineScripts>",
		"  <AddPackage>",
		"    <Path>/usr/local/sbin/prepare-package</Path>",
		"    <Arguments>add</Arguments>",
		"    <Wait RollbackOnError=\"true\" Timeout=\"30\" />",
		"  </AddPackage>",
		"</MachineScripts>",
	}
)

// exampleComment lays out an example's lines for a comment whose "<!--" is
// at indentation ind.
func exampleComment(lines []string, ind string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\n" + ind + "  " + l)
	}
	b.WriteString("\n" + ind)
	return commentText(b.String())
}

// copier copies manifest elements into a configuration file: App-V's
// elements into the file's default namespace, others into prefixes declared
// on the file's root (and listed in IgnorableNamespaces).
type copier struct {
	root     *etree.Element
	prefixes map[string]string // namespace URI -> prefix
	order    []string          // prefixes in declaration order
}

// prefix returns the prefix of a foreign namespace, declaring it on the root
// the first time.
func (c *copier) prefix(uri, preferred string) string {
	if uri == nsXML {
		return "xml"
	}
	if p, ok := c.prefixes[uri]; ok {
		return p
	}
	if preferred == "" || preferred == "xml" || preferred == "xmlns" {
		preferred = "ns"
	}
	p := preferred
	for i := 1; slices.Contains(c.order, p); i++ {
		p = preferred + strconv.Itoa(i)
	}
	c.root.CreateAttr("xmlns:"+p, uri)
	c.prefixes[uri] = p
	c.order = append(c.order, p)
	return p
}

// copy copies an element and its subtree. Whitespace between elements is
// dropped (the document is indented afresh); text is kept as it is.
func (c *copier) copy(src *etree.Element) *etree.Element {
	n := etree.NewElement(src.Tag)
	switch uri := src.NamespaceURI(); {
	case uri == "":
		n.CreateAttr("xmlns", "") // in no namespace
	case !isAppVNS(uri):
		n.Space = c.prefix(uri, src.Space)
	}
	for _, a := range src.Attr {
		switch {
		case a.Space == "xmlns" || a.Space == "" && a.Key == "xmlns":
		case a.Space == "":
			n.CreateAttr(a.Key, a.Value)
		case a.Space == "xml":
			n.CreateAttr("xml:"+a.Key, a.Value)
		case isAppVNS(a.NamespaceURI()):
			n.CreateAttr(a.Key, a.Value)
		default:
			n.CreateAttr(c.prefix(a.NamespaceURI(), a.Space)+":"+a.Key, a.Value)
		}
	}
	hasElems := len(src.ChildElements()) > 0
	for _, ch := range src.Child {
		switch ch := ch.(type) {
		case *etree.Element:
			n.AddChild(c.copy(ch))
		case *etree.CharData:
			if !hasElems || strings.Trim(ch.Data, " \t\r\n") != "" {
				n.AddChild(etree.NewText(ch.Data))
			}
		case *etree.Comment:
			n.CreateComment(ch.Data)
		}
	}
	return n
}
