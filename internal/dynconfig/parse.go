package dynconfig

import (
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/appv/appv/internal/appvpkg"
)

// ParseDeployment parses a DeploymentConfig.xml. Elements of other
// namespaces, and elements of its own that appv does not model (COM,
// ManagingAuthority, registry contents…), are skipped; what it models is
// checked as appvpkg checks the manifest's extension points.
func ParseDeployment(data []byte) (*Deployment, error) {
	doc, err := parseLimited(DeploymentPart, data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	r := reader{part: DeploymentPart, ns: NSDeployment}
	if root.Tag != "DeploymentConfiguration" || root.NamespaceURI() != NSDeployment {
		return nil, formatErr(DeploymentPart, nil, "the root element is <%s> in namespace %q, not <DeploymentConfiguration> in %s", root.FullTag(), root.NamespaceURI(), NSDeployment)
	}
	d := &Deployment{}
	if d.PackageID, d.DisplayName, err = r.identity(root); err != nil {
		return nil, err
	}
	uc, err := r.only(root, "UserConfiguration")
	if err != nil {
		return nil, err
	}
	if uc != nil {
		if d.User, err = r.config(uc); err != nil {
			return nil, err
		}
	}
	mc, err := r.only(root, "MachineConfiguration")
	if err != nil {
		return nil, err
	}
	if mc != nil {
		if d.Machine, err = r.machine(mc); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ParseUser parses a UserConfig.xml.
func ParseUser(data []byte) (*User, error) {
	doc, err := parseLimited(UserPart, data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	r := reader{part: UserPart, ns: NSUser}
	if root.Tag != "UserConfiguration" || root.NamespaceURI() != NSUser {
		return nil, formatErr(UserPart, nil, "the root element is <%s> in namespace %q, not <UserConfiguration> in %s", root.FullTag(), root.NamespaceURI(), NSUser)
	}
	u := &User{}
	if u.PackageID, u.DisplayName, err = r.identity(root); err != nil {
		return nil, err
	}
	if u.Config, err = r.config(root); err != nil {
		return nil, err
	}
	return u, nil
}

// reader reads the elements of one file's namespace.
type reader struct {
	part string
	ns   string
}

func (r reader) err(rule string, args ...any) error { return formatErr(r.part, nil, rule, args...) }

// kids returns e's child elements named local in the file's namespace.
func (r reader) kids(e *etree.Element, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == r.ns {
			out = append(out, c)
		}
	}
	return out
}

// kid returns the first child named local, or nil.
func (r reader) kid(e *etree.Element, local string) *etree.Element {
	if k := r.kids(e, local); len(k) > 0 {
		return k[0]
	}
	return nil
}

// only returns the child named local, nil if there is none, and an error if
// there are several.
func (r reader) only(e *etree.Element, local string) (*etree.Element, error) {
	k := r.kids(e, local)
	if len(k) > 1 {
		return nil, r.err("<%s> has more than one <%s>", e.Tag, local)
	}
	if len(k) == 0 {
		return nil, nil
	}
	return k[0], nil
}

// text returns the text of the first child named local, as written.
func (r reader) text(e *etree.Element, local string) string {
	if k := r.kid(e, local); k != nil {
		return k.Text()
	}
	return ""
}

// attr returns an unprefixed attribute.
func attr(e *etree.Element, local string) (string, bool) {
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == local {
			return a.Value, true
		}
	}
	return "", false
}

// parseBool reads an xsd:boolean.
func parseBool(s string) (bool, bool) {
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// boolAttr reads a boolean attribute, def when absent.
func (r reader) boolAttr(e *etree.Element, local string, def bool) (bool, error) {
	v, ok := attr(e, local)
	if !ok {
		return def, nil
	}
	b, ok := parseBool(v)
	if !ok {
		return false, r.err("<%s> %s=%q is not a boolean (true or false)", e.Tag, local, v)
	}
	return b, nil
}

// identity reads and checks the root's PackageId and DisplayName.
func (r reader) identity(root *etree.Element) (id, name string, err error) {
	id, ok := attr(root, "PackageId")
	if !ok || id == "" {
		return "", "", r.err("<%s> has no PackageId", root.Tag)
	}
	if _, err := appvpkg.ParseGUID(id); err != nil || strings.ContainsAny(id, "{}") {
		return "", "", r.err("PackageId %q is not a GUID", id)
	}
	name, _ = attr(root, "DisplayName")
	return id, name, nil
}

// switchOf reads a subsystem element's Enabled attribute.
func (r reader) switchOf(e *etree.Element) (Switch, error) {
	on, err := r.boolAttr(e, "Enabled", true)
	return Switch{Set: true, Enabled: on}, err
}

// config reads a UserConfiguration body.
func (r reader) config(e *etree.Element) (Config, error) {
	var c Config
	sub, err := r.only(e, "Subsystems")
	if err != nil {
		return c, err
	}
	if sub != nil {
		if c.Subsystems, err = r.subsystems(sub); err != nil {
			return c, err
		}
	}
	apps, err := r.only(e, "Applications")
	if err != nil {
		return c, err
	}
	if apps != nil {
		if c.Applications, err = r.applications(apps); err != nil {
			return c, err
		}
	}
	scripts, err := r.only(e, "UserScripts")
	if err != nil {
		return c, err
	}
	if scripts != nil {
		if c.Scripts, err = r.scripts(scripts, false); err != nil {
			return c, err
		}
	}
	return c, nil
}

// subsystems reads the user-context <Subsystems>.
func (r reader) subsystems(e *etree.Element) (Subsystems, error) {
	var s Subsystems
	seen := map[string]bool{}
	for _, c := range e.ChildElements() {
		if c.NamespaceURI() != r.ns {
			continue
		}
		var err error
		switch c.Tag {
		case "Shortcuts":
			s.Shortcuts, err = r.extensions(c, appvpkg.CategoryShortcut)
		case "FileTypeAssociations":
			s.FileTypeAssociations, err = r.extensions(c, appvpkg.CategoryFileTypeAssociation)
		case "URLProtocols":
			s.URLProtocols, err = r.extensions(c, appvpkg.CategoryURLProtocol)
		case "AppPaths":
			s.AppPaths, err = r.extensions(c, appvpkg.CategoryAppPath)
		case "SoftwareClients":
			s.SoftwareClients, err = r.extensions(c, CategorySoftwareClient)
		case "EnvironmentVariables":
			s.EnvironmentVariables, err = r.environment(c)
		case "Objects":
			s.Objects, err = r.switchOf(c)
		case "Registry":
			s.Registry, err = r.switchOf(c)
		case "FileSystem":
			s.FileSystem, err = r.switchOf(c)
		case "Fonts":
			s.Fonts, err = r.switchOf(c)
		case "Services":
			s.Services, err = r.switchOf(c)
		default:
			continue // COM and others appv does not model
		}
		if err != nil {
			return s, err
		}
		if seen[c.Tag] {
			return s, r.err("<Subsystems> has more than one <%s>", c.Tag)
		}
		seen[c.Tag] = true
	}
	return s, nil
}

// extensions reads an extension subsystem whose extension points are all of
// one category.
func (r reader) extensions(e *etree.Element, category string) (Extensions, error) {
	sw, err := r.switchOf(e)
	x := Extensions{Switch: sw}
	if err != nil {
		return x, err
	}
	list, err := r.only(e, "Extensions")
	if err != nil || list == nil {
		return x, err
	}
	x.Replace = true
	for _, ext := range r.kids(list, "Extension") {
		cat, _ := attr(ext, "Category")
		if cat == "" {
			return x, r.err("<%s>: an Extension without a Category", e.Tag)
		}
		if cat != category {
			return x, r.err("<%s> holds an extension point of category %s, not %s", e.Tag, cat, category)
		}
		v, err := r.extension(ext, cat)
		if err != nil {
			return x, err
		}
		x.Extensions = append(x.Extensions, v...)
	}
	return x, nil
}

// extension reads one <Extension>: its typed extension points (usually one)
// for the categories appvpkg models, else one Extension with its category.
func (r reader) extension(e *etree.Element, cat string) ([]appvpkg.Extension, error) {
	var out []appvpkg.Extension
	for _, c := range e.ChildElements() {
		if c.NamespaceURI() != r.ns {
			continue
		}
		x := appvpkg.Extension{Category: cat}
		var err error
		switch {
		case cat == appvpkg.CategoryShortcut && c.Tag == "Shortcut":
			x.Shortcut, err = r.shortcut(c)
		case cat == appvpkg.CategoryFileTypeAssociation && c.Tag == "FileTypeAssociation":
			x.FileTypeAssociation, err = r.fta(c)
		case cat == appvpkg.CategoryURLProtocol && c.Tag == "URLProtocol":
			x.URLProtocol, err = r.urlProtocol(c)
		case cat == appvpkg.CategoryAppPath && c.Tag == "AppPath":
			x.AppPath, err = r.appPath(c)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	if len(out) == 0 {
		out = append(out, appvpkg.Extension{Category: cat})
	}
	return out, nil
}

func (r reader) shortcut(e *etree.Element) (*appvpkg.Shortcut, error) {
	s := &appvpkg.Shortcut{
		File:             r.text(e, "File"),
		Target:           r.text(e, "Target"),
		Icon:             r.text(e, "Icon"),
		Arguments:        r.text(e, "Arguments"),
		WorkingDirectory: r.text(e, "WorkingDirectory"),
		AppUserModelID:   r.text(e, "AppUserModelId"),
		Description:      r.text(e, "Description"),
		Hotkey:           r.text(e, "Hotkey"),
		ApplicationID:    r.text(e, "ApplicationId"),
	}
	if s.File == "" {
		return nil, r.err("a Shortcut without a File")
	}
	if sc := strings.TrimSpace(r.text(e, "ShowCommand")); sc != "" {
		n, err := strconv.Atoi(sc)
		if err != nil || n < 0 {
			return nil, r.err("shortcut %q: ShowCommand %q is not a number", s.File, sc)
		}
		s.ShowCommand = n
	}
	return s, nil
}

func (r reader) shellCommands(e *etree.Element) *appvpkg.ShellCommands {
	sc := r.kid(e, "ShellCommands")
	if sc == nil {
		return nil
	}
	out := &appvpkg.ShellCommands{DefaultCommand: r.text(sc, "DefaultCommand")}
	for _, c := range r.kids(sc, "ShellCommand") {
		out.Commands = append(out.Commands, appvpkg.ShellCommand{
			ApplicationID: r.text(c, "ApplicationId"),
			Name:          r.text(c, "Name"),
			FriendlyName:  r.text(c, "FriendlyName"),
			CommandLine:   r.text(c, "CommandLine"),
		})
	}
	return out
}

func (r reader) fta(e *etree.Element) (*appvpkg.FileTypeAssociation, error) {
	f := &appvpkg.FileTypeAssociation{}
	if fe := r.kid(e, "FileExtension"); fe != nil {
		x := &appvpkg.FileExtension{
			Name:          r.text(fe, "Name"),
			ProgID:        r.text(fe, "ProgId"),
			ContentType:   r.text(fe, "ContentType"),
			PerceivedType: r.text(fe, "PerceivedType"),
		}
		if x.Name == "" {
			return nil, r.err("a FileExtension without a Name")
		}
		var err error
		if x.MimeAssociation, err = r.boolAttr(fe, "MimeAssociation", false); err != nil {
			return nil, err
		}
		f.FileExtension = x
	}
	if pe := r.kid(e, "ProgId"); pe != nil {
		f.ProgID = &appvpkg.ProgID{
			Name:             r.text(pe, "Name"),
			Description:      r.text(pe, "Description"),
			EditFlags:        r.text(pe, "EditFlags"),
			DefaultIcon:      r.text(pe, "DefaultIcon"),
			FriendlyTypeName: r.text(pe, "FriendlyTypeName"),
			ShellCommands:    r.shellCommands(pe),
		}
		if f.ProgID.Name == "" {
			return nil, r.err("a ProgId without a Name")
		}
	}
	if f.FileExtension == nil && f.ProgID == nil {
		return nil, r.err("a FileTypeAssociation with neither FileExtension nor ProgId")
	}
	return f, nil
}

func (r reader) urlProtocol(e *etree.Element) (*appvpkg.URLProtocol, error) {
	u := &appvpkg.URLProtocol{Name: r.text(e, "Name")}
	if u.Name == "" {
		return nil, r.err("a URLProtocol without a Name")
	}
	if ap := r.kid(e, "ApplicationURLProtocol"); ap != nil {
		u.Description = r.text(ap, "Description")
		u.EditFlags = r.text(ap, "EditFlags")
		u.DefaultIcon = r.text(ap, "DefaultIcon")
		u.FriendlyTypeName = r.text(ap, "FriendlyTypeName")
		u.ShellCommands = r.shellCommands(ap)
	}
	return u, nil
}

func (r reader) appPath(e *etree.Element) (*appvpkg.AppPath, error) {
	a := &appvpkg.AppPath{
		Name:                          r.text(e, "Name"),
		ApplicationPath:               r.text(e, "ApplicationPath"),
		ApplicationID:                 r.text(e, "ApplicationId"),
		PATHEnvironmentVariablePrefix: r.text(e, "PATHEnvironmentVariablePrefix"),
	}
	if a.Name == "" {
		return nil, r.err("an AppPath without a Name")
	}
	return a, nil
}

// environment reads the EnvironmentVariables subsystem.
func (r reader) environment(e *etree.Element) (Environment, error) {
	sw, err := r.switchOf(e)
	env := Environment{Switch: sw}
	if err != nil {
		return env, err
	}
	for _, inc := range r.kids(e, "Include") {
		for _, v := range r.kids(inc, "Variable") {
			name, _ := attr(v, "Name")
			value, _ := attr(v, "Value")
			if name == "" {
				return env, r.err("an environment Variable without a Name")
			}
			env.Include = append(env.Include, appvpkg.EnvironmentVariable{Name: name, Value: value})
		}
	}
	for _, del := range r.kids(e, "Delete") {
		for _, v := range r.kids(del, "Variable") {
			name, _ := attr(v, "Name")
			if name == "" {
				return env, r.err("a deleted environment Variable without a Name")
			}
			env.Delete = append(env.Delete, name)
		}
	}
	return env, nil
}

// applications reads <Applications>.
func (r reader) applications(e *etree.Element) ([]Application, error) {
	var out []Application
	seen := map[string]bool{}
	for _, ae := range r.kids(e, "Application") {
		id, _ := attr(ae, "Id")
		if id == "" {
			return nil, r.err("an Application without an Id")
		}
		if seen[id] {
			return nil, r.err("application %q is listed twice", id)
		}
		seen[id] = true
		on, err := r.boolAttr(ae, "Enabled", true)
		if err != nil {
			return nil, err
		}
		a := Application{ID: id, Enabled: on}
		if ve := r.kid(ae, "VisualElements"); ve != nil {
			a.Name, a.Icon, a.Description = r.text(ve, "Name"), r.text(ve, "Icon"), r.text(ve, "Description")
		}
		out = append(out, a)
	}
	return out, nil
}

// machineOnly are the script events that run in the machine's context only
// and so belong in MachineScripts.
var machineOnly = []string{"AddPackage", "RemovePackage"}

// scripts reads UserScripts (machine false) or MachineScripts.
func (r reader) scripts(e *etree.Element, machine bool) ([]appvpkg.Script, error) {
	var out []appvpkg.Script
	seen := map[string]bool{}
	for _, c := range e.ChildElements() {
		if c.NamespaceURI() != r.ns {
			continue
		}
		switch {
		case !slices.Contains(appvpkg.ScriptEvents, c.Tag):
			return nil, r.err("<%s> holds <%s>, which is not a script event (%s)", e.Tag, c.Tag, strings.Join(appvpkg.ScriptEvents, ", "))
		case !machine && slices.Contains(machineOnly, c.Tag):
			return nil, r.err("%s scripts run in the machine's context: they belong in MachineScripts of %s", c.Tag, DeploymentPart)
		case seen[c.Tag]:
			return nil, r.err("<%s> has two %s scripts (run several with a script runner)", e.Tag, c.Tag)
		}
		seen[c.Tag] = true
		s := appvpkg.Script{
			Event:         c.Tag,
			Path:          r.text(c, "Path"),
			Arguments:     r.text(c, "Arguments"),
			ApplicationID: r.text(c, "ApplicationId"),
		}
		if s.Path == "" {
			return nil, r.err("%s script without a Path", s.Event)
		}
		if _, ok := attr(c, "RunInVirtualEnvironment"); ok {
			b, err := r.boolAttr(c, "RunInVirtualEnvironment", false)
			if err != nil {
				return nil, err
			}
			s.RunInVirtualEnvironment = &b
		}
		if w := r.kid(c, "Wait"); w != nil {
			s.Wait = &appvpkg.ScriptWait{}
			var err error
			if s.Wait.RollbackOnError, err = r.boolAttr(w, "RollbackOnError", false); err != nil {
				return nil, err
			}
			v, ok := attr(w, "Timeout")
			if !ok {
				v, ok = attr(w, "timeout") // as Microsoft's documentation writes it
			}
			if ok {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil || n < 0 {
					return nil, r.err("%s script: Timeout %q is not a number of seconds", s.Event, v)
				}
				s.Wait.Timeout = n
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// machine reads <MachineConfiguration>.
func (r reader) machine(e *etree.Element) (Machine, error) {
	var m Machine
	opt, err := r.only(e, "ProductSourceURLOptOut")
	if err != nil {
		return m, err
	}
	if opt != nil {
		if m.ProductSourceURLOptOut, err = r.switchOf(opt); err != nil {
			return m, err
		}
	}
	sub, err := r.only(e, "Subsystems")
	if err != nil {
		return m, err
	}
	if sub != nil {
		for _, c := range sub.ChildElements() {
			if c.NamespaceURI() != r.ns {
				continue
			}
			switch c.Tag {
			case "ApplicationCapabilities":
				m.Subsystems.ApplicationCapabilities, err = r.extensions(c, CategoryApplicationCapabilities)
			case "Objects":
				m.Subsystems.Objects, err = r.switchOf(c)
			case "Registry":
				m.Subsystems.Registry, err = r.switchOf(c)
			}
			if err != nil {
				return m, err
			}
		}
	}
	scripts, err := r.only(e, "MachineScripts")
	if err != nil {
		return m, err
	}
	if scripts != nil {
		if m.Scripts, err = r.scripts(scripts, true); err != nil {
			return m, err
		}
	}
	for _, t := range r.kids(e, "TerminateChildProcesses") {
		for _, a := range r.kids(t, "Application") {
			p, _ := attr(a, "Path")
			if p == "" {
				return m, r.err("a TerminateChildProcesses Application without a Path")
			}
			m.TerminateChildProcesses = append(m.TerminateChildProcesses, p)
		}
	}
	return m, nil
}
