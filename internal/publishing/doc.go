// Package publishing reads and writes App-V's publishing document, the answer
// of a publishing server to a client's refresh: the packages and connection
// groups one identity (a user or a machine) is entitled to. The server
// builds a Document and Marshals it; the client Parses it and Diffs it with
// the one it applied last.
//
// # The document
//
// The format is that of Microsoft's [MS-VAPR] protocol specification
// ("Virtual Application Publishing and Reporting (App-V) Protocol", section
// 3.1.5.1.1.2), with the <NoGroup> section App-V's servers add, as
// Microsoft's examples of publishing documents show:
//
//	<?xml version="1.0" encoding="utf-8"?>
//	<Publishing Protocol="2.0">
//	  <Packages>
//	    <Package PackageId="…" VersionId="…" PackageUrl="https://content/editor.appv">
//	      <DeploymentConfiguration ConfigurationId="3" Path="/config/…" Timestamp="2025-03-01T10:00:00Z"/>
//	      <UserConfiguration ConfigurationId="7" Path="/config/…" Timestamp="…" Conflict="false"/>
//	    </Package>
//	  </Packages>
//	  <NoGroup>
//	    <Package PackageId="…"/>
//	  </NoGroup>
//	  <Groups>
//	    <Group GroupId="…" VersionId="…" Name="Office with plug-ins" Priority="0">
//	      <Package PackageId="…" VersionId="…" VersionOptional="false" PackageOptional="false"/>
//	      <Package PackageId="…" VersionOptional="true" PackageOptional="true"/>
//	    </Group>
//	  </Groups>
//	</Publishing>
//
// No namespace is used. Packages lists every package version the identity
// may use, with where its bytes are and references to its dynamic
// configuration documents (fetched with a GET of Path, relative to the
// publishing URL; ConfigurationId grows with each change). NoGroup lists the
// packages that are in no group. A group's packages are in its order, earlier
// ones winning conflicts; a package may require a version or take any
// (VersionOptional) and may be optional (PackageOptional).
//
// # Where App-V is silent
//
//   - A member that takes any version is written with VersionOptional="true"
//     and no VersionId, as in Microsoft's examples; it reads back as
//     AnyVersion. A VersionId of "*" is read the same way.
//   - Empty sections are left out (MS-VAPR: present only if there is
//     something to publish); empty ones are read as absent.
//   - PackageUrl may be an http, https or file URL, a UNC path (what App-V's
//     servers send for file shares; kept as written), or a reference
//     relative to the publishing URL. A local path is written as a file://
//     URL, so that "/content/x.appv" always means a path on the server.
//   - Timestamps are written in UTC to 100 ns and left out when unknown;
//     ConfigurationId is what tells a client to fetch a configuration again.
//   - A group naming a package the document does not entitle does not fail
//     the document: the group is marked Unusable (see CheckGroup), and a
//     user's groups can be checked again against the machine's document.
//   - Unknown elements and attributes are ignored and not kept: a client
//     keeps the bytes it received, for If-None-Match, not a re-encoding.
//
// # The endpoint
//
// A client asks GET /?ClientVersion=a.b.c.d&ClientOS=… (ParseClientVersion
// reads the version) with the identity's credentials. ServeDocument answers
// with the bytes of Marshal and their ETag, or 304 Not Modified when the
// client's If-None-Match still names them, so an unchanged refresh costs one
// small response. Marshal is deterministic, so the tag changes exactly when
// the entitlement does.
//
// [MS-VAPR]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-vapr/a05e030d-4fb9-4c8d-984b-971253b62be8
package publishing
