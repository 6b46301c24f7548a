// Package streamfs is the streaming file system: one read-only FUSE mount
// (the client service mounts it at /run/appv/fs) that serves every version
// of a store.Store at /<PackageId>/<VersionId>/, its files under Root/ and
// its metadata parts (AppxManifest.xml...) beside it. Virtual environments
// bind the package's directories from here to their native places.
//
// The tree of a version comes from its block map (files and sizes) and the
// Linux entries of its FilesystemMetadata.xml (modes, setuid bits included,
// symlinks, times, empty directories); packages without them (Microsoft's)
// get directories 0755 and files 0644. Everything is owned by root, and
// the mount is nosuid and nodev.
//
// A read of a file that is not fully local goes through
// store.Version.ReadAt, which faults missing blocks in and never returns
// unverified bytes: a block that fails verification, or a fetch that
// fails, is EIO. A file whose blocks are all local is opened with FUSE
// passthrough where the kernel has it (Linux 6.9+): the kernel reads the
// store's sparse file directly, at native speed. Contents are immutable,
// so entries, attributes and pages are cached for long.
package streamfs
