package dynconfig

import (
	"errors"
	"fmt"

	"github.com/appv/appv/internal/appvpkg"
)

// Namespaces of the dynamic configuration files.
const (
	// NSDeployment is the namespace of DeploymentConfig.xml.
	NSDeployment = "http://schemas.microsoft.com/appv/2010/deploymentconfiguration"
	// NSUser is the namespace of UserConfig.xml.
	NSUser = "http://schemas.microsoft.com/appv/2010/userconfiguration"
)

// Names of the files, as parts in errors.
const (
	DeploymentPart = "DeploymentConfig.xml"
	UserPart       = "UserConfig.xml"
)

// Categories of extension points App-V has besides those appvpkg models.
const (
	CategorySoftwareClient          = "AppV.SoftwareClient"
	CategoryApplicationCapabilities = "AppV.ApplicationCapabilities"
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("dynconfig: malformed dynamic configuration")

// FormatError says which rule a file broke, and where.
type FormatError struct {
	Part string // DeploymentPart or UserPart
	Rule string
	Err  error // the cause, if any (an XML syntax error)
}

func (e *FormatError) Error() string {
	msg := "dynconfig: " + e.Part + ": " + e.Rule
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match ErrFormat and the cause.
func (e *FormatError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrFormat, e.Err}
	}
	return []error{ErrFormat}
}

func formatErr(part string, cause error, rule string, args ...any) error {
	return &FormatError{Part: part, Rule: fmt.Sprintf(rule, args...), Err: cause}
}

// Deployment is a DeploymentConfig.xml.
type Deployment struct {
	// PackageID is the package the file is for (a GUID, the manifest's
	// appv:PackageId); the caller checks that it matches.
	PackageID   string
	DisplayName string
	// User is the <UserConfiguration> section: it applies to every user of
	// the package unless a UserConfig.xml is given, and to a global publish.
	User Config
	// Machine is the <MachineConfiguration> section.
	Machine Machine
}

// User is a UserConfig.xml.
type User struct {
	PackageID   string
	DisplayName string
	Config
}

// Config is the per-user configuration: the body of a UserConfig.xml, and
// the UserConfiguration section of a DeploymentConfig.xml.
type Config struct {
	Subsystems Subsystems
	// Applications enable or disable the manifest's applications and may
	// rename them; IDs the manifest does not list are ignored.
	Applications []Application
	// Scripts are the UserScripts (events in the user's context).
	Scripts []appvpkg.Script
}

// Subsystems are what a file says of each subsystem. A subsystem that is not
// Set leaves the manifest's configuration in force.
type Subsystems struct {
	Shortcuts            Extensions
	FileTypeAssociations Extensions
	URLProtocols         Extensions
	AppPaths             Extensions
	SoftwareClients      Extensions
	EnvironmentVariables Environment
	// Virtualization subsystems: whether the virtual environment
	// virtualizes named kernel objects, the registry, the file system,
	// fonts and services.
	Objects, Registry, FileSystem, Fonts, Services Switch
}

// Switch is a subsystem's element and its Enabled attribute.
type Switch struct {
	// Set is true when the file has the subsystem's element.
	Set bool
	// Enabled is the element's Enabled attribute; true when absent.
	Enabled bool
}

// Extensions is an extension subsystem: Enabled="false" removes the
// manifest's extension points of its category; an <Extensions> child
// replaces them.
type Extensions struct {
	Switch
	// Replace is true when the element has an <Extensions> child: its
	// extension points (Extensions, possibly none) replace the manifest's.
	Replace    bool
	Extensions []appvpkg.Extension
}

// Environment is the EnvironmentVariables subsystem: variables set and
// removed over the manifest's.
type Environment struct {
	Switch
	Include []appvpkg.EnvironmentVariable
	Delete  []string
}

// Application is one <Application> of a configuration.
type Application struct {
	ID      string
	Enabled bool // true when the attribute is absent
	// VisualElements; empty ones leave the manifest's value.
	Name, Icon, Description string
}

// Machine is the MachineConfiguration section of a DeploymentConfig.xml.
type Machine struct {
	// ProductSourceURLOptOut is Enabled (as the Sequencer writes it) when the
	// client's PackageSourceRoot may redirect where the package's content is
	// fetched from; Enabled="false" keeps the package's own source.
	ProductSourceURLOptOut Switch
	Subsystems             MachineSubsystems
	// Scripts are the MachineScripts (events in the machine's context).
	Scripts []appvpkg.Script
	// TerminateChildProcesses are the paths of applications whose child
	// processes end when they exit.
	TerminateChildProcesses []string
}

// MachineSubsystems are the machine-wide subsystems.
type MachineSubsystems struct {
	ApplicationCapabilities Extensions
	Objects, Registry       Switch
}
