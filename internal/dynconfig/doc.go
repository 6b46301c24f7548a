// Package dynconfig reads and writes App-V's dynamic configuration files,
// DeploymentConfig.xml and UserConfig.xml, and merges them with a package's
// manifest into the configuration a client applies.
//
// # The files
//
// A DeploymentConfig.xml, in the namespace NSDeployment, configures a package
// for a machine:
//
//	<DeploymentConfiguration PackageId="…" DisplayName="…" IgnorableNamespaces="" xmlns="http://schemas.microsoft.com/appv/2010/deploymentconfiguration">
//	  <UserConfiguration>
//	    <Subsystems>
//	      <Shortcuts Enabled="true"><Extensions><Extension Category="AppV.Shortcut">…</Extension></Extensions></Shortcuts>
//	      <FileTypeAssociations Enabled="true">…</FileTypeAssociations>
//	      <URLProtocols Enabled="true">…</URLProtocols>
//	      <AppPaths Enabled="true">…</AppPaths>
//	      <Objects Enabled="true"/> <Registry Enabled="true"/> <FileSystem Enabled="true"/> <Fonts Enabled="true"/>
//	      <EnvironmentVariables Enabled="true"><Include><Variable Name="…" Value="…"/></Include><Delete>…</Delete></EnvironmentVariables>
//	      <Services Enabled="true"/>
//	    </Subsystems>
//	    <Applications>
//	      <Application Id="[{Usr}]/bin/foo" Enabled="true"><VisualElements><Name>Foo</Name><Icon/><Description/></VisualElements></Application>
//	    </Applications>
//	    <UserScripts>…</UserScripts>
//	  </UserConfiguration>
//	  <MachineConfiguration>
//	    <ProductSourceURLOptOut Enabled="true"/>
//	    <Subsystems>…</Subsystems>
//	    <MachineScripts>…</MachineScripts>
//	    <TerminateChildProcesses><Application Path="…"/></TerminateChildProcesses>
//	  </MachineConfiguration>
//	</DeploymentConfiguration>
//
// A UserConfig.xml, in the namespace NSUser, configures it for a user: its
// <UserConfiguration PackageId DisplayName> root holds what the deployment
// file's <UserConfiguration> section holds. Extension points inside them are
// written as in the manifest, without a prefix (they are in the file's
// namespace); content of other namespaces (appv's appvlinux data) is kept
// and declared in IgnorableNamespaces. The element names are those of
// Microsoft's documentation ("About App-V dynamic configuration") and of the
// files App-V's Sequencer writes.
//
// # Precedence
//
// As App-V applies them (Merge): the manifest is the default; a deployment
// file's UserConfiguration overrides it for every user; a user file, when
// there is one, is used instead of the deployment file's UserConfiguration
// (it replaces that section whole, not key by key). A package published
// globally uses the deployment file alone. MachineConfiguration applies to
// the machine whatever the user: machine scripts, TerminateChildProcesses,
// ProductSourceURLOptOut and machine-wide extension points
// (ApplicationCapabilities).
//
// Within the chosen section, an extension subsystem (Shortcuts,
// FileTypeAssociations, URLProtocols, AppPaths, SoftwareClients) that is
// absent leaves the manifest's extension points of its category in force;
// Enabled="false" removes them all; an <Extensions> child replaces them with
// its own (an empty one removes them). An application with Enabled="false"
// loses every extension point that belongs to it (nested in it in the
// manifest, or naming it in an ApplicationId; an association naming only a
// ProgId goes with that ProgId's verbs); its VisualElements, when not empty,
// rename it. Environment variables are layered: the file's
// Include sets or replaces a variable of the manifest, its Delete removes
// one. A script event the file defines replaces the manifest's script for
// that event.
//
// # Safety
//
// The files come from administrators and servers, so they are parsed with
// the limits appvpkg applies to a package's XML parts: a size limit
// (appvpkg.MaxXMLPartSize), a nesting limit (appvpkg.MaxXMLDepth), at most
// 256 attributes on an element, no DOCTYPE, namespace prefixes bound.
package dynconfig
