package appvpkg

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers branch on. Every error returned by this package
// for a malformed package wraps ErrFormat (through *FormatError); a block whose
// content does not match its block-map hash wraps ErrHash as well.
var (
	// ErrFormat reports a package that breaks a rule of the format.
	ErrFormat = errors.New("appvpkg: malformed package")
	// ErrHash reports a block whose content does not hash to its block-map value.
	ErrHash = errors.New("appvpkg: block hash mismatch")
	// ErrNotFound reports a file that the package does not contain.
	ErrNotFound = errors.New("appvpkg: no such file in package")
	// ErrUnsafePath reports a name that is absolute, contains "..", NUL, or
	// would escape its root after token expansion.
	ErrUnsafePath = errors.New("appvpkg: unsafe path")
)

// FormatError describes one broken rule of the package format: which part
// (ZIP entry, block-map file or XML document) broke which rule.
type FormatError struct {
	Part string // package part or file name, e.g. "AppxBlockMap.xml" or "Root/bin/app"
	Rule string // the rule that was broken, in a few words
	Err  error  // optional cause (an XML syntax error, an I/O error...)
}

func (e *FormatError) Error() string {
	msg := "appvpkg: " + e.Part + ": " + e.Rule
	// Sentinels classify the error; they add nothing to read.
	if e.Err != nil && e.Err != ErrUnsafePath && e.Err != ErrHash {
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

// formatErr builds a *FormatError with a formatted rule.
func formatErr(part string, cause error, rule string, args ...any) error {
	return &FormatError{Part: part, Rule: fmt.Sprintf(rule, args...), Err: cause}
}
