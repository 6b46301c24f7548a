// Package store is the machine's package store: App-V's
// %ProgramData%\App-V\<PackageId>\<VersionId>, kept under
// /var/lib/appv/packages by the client service. It adds package versions
// from a source (an HTTP server or a path), streams their blocks in on
// demand (stream faults), loads them whole (Mount), verifies them, and
// survives a crash at any point without ever holding a block that was not
// verified against the block map.
//
// # Use
//
// Open loads the store; Add (or AddFrom, for an upgrade) adds a version
// from a location; Version.ReadAt reads a file through the store, faulting
// missing blocks in; EnsureFeatureBlock loads the primary feature block
// before a first launch; Mount loads everything; Verify re-checks what is
// on disk; Remove deletes a version unless it is acquired (Acquire and
// Release count its users: virtual environments, open files of the
// streaming file system). SetLocation and SetSource change where a version
// is streamed from (App-V's PackageSourceRoot).
//
// # Layout
//
// Every version lives in its own directory:
//
//	<dir>/<PackageId>/<VersionId>/
//	    version.json   location, package size, ETag, identity, added and last-used times
//	    index.sparse   sparse copy of the package holding only the byte ranges read
//	                   to open it (ZIP end records, central directory, block map,
//	                   content types, the metadata parts' raw blocks)
//	    index.ranges   JSON list of the ranges present in index.sparse
//	    present        block-presence bitmap
//	    Root/...       the package's files, uncompressed, as sparse files of their
//	    AppxManifest.xml, StreamMap.xml, ...  final size, at their package paths
//
// index.sparse lets a version reopen after a restart without the network:
// appvpkg.Open runs over it and finds every range it needs. The bitmap has
// one bit per block, blocks numbered in block-map order across all files
// (file 0's blocks, then file 1's...); bit g is bit g%8 (least significant
// first) of byte g/8.
//
// version.json is written last, atomically (temporary file, fsync, rename,
// fsync of the directory), after everything else has been made durable. A
// version directory without it was being added when the machine stopped,
// and Open removes it.
//
// # Stream faults
//
// A read of a block that is not present is a stream fault: the block, and
// the next ReadAhead missing blocks of the same file, are fetched in one
// Source.ReadRanges call. However many readers wait for a block, it is
// fetched once (a per-block in-flight map). Every block is checked with
// appvpkg.Package.DecodeBlock before it is stored or returned; a block that
// fails its hash is neither, the readers get an error wrapping
// appvpkg.ErrHash, and the next read fetches it again.
//
// # Crash safety
//
// A bit set in the present file always means durable, verified data. The
// order is: (1) pwrite the verified block into its sparse file; (2)
// fdatasync that file; (3) set the bit, pwrite the bitmap byte and fsync the
// bitmap. Steps 2 and 3 are batched (every 64 pending blocks, every
// FlushInterval, after each Mount batch and at Close); until then a block
// just written is served from the page cache through its in-memory bit, and
// a crash merely loses bits, so the block is fetched again. Verify re-hashes
// every present block and clears the bit of any that is bad.
//
// # Shared Content Store mode
//
// With Options.SharedContentStore no block of Root/ is written to disk:
// verified blocks live in an in-memory LRU cache bounded by
// Options.MemoryLimit and evicted blocks are fetched again. The metadata
// parts (manifest, stream map, file-system metadata...) are still stored,
// as App-V keeps publishing data locally.
//
// # Upgrades
//
// AddFrom adds a new version of a package beside a previous one: each file
// whose block-map hashes are identical and that is fully present in the
// previous version becomes a hard link to it; identical blocks of other
// files are copied.
//
// # Locking
//
// Store.mu guards the version map and reference counts. Each Version has
// flushMu (serialises making blocks durable and writing the bitmap) and mu
// (in-memory presence, in-flight fetches, pending blocks). The lock order
// is Store.mu, then Version.flushMu, then Version.mu, then the block cache's
// and the fd cache's own locks; no lock is held across network I/O.
package store
