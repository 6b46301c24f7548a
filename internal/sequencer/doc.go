// Package sequencer captures an application's installation into an .appv
// package, as App-V's Sequencer does: the installer runs in an isolated mount
// namespace whose /usr, /opt, /etc, /var, /srv, /tmp and $HOME are overlays
// recording every change; the changes are laid out as a package (the primary
// virtual application directory, VFS folders, deletions, opaque
// directories), its extension points are found in what was installed
// (desktop entries, MIME types, URL handlers, commands on PATH, icons), and
// the blocks each --launch command reads become the primary feature block.
//
// # Phases and their types
//
//	Capture  (capture.go)    installer  -> *Capture  (Changes, installer output)
//	Stage    (layout.go)     *Capture   -> *Staged   (a tree in package layout, deletions, Report)
//	Detect   (extensions.go) *Staged    -> applications and extension points in the manifest
//	Record   (record.go)     *Staged    -> the primary feature block
//	Sequence (sequence.go)   all of it  -> NAME.appv, NAME_DeploymentConfig.xml, NAME_UserConfig.xml, Report.xml
package sequencer

import "io/fs"

// ChangeKind says what the installer did to a path.
type ChangeKind int

// Kinds of change.
const (
	// Added: the path is new or its content or metadata changed (a file,
	// directory or symlink, described by Change.Type).
	Added ChangeKind = iota
	// Deleted: the path existed natively and the installer removed it
	// (an overlay whiteout).
	Deleted
	// Opaque: a directory the installer replaced whole, hiding the native
	// contents (an overlay opaque directory); its new contents are Added.
	Opaque
)

// Change is one path the installer changed.
type Change struct {
	// Path is the native path. Paths in the installer's home start with
	// "~/" (the capture gives the installer a fresh home), so they map to
	// the per-user folders (XdgConfigHome, XdgDataHome, ..., Profile).
	Path string
	Kind ChangeKind
	// Type is the file type bits (0 for a regular file, fs.ModeDir,
	// fs.ModeSymlink, or another type the layout excludes and reports).
	Type fs.FileMode
	// Mode is the permission bits with setuid, setgid and sticky.
	Mode fs.FileMode
	// Target is a symlink's target.
	Target string
	// Source is where the path's content is on disk (in the capture's
	// upper directories), for Added files.
	Source string
	Size   int64
}

// Capture is what an installer changed.
type Capture struct {
	// Changes, sorted by Path.
	Changes []Change
	// ExitCode of the installer, and the last lines of its output.
	ExitCode int
	Output   []string
	// Dir is the capture's workspace (the overlays' upper directories);
	// Close removes it.
	Dir string
}

// Staged is a capture laid out as a package: Dir holds the tree that
// appvpkg.Create packages (its contents become Root/, with Root/VFS/<Folder>/
// for files of known folders).
type Staged struct {
	Dir string
	// PackageRoot is the primary virtual application directory, e.g.
	// /opt/foo.
	PackageRoot string
	// Opaque and Deleted are package paths ("Root/VFS/Etc/foo").
	Opaque, Deleted []string
	// Report lists what was excluded and what may not behave virtualized.
	Report *Report
}

// Severity of a report message, as App-V's Report.xml has them.
type Severity string

// Severities.
const (
	Info    Severity = "Info"
	Warning Severity = "Warning"
	Error   Severity = "Error"
)

// Message is one line of Report.xml.
type Message struct {
	Severity Severity
	// Category groups messages: "Excluded", "Setuid", "KernelModule",
	// "SystemdUnit", "OutsideKnownFolders", "Extension", "Launch", ...
	Category string
	Text     string
	// Path the message is about, if any (native).
	Path string
}

// Report collects the messages of a sequencing run.
type Report struct {
	Messages []Message
}

// Add appends a message.
func (r *Report) Add(sev Severity, category, path, text string) {
	r.Messages = append(r.Messages, Message{Severity: sev, Category: category, Path: path, Text: text})
}
