// Package integration integrates a package's extension points into a Linux
// desktop, the freedesktop.org way, when the package is published to a user
// or to the machine, and removes them when it is unpublished, putting back
// what they displaced: App-V's "integration of App-V packages" with its rules
// of backup, restore and ownership.
//
// Integrate and Deintegrate take a Target (where) and a Package (what).
// UserTarget integrates into a user's home, GlobalTarget for every user.
//
// # Where things go
//
//	extension point            user                                 global
//	AppV.AppPath               ~/.local/bin/<name>                  GlobalBinDir/<name> (/usr/local/bin)
//	AppV.Shortcut              $XDG_DATA_HOME/applications/         /usr/local/share/applications/
//	  its icon                 $XDG_DATA_HOME/icons/hicolor/        /usr/local/share/icons/hicolor/
//	AppV.FileTypeAssociation   $XDG_DATA_HOME/mime/packages/        /usr/local/share/mime/packages/
//	  default application      $XDG_CONFIG_HOME/mimeapps.list       /usr/local/share/applications/mimeapps.list
//	AppV.URLProtocol           default for x-scheme-handler/<scheme>, as above
//	state and backups          $XDG_DATA_HOME/appv/integration/backups/   StateDir/integration/backups/
//
// Global defaults go to the mimeapps.list of the /usr/local/share data
// directory rather than /etc/xdg/mimeapps.list: everything global publishing
// writes stays under /usr/local (plus the state directory), appv never edits
// a file in /etc, and by the MIME applications specification's order a
// user's own choice and an administrator's /etc/xdg/mimeapps.list still
// override a package, while a package overrides the distribution's
// /usr/share defaults.
//
// For a user everything is read and written through an os.Root on the home:
// a symlink in the home that leads out of it (~/.local/share/applications ->
// /etc), or any absolute symlink on the way (os.Root follows only relative
// ones), makes Integrate fail with ErrSymlinkOut before it writes anything,
// and every file and directory it creates is owned by the user. A
// mimeapps.list that is itself a symlink to a file in the home (a dotfile
// manager's) is written through, keeping the link. The cache tools run as
// the user.
//
// # Names
//
// A package's files are named after the first 8 letters and digits of its
// PackageId (id8), which every version shares, so an upgrade writes over the
// same names and nothing clashes with native files or other packages:
//
//   - a shortcut is appv-<id8>-<name>.desktop, name being the shortcut's
//     file name without .lnk or .desktop, reduced to ASCII letters, digits,
//     '.', '_' and '-'. Entries are never named after the package's own
//     desktop file id (a package sequenced from firefox.desktop would
//     otherwise shadow the native firefox.desktop, silently); the native
//     entry and the package's live side by side.
//   - a file type or URL handler that is not a shortcut is a hidden
//     (NoDisplay) appv-<id8>-<program>-open.desktop (-open-2.desktop… for
//     other command lines of the same program).
//   - an icon is appv-<id8>-<file name> in hicolor's apps context, at the
//     size of its directory in the package (share/icons/hicolor/48x48/…),
//     with the other sizes of the same themed icon the package has; an icon
//     outside a theme goes to the size its PNG or XPM header gives, an SVG
//     to scalable. Windows .ico files are not integrated; an Icon that is
//     not a path is used as an icon name.
//   - the package's new MIME types are in mime/packages/appv-<id8>.xml.
//   - a launcher has the app path's own name: that is the point of an app
//     path, and what App-V's shared ownership below is for.
//
// # Desktop entries
//
// A shortcut's entry has Name (the shortcut's name; for a shortcut that came
// from a desktop entry, the application's display name), Comment (the
// shortcut's or application's description), Icon, Exec = appv launch
// <ApplicationId> -- <arguments>, and X-AppV-PackageId, X-AppV-VersionId and
// X-AppV-ApplicationId. Desktop field codes in the arguments (%f, %U…) pass
// through; App-V's %1 becomes %f (%u for a URL protocol). Menu shortcuts come
// first; a desktop shortcut that launches the same application with the same
// arguments is the same entry (desktops rarely show icons on the desktop);
// startup shortcuts are not integrated. The working directory, hotkey and
// window state of a shortcut have no desktop entry key every desktop reads,
// and are dropped.
//
// A file type association or URL protocol is handled by the shortcut entry of
// its application when that entry takes files (URLs for a protocol): the type
// joins its MimeType. Otherwise a hidden entry runs the verb's command line
// (the default verb, else "open", else the first).
//
// # File types
//
// A file type association's type is its ContentType, else what the host
// calls the extension, else application/x-extension-<ext>. A type the host's
// MIME database does not know is defined (with a comment from the ProgId, a
// generic icon from the PerceivedType and the glob); a known type whose
// extension the host does not map gets the glob. Types the host knows are
// never redefined. Then the type's default application is the handler's
// entry, in [Default Applications], and the entry is added first in [Added
// Associations].
//
// # Backup, restore and ownership
//
// Each place a package integrates into is a point: a file (a launcher, an
// entry, an icon, a MIME package file) or a MIME type's default
// application. The state file records, per point, its owners in the order
// they integrated and what was there before the first of them (the native
// content: a file moved to backups/files/<path>, or the previous default).
// As App-V does:
//
//  1. the package integrated last owns a point, and its content is live;
//  2. when the owner goes, ownership passes back to the previous owner
//     whose content is written again, without restoring anything;
//  3. when the last owner goes, the native content is restored.
//
// What appv wrote is recognised by hash (and launchers by their marker
// comment, entries and MIME files by their first comment, so files of
// packages integrated before the state file existed are recognised too).
// Anything else found at a point, at any time, is native: it is backed up
// (superseding an older backup) and restored when the last owner goes. A
// point changed by someone else since appv wrote it is left as it is when
// its owner goes, and the backup it would have restored is dropped: the
// newer choice wins. The default application is "still ours" when the
// first desktop file id of its value is one a package set.
//
// Integrating a package again (a new version: same PackageId) replaces its
// points: it takes ownership of the points it still has, and releases those
// it no longer has as if deintegrated. Deintegrate reads only the state, so
// it removes exactly what was integrated even if the manifest changed. A
// package integrated by the client's first launchers (before the state
// file) is deintegrated from its manifest's app paths, and its launcher
// backups are adopted.
//
// # Caches and cleanup
//
// After writing, Integrate and Deintegrate run update-desktop-database,
// update-mime-database and (if the theme has a cache already)
// gtk-update-icon-cache on the directories they changed; a missing tool is
// skipped. Directories integration created are removed when they are
// empty again (an applications directory with nothing but mimeinfo.cache
// and a mime directory whose packages are gone count as empty), as are a
// mimeapps.list it created once it holds no key, a mimeinfo.cache that
// appeared for appv's entries once the last of them goes, and the state
// file: once every package is deintegrated, nothing of appv is left.
//
// Callers serialize Integrate and Deintegrate on a target (the client
// service holds its lock); the context bounds the cache tools.
package integration
