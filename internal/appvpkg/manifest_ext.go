package appvpkg

import (
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// Extension points and scripts of AppxManifest.xml. An extension point is
//
//	<appv:Extension Category="AppV.Shortcut">
//	  <appv:Shortcut>
//	    <appv:File>[{Common Programs}]\7-Zip\7-Zip File Manager.lnk</appv:File>
//	    <appv:Target>[{AppVPackageRoot}]\7zFM.exe</appv:Target>
//	    <appv:Icon>[{AppVPackageRoot}]\7zFM.exe.0.ico</appv:Icon>
//	    <appv:Arguments /><appv:WorkingDirectory /><appv:ShowCommand>1</appv:ShowCommand>
//	    <appv:ApplicationId>[{AppVPackageRoot}]\7zFM.exe</appv:ApplicationId>
//	  </appv:Shortcut>
//	</appv:Extension>
//
// inside <appv:Extensions>, either at package level or inside an
// <appv:Application>. The categories modeled here are those the Linux client
// integrates (shortcuts, file type associations, URL protocols, app paths,
// environment variables); others (COM, fonts, shell extensions, software
// clients…) are kept in the document and listed by category only.
//
// Scripts are <appv:MachineScripts> and <appv:UserScripts> at package level,
// one element per event:
//
//	<appv:MachineScripts>
//	  <appv:AddPackage>
//	    <appv:Path>ScriptRunner.exe</appv:Path>
//	    <appv:Arguments>-appvscript …</appv:Arguments>
//	    <appv:Wait RollbackOnError="true" Timeout="30" />
//	  </appv:AddPackage>
//	</appv:MachineScripts>

// Extension point categories (appv:Extension/@Category).
const (
	CategoryShortcut             = "AppV.Shortcut"
	CategoryFileTypeAssociation  = "AppV.FileTypeAssociation"
	CategoryURLProtocol          = "AppV.URLProtocol"
	CategoryAppPath              = "AppV.AppPath"
	CategoryEnvironmentVariables = "AppV.EnvironmentVariables"
)

// ScriptEvents are the events a package script can run at.
var ScriptEvents = []string{
	"AddPackage", "RemovePackage", "PublishPackage", "UnpublishPackage",
	"StartProcess", "ExitProcess", "StartVirtualEnvironment", "TerminateVirtualEnvironment",
}

// Extension is one extension point. For the categories modeled here exactly
// one of the typed fields is set; for others (or an empty element) only
// Category is.
type Extension struct {
	Category string `json:"category"`
	// Application is the ID of the application the extension point belongs
	// to, or "" for a package-level one.
	Application string `json:"application,omitempty"`

	Shortcut             *Shortcut             `json:"shortcut,omitempty"`
	FileTypeAssociation  *FileTypeAssociation  `json:"fileTypeAssociation,omitempty"`
	URLProtocol          *URLProtocol          `json:"urlProtocol,omitempty"`
	AppPath              *AppPath              `json:"appPath,omitempty"`
	EnvironmentVariables *EnvironmentVariables `json:"environmentVariables,omitempty"`
}

// Shortcut is an AppV.Shortcut: a launcher (a .lnk on Windows, a desktop
// entry on Linux).
type Shortcut struct {
	// File is where the shortcut goes, tokenized, e.g.
	// `[{Common Programs}]\7-Zip\7-Zip File Manager.lnk`.
	File             string `json:"file"`
	Target           string `json:"target,omitempty"`
	Icon             string `json:"icon,omitempty"`
	Arguments        string `json:"arguments,omitempty"`
	WorkingDirectory string `json:"workingDirectory,omitempty"`
	AppUserModelID   string `json:"appUserModelId,omitempty"`
	Description      string `json:"description,omitempty"`
	Hotkey           string `json:"hotkey,omitempty"`
	// ShowCommand is the window state (1 normal, 3 maximized, 7 minimized).
	ShowCommand   int    `json:"showCommand,omitempty"`
	ApplicationID string `json:"applicationId,omitempty"`
}

// FileTypeAssociation is an AppV.FileTypeAssociation: a file name extension
// and/or the ProgId it opens with.
type FileTypeAssociation struct {
	FileExtension *FileExtension `json:"fileExtension,omitempty"`
	ProgID        *ProgID        `json:"progId,omitempty"`
}

// FileExtension associates a file name extension with a ProgId.
type FileExtension struct {
	Name            string `json:"name"` // ".xdp"
	ProgID          string `json:"progId,omitempty"`
	ContentType     string `json:"contentType,omitempty"` // MIME type
	PerceivedType   string `json:"perceivedType,omitempty"`
	MimeAssociation bool   `json:"mimeAssociation,omitempty"`
}

// ProgID describes a file type and its verbs.
type ProgID struct {
	Name             string         `json:"name"`
	Description      string         `json:"description,omitempty"`
	EditFlags        string         `json:"editFlags,omitempty"`
	DefaultIcon      string         `json:"defaultIcon,omitempty"`
	FriendlyTypeName string         `json:"friendlyTypeName,omitempty"`
	ShellCommands    *ShellCommands `json:"shellCommands,omitempty"`
}

// ShellCommands are the verbs of a ProgId or URL protocol.
type ShellCommands struct {
	DefaultCommand string         `json:"defaultCommand,omitempty"`
	Commands       []ShellCommand `json:"commands,omitempty"`
}

// ShellCommand is one verb.
type ShellCommand struct {
	ApplicationID string `json:"applicationId,omitempty"`
	Name          string `json:"name"`
	FriendlyName  string `json:"friendlyName,omitempty"`
	CommandLine   string `json:"commandLine,omitempty"`
}

// URLProtocol is an AppV.URLProtocol: a URL scheme handler.
type URLProtocol struct {
	Name             string         `json:"name"` // the scheme, e.g. "mailto"
	Description      string         `json:"description,omitempty"`
	EditFlags        string         `json:"editFlags,omitempty"`
	DefaultIcon      string         `json:"defaultIcon,omitempty"`
	FriendlyTypeName string         `json:"friendlyTypeName,omitempty"`
	ShellCommands    *ShellCommands `json:"shellCommands,omitempty"`
}

// AppPath is an AppV.AppPath: a command name that runs an application
// without its path being on PATH.
type AppPath struct {
	Name                          string `json:"name"` // e.g. "excel.exe"
	ApplicationPath               string `json:"applicationPath,omitempty"`
	ApplicationID                 string `json:"applicationId,omitempty"`
	PATHEnvironmentVariablePrefix string `json:"pathEnvironmentVariablePrefix,omitempty"`
}

// EnvironmentVariables is an AppV.EnvironmentVariables: variables set in,
// and removed from, the virtual environment.
type EnvironmentVariables struct {
	Include []EnvironmentVariable `json:"include,omitempty"`
	Delete  []string              `json:"delete,omitempty"`
}

// EnvironmentVariable is a variable and its value (which may refer to
// other variables, %PATH%-style).
type EnvironmentVariable struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Script is a package script run at an event.
type Script struct {
	Event     string      `json:"event"` // one of ScriptEvents
	Path      string      `json:"path"`
	Arguments string      `json:"arguments,omitempty"`
	Wait      *ScriptWait `json:"wait,omitempty"`
	// ApplicationID limits StartProcess and ExitProcess scripts to one
	// application.
	ApplicationID string `json:"applicationId,omitempty"`
	// RunInVirtualEnvironment (StartProcess) runs the script inside the
	// package's virtual environment.
	RunInVirtualEnvironment *bool `json:"runInVirtualEnvironment,omitempty"`
}

// ScriptWait makes the event wait for the script.
type ScriptWait struct {
	// RollbackOnError undoes the event if the script fails.
	RollbackOnError bool `json:"rollbackOnError,omitempty"`
	// Timeout in seconds; 0 waits without limit.
	Timeout int `json:"timeout,omitempty"`
}

// readExtensions reads the appv:Extension elements of an appv:Extensions
// container; app is the owning application's ID ("" at package level).
func readExtensions(container *etree.Element, app string) ([]Extension, error) {
	var out []Extension
	for _, ext := range avChildren(container, "Extension") {
		cat, _ := avAttr(ext, "Category")
		if cat == "" {
			return nil, formatErr(ManifestPart, nil, "Extension without a Category")
		}
		base := Extension{Category: cat, Application: app}
		n := len(out)
		for _, c := range ext.ChildElements() {
			if !isAppVNS(elemURI(c)) {
				continue
			}
			x := base
			var err error
			switch {
			case cat == CategoryShortcut && c.Tag == "Shortcut":
				x.Shortcut, err = readShortcut(c)
			case cat == CategoryFileTypeAssociation && c.Tag == "FileTypeAssociation":
				x.FileTypeAssociation, err = readFTA(c)
			case cat == CategoryURLProtocol && c.Tag == "URLProtocol":
				x.URLProtocol, err = readURLProtocol(c)
			case cat == CategoryAppPath && c.Tag == "AppPath":
				x.AppPath, err = readAppPath(c)
			case cat == CategoryEnvironmentVariables && c.Tag == "EnvironmentVariables":
				x.EnvironmentVariables, err = readEnvVars(c)
			default:
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		if len(out) == n {
			out = append(out, base)
		}
	}
	return out, nil
}

func readShortcut(e *etree.Element) (*Shortcut, error) {
	s := &Shortcut{
		File:             avText(e, "File"),
		Target:           avText(e, "Target"),
		Icon:             avText(e, "Icon"),
		Arguments:        avText(e, "Arguments"),
		WorkingDirectory: avText(e, "WorkingDirectory"),
		AppUserModelID:   avText(e, "AppUserModelId"),
		Description:      avText(e, "Description"),
		Hotkey:           avText(e, "Hotkey"),
		ApplicationID:    avText(e, "ApplicationId"),
	}
	if sc := strings.TrimSpace(avText(e, "ShowCommand")); sc != "" {
		n, err := strconv.Atoi(sc)
		if err != nil || n < 0 {
			return nil, formatErr(ManifestPart, nil, "shortcut %q ShowCommand %q is not a number", s.File, sc)
		}
		s.ShowCommand = n
	}
	return s, checkShortcut(s)
}

func checkShortcut(s *Shortcut) error {
	if s.File == "" {
		return formatErr(ManifestPart, nil, "Shortcut without a File")
	}
	if s.ShowCommand < 0 {
		return formatErr(ManifestPart, nil, "shortcut %q ShowCommand %d is negative", s.File, s.ShowCommand)
	}
	return checkTexts("shortcut "+s.File, s.File, s.Target, s.Icon, s.Arguments, s.WorkingDirectory,
		s.AppUserModelID, s.Description, s.Hotkey, s.ApplicationID)
}

func readShellCommands(e *etree.Element) *ShellCommands {
	sc := avChild(e, "ShellCommands")
	if sc == nil {
		return nil
	}
	out := &ShellCommands{DefaultCommand: avText(sc, "DefaultCommand")}
	for _, c := range avChildren(sc, "ShellCommand") {
		out.Commands = append(out.Commands, ShellCommand{
			ApplicationID: avText(c, "ApplicationId"),
			Name:          avText(c, "Name"),
			FriendlyName:  avText(c, "FriendlyName"),
			CommandLine:   avText(c, "CommandLine"),
		})
	}
	return out
}

func checkShellCommands(what string, sc *ShellCommands) error {
	if sc == nil {
		return nil
	}
	if err := checkTexts(what, sc.DefaultCommand); err != nil {
		return err
	}
	for _, c := range sc.Commands {
		if err := checkTexts(what, c.ApplicationID, c.Name, c.FriendlyName, c.CommandLine); err != nil {
			return err
		}
	}
	return nil
}

func readFTA(e *etree.Element) (*FileTypeAssociation, error) {
	f := &FileTypeAssociation{}
	if fe := avChild(e, "FileExtension"); fe != nil {
		x := &FileExtension{
			Name:          avText(fe, "Name"),
			ProgID:        avText(fe, "ProgId"),
			ContentType:   avText(fe, "ContentType"),
			PerceivedType: avText(fe, "PerceivedType"),
		}
		if s, ok := avAttr(fe, "MimeAssociation"); ok {
			b, ok := parseXSDBool(s)
			if !ok {
				return nil, formatErr(ManifestPart, nil, "file extension %q MimeAssociation %q is not a boolean", x.Name, s)
			}
			x.MimeAssociation = b
		}
		f.FileExtension = x
	}
	if pe := avChild(e, "ProgId"); pe != nil {
		f.ProgID = &ProgID{
			Name:             avText(pe, "Name"),
			Description:      avText(pe, "Description"),
			EditFlags:        avText(pe, "EditFlags"),
			DefaultIcon:      avText(pe, "DefaultIcon"),
			FriendlyTypeName: avText(pe, "FriendlyTypeName"),
			ShellCommands:    readShellCommands(pe),
		}
	}
	return f, checkFTA(f)
}

func checkFTA(f *FileTypeAssociation) error {
	if x := f.FileExtension; x != nil {
		if x.Name == "" {
			return formatErr(ManifestPart, nil, "FileExtension without a Name")
		}
		if err := checkTexts("file extension "+x.Name, x.Name, x.ProgID, x.ContentType, x.PerceivedType); err != nil {
			return err
		}
	}
	if p := f.ProgID; p != nil {
		if p.Name == "" {
			return formatErr(ManifestPart, nil, "ProgId without a Name")
		}
		if err := checkTexts("ProgId "+p.Name, p.Name, p.Description, p.EditFlags, p.DefaultIcon, p.FriendlyTypeName); err != nil {
			return err
		}
		return checkShellCommands("ProgId "+p.Name, p.ShellCommands)
	}
	return nil
}

func readURLProtocol(e *etree.Element) (*URLProtocol, error) {
	u := &URLProtocol{Name: avText(e, "Name")}
	if ap := avChild(e, "ApplicationURLProtocol"); ap != nil {
		u.Description = avText(ap, "Description")
		u.EditFlags = avText(ap, "EditFlags")
		u.DefaultIcon = avText(ap, "DefaultIcon")
		u.FriendlyTypeName = avText(ap, "FriendlyTypeName")
		u.ShellCommands = readShellCommands(ap)
	}
	return u, checkURLProtocol(u)
}

func checkURLProtocol(u *URLProtocol) error {
	if u.Name == "" {
		return formatErr(ManifestPart, nil, "URLProtocol without a Name")
	}
	if err := checkTexts("URL protocol "+u.Name, u.Name, u.Description, u.EditFlags, u.DefaultIcon, u.FriendlyTypeName); err != nil {
		return err
	}
	return checkShellCommands("URL protocol "+u.Name, u.ShellCommands)
}

func readAppPath(e *etree.Element) (*AppPath, error) {
	a := &AppPath{
		Name:                          avText(e, "Name"),
		ApplicationPath:               avText(e, "ApplicationPath"),
		ApplicationID:                 avText(e, "ApplicationId"),
		PATHEnvironmentVariablePrefix: avText(e, "PATHEnvironmentVariablePrefix"),
	}
	return a, checkAppPath(a)
}

func checkAppPath(a *AppPath) error {
	if a.Name == "" {
		return formatErr(ManifestPart, nil, "AppPath without a Name")
	}
	return checkTexts("app path "+a.Name, a.Name, a.ApplicationPath, a.ApplicationID, a.PATHEnvironmentVariablePrefix)
}

func readEnvVars(e *etree.Element) (*EnvironmentVariables, error) {
	ev := &EnvironmentVariables{}
	for _, inc := range avChildren(e, "Include") {
		for _, v := range avChildren(inc, "Variable") {
			name, _ := avAttr(v, "Name")
			value, _ := avAttr(v, "Value")
			ev.Include = append(ev.Include, EnvironmentVariable{Name: name, Value: value})
		}
	}
	for _, del := range avChildren(e, "Delete") {
		for _, v := range avChildren(del, "Variable") {
			name, _ := avAttr(v, "Name")
			ev.Delete = append(ev.Delete, name)
		}
	}
	return ev, checkEnvVars(ev)
}

func checkEnvVars(ev *EnvironmentVariables) error {
	for _, v := range ev.Include {
		if v.Name == "" {
			return formatErr(ManifestPart, nil, "environment Variable without a Name")
		}
		if err := checkTexts("environment variable "+v.Name, v.Name, v.Value); err != nil {
			return err
		}
	}
	for _, n := range ev.Delete {
		if n == "" {
			return formatErr(ManifestPart, nil, "deleted environment Variable without a Name")
		}
		if err := checkTexts("environment variable "+n, n); err != nil {
			return err
		}
	}
	return nil
}

// checkTexts checks that strings can be written as XML.
func checkTexts(what string, ss ...string) error {
	for _, s := range ss {
		if !validXMLString(s) {
			return formatErr(ManifestPart, nil, "%s: %q is not valid XML text", what, s)
		}
	}
	return nil
}

// readScripts reads the scripts of the package-level containers named local
// (MachineScripts or UserScripts).
func readScripts(root *etree.Element, local string) ([]Script, error) {
	var out []Script
	for _, sc := range avChildren(root, local) {
		for _, c := range sc.ChildElements() {
			if !slices.Contains(ScriptEvents, c.Tag) || !isAppVNS(elemURI(c)) {
				continue
			}
			s, err := readScript(c)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func readScript(e *etree.Element) (Script, error) {
	s := Script{
		Event:         e.Tag,
		Path:          avText(e, "Path"),
		Arguments:     avText(e, "Arguments"),
		ApplicationID: avText(e, "ApplicationId"),
	}
	if v, ok := avAttr(e, "RunInVirtualEnvironment"); ok {
		b, ok := parseXSDBool(v)
		if !ok {
			return s, formatErr(ManifestPart, nil, "%s script RunInVirtualEnvironment %q is not a boolean", s.Event, v)
		}
		s.RunInVirtualEnvironment = &b
	}
	if w := avChild(e, "Wait"); w != nil {
		s.Wait = &ScriptWait{}
		if v, ok := avAttr(w, "RollbackOnError"); ok {
			b, ok := parseXSDBool(v)
			if !ok {
				return s, formatErr(ManifestPart, nil, "%s script RollbackOnError %q is not a boolean", s.Event, v)
			}
			s.Wait.RollbackOnError = b
		}
		if v, ok := avAttr(w, "Timeout"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return s, formatErr(ManifestPart, nil, "%s script Timeout %q is not a number of seconds", s.Event, v)
			}
			s.Wait.Timeout = n
		}
	}
	return s, checkScript(s)
}

func checkScript(s Script) error {
	if !slices.Contains(ScriptEvents, s.Event) {
		return formatErr(ManifestPart, nil, "script event %q is not one of %s", s.Event, strings.Join(ScriptEvents, ", "))
	}
	if s.Path == "" {
		return formatErr(ManifestPart, nil, "%s script without a Path", s.Event)
	}
	if s.Wait != nil && s.Wait.Timeout < 0 {
		return formatErr(ManifestPart, nil, "%s script Timeout %d is negative", s.Event, s.Wait.Timeout)
	}
	return checkTexts(s.Event+" script", s.Path, s.Arguments, s.ApplicationID)
}

// AddExtension adds an extension point: to the application x.Application
// names (which must exist), or at package level when it is "". Exactly one
// typed field must be set; Category may be left empty and is then filled
// from it.
func (m *Manifest) AddExtension(x Extension) error {
	cat, err := extensionCategory(x)
	if err != nil {
		return err
	}
	root := m.root()
	if root == nil {
		return formatErr(ManifestPart, nil, "no manifest")
	}
	var exts *etree.Element
	if x.Application != "" {
		app := m.application(x.Application)
		if app == nil {
			return formatErr(ManifestPart, nil, "extension for application %q, which the manifest does not list", x.Application)
		}
		if exts = avChild(app, "Extensions"); exts == nil {
			exts = newAV(app, "Extensions")
			m.placeNew(app, exts, nil)
		}
	} else if exts = avChild(root, "Extensions"); exts == nil {
		exts = m.insertChild(root, NSAppV, "Extensions", packageRank)
	}
	e := newAV(exts, "Extension")
	e.CreateAttr("Category", cat)
	switch {
	case x.Shortcut != nil:
		writeShortcut(e, x.Shortcut)
	case x.FileTypeAssociation != nil:
		writeFTA(e, x.FileTypeAssociation)
	case x.URLProtocol != nil:
		writeURLProtocol(e, x.URLProtocol)
	case x.AppPath != nil:
		writeAppPath(e, x.AppPath)
	case x.EnvironmentVariables != nil:
		writeEnvVars(e, x.EnvironmentVariables)
	}
	m.placeNew(exts, e, nil)
	return nil
}

// extensionCategory checks x for AddExtension and returns its category.
func extensionCategory(x Extension) (string, error) {
	var cats []string
	var err error
	if x.Shortcut != nil {
		cats = append(cats, CategoryShortcut)
		err = checkShortcut(x.Shortcut)
	}
	if x.FileTypeAssociation != nil {
		cats = append(cats, CategoryFileTypeAssociation)
		if x.FileTypeAssociation.FileExtension == nil && x.FileTypeAssociation.ProgID == nil {
			err = formatErr(ManifestPart, nil, "FileTypeAssociation with neither FileExtension nor ProgId")
		} else {
			err = checkFTA(x.FileTypeAssociation)
		}
	}
	if x.URLProtocol != nil {
		cats = append(cats, CategoryURLProtocol)
		err = checkURLProtocol(x.URLProtocol)
	}
	if x.AppPath != nil {
		cats = append(cats, CategoryAppPath)
		err = checkAppPath(x.AppPath)
	}
	if x.EnvironmentVariables != nil {
		cats = append(cats, CategoryEnvironmentVariables)
		err = checkEnvVars(x.EnvironmentVariables)
	}
	if len(cats) != 1 {
		return "", formatErr(ManifestPart, nil, "an extension to add needs exactly one typed extension point, not %d", len(cats))
	}
	if err != nil {
		return "", err
	}
	if x.Category != "" && x.Category != cats[0] {
		return "", formatErr(ManifestPart, nil, "extension category %q does not match its %s", x.Category, cats[0])
	}
	return cats[0], nil
}

func writeShortcut(parent *etree.Element, s *Shortcut) {
	e := newAV(parent, "Shortcut")
	avLeaf(e, "File", s.File)
	avLeaf(e, "Target", s.Target)
	avLeaf(e, "Icon", s.Icon)
	avLeaf(e, "Arguments", s.Arguments)
	avLeaf(e, "WorkingDirectory", s.WorkingDirectory)
	avLeaf(e, "AppUserModelId", s.AppUserModelID)
	avLeaf(e, "Description", s.Description)
	avLeaf(e, "Hotkey", s.Hotkey)
	if s.ShowCommand != 0 {
		avLeaf(e, "ShowCommand", strconv.Itoa(s.ShowCommand))
	}
	avLeaf(e, "ApplicationId", s.ApplicationID)
}

func writeShellCommands(parent *etree.Element, sc *ShellCommands) {
	if sc == nil {
		return
	}
	e := newAV(parent, "ShellCommands")
	avLeaf(e, "DefaultCommand", sc.DefaultCommand)
	for _, c := range sc.Commands {
		ce := newAV(e, "ShellCommand")
		avLeaf(ce, "ApplicationId", c.ApplicationID)
		avLeaf(ce, "Name", c.Name)
		avLeaf(ce, "FriendlyName", c.FriendlyName)
		avLeaf(ce, "CommandLine", c.CommandLine)
	}
}

func writeFTA(parent *etree.Element, f *FileTypeAssociation) {
	e := newAV(parent, "FileTypeAssociation")
	if x := f.FileExtension; x != nil {
		fe := newAV(e, "FileExtension")
		if x.MimeAssociation {
			fe.CreateAttr("MimeAssociation", "true")
		}
		avLeaf(fe, "Name", x.Name)
		avLeaf(fe, "ProgId", x.ProgID)
		avLeaf(fe, "ContentType", x.ContentType)
		avLeaf(fe, "PerceivedType", x.PerceivedType)
	}
	if p := f.ProgID; p != nil {
		pe := newAV(e, "ProgId")
		avLeaf(pe, "Name", p.Name)
		avLeaf(pe, "Description", p.Description)
		avLeaf(pe, "EditFlags", p.EditFlags)
		avLeaf(pe, "DefaultIcon", p.DefaultIcon)
		avLeaf(pe, "FriendlyTypeName", p.FriendlyTypeName)
		writeShellCommands(pe, p.ShellCommands)
	}
}

func writeURLProtocol(parent *etree.Element, u *URLProtocol) {
	e := newAV(parent, "URLProtocol")
	avLeaf(e, "Name", u.Name)
	if u.Description != "" || u.EditFlags != "" || u.DefaultIcon != "" || u.FriendlyTypeName != "" || u.ShellCommands != nil {
		ap := newAV(e, "ApplicationURLProtocol")
		avLeaf(ap, "Description", u.Description)
		avLeaf(ap, "EditFlags", u.EditFlags)
		avLeaf(ap, "DefaultIcon", u.DefaultIcon)
		avLeaf(ap, "FriendlyTypeName", u.FriendlyTypeName)
		writeShellCommands(ap, u.ShellCommands)
	}
}

func writeAppPath(parent *etree.Element, a *AppPath) {
	e := newAV(parent, "AppPath")
	avLeaf(e, "Name", a.Name)
	avLeaf(e, "ApplicationPath", a.ApplicationPath)
	avLeaf(e, "PATHEnvironmentVariablePrefix", a.PATHEnvironmentVariablePrefix)
	avLeaf(e, "ApplicationId", a.ApplicationID)
}

func writeEnvVars(parent *etree.Element, ev *EnvironmentVariables) {
	e := newAV(parent, "EnvironmentVariables")
	if len(ev.Include) > 0 {
		inc := newAV(e, "Include")
		for _, v := range ev.Include {
			ve := newAV(inc, "Variable")
			ve.CreateAttr("Name", v.Name)
			ve.CreateAttr("Value", v.Value)
		}
	}
	if len(ev.Delete) > 0 {
		del := newAV(e, "Delete")
		for _, n := range ev.Delete {
			newAV(del, "Variable").CreateAttr("Name", n)
		}
	}
}

// AddMachineScript adds a script run in the machine's context.
func (m *Manifest) AddMachineScript(s Script) error { return m.addScript("MachineScripts", s) }

// AddUserScript adds a script run in the user's context.
func (m *Manifest) AddUserScript(s Script) error { return m.addScript("UserScripts", s) }

func (m *Manifest) addScript(container string, s Script) error {
	if err := checkScript(s); err != nil {
		return err
	}
	root := m.root()
	if root == nil {
		return formatErr(ManifestPart, nil, "no manifest")
	}
	sc := avChild(root, container)
	if sc == nil {
		sc = m.insertChild(root, NSAppV, container, packageRank)
	}
	e := newAV(sc, s.Event)
	if s.RunInVirtualEnvironment != nil {
		e.CreateAttr("RunInVirtualEnvironment", strconv.FormatBool(*s.RunInVirtualEnvironment))
	}
	avLeaf(e, "Path", s.Path)
	avLeaf(e, "Arguments", s.Arguments)
	if s.Wait != nil {
		w := newAV(e, "Wait")
		w.CreateAttr("RollbackOnError", strconv.FormatBool(s.Wait.RollbackOnError))
		if s.Wait.Timeout > 0 {
			w.CreateAttr("Timeout", strconv.Itoa(s.Wait.Timeout))
		}
	}
	avLeaf(e, "ApplicationId", s.ApplicationID)
	m.placeNew(sc, e, nil)
	return nil
}
