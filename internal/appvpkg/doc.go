// Package appvpkg reads and writes App-V packages (.appv): OPC/ZIP containers
// of the AppX family with App-V's own parts. It depends on nothing else in
// appv, so the client, the server and the sequencer all build on it.
//
// # Layout of a package
//
// Root/ holds the application's files: the primary virtual application
// directory at Root/..., files of known folders at Root/VFS/<Token>/...
// (tokens.go lists the Linux known folders and App-V's Windows ones). Beside
// it are AppxManifest.xml (identity, applications, extension points),
// StreamMap.xml (feature blocks), FilesystemMetadata.xml (App-V's file
// metadata plus Linux modes, symlinks, times in a namespace of appv's own),
// PackageHistory.xml, optionally Registry.dat, and the footprint parts
// AppxBlockMap.xml and [Content_Types].xml.
//
// # Blocks
//
// Every file is cut into 64 KiB blocks, each hashed in the block map. A
// deflated file is compressed block by block with a full flush at each
// boundary, so any block can be fetched by byte range (File.BlockRange),
// inflated on its own and verified (Package.DecodeBlock, Package.ReadBlock).
// Nothing that fails its hash is ever returned. Blocks are inflated with
// libdeflate when built with cgo, else with a pure-Go inflater.
//
// # Reading
//
// Open works on any io.ReaderAt: a local file, a share or HTTP ranges. It
// reads the central directory, block map and content types and checks them
// against each other; Verify reads every block; Extract writes the package
// into a directory through an os.Root. Every rule a package breaks is a
// *FormatError naming the part and the rule, wrapping ErrFormat.
//
// # Writing
//
// Create packages a directory tree deterministically (same tree, same
// bytes), compressing blocks on all cores with memory bounded whatever the
// file sizes.
package appvpkg
