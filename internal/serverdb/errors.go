package serverdb

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// opError is every error a DB method returns: "serverdb: op obj: cause".
type opError struct {
	op, obj string
	err     error
}

func (e *opError) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), "serverdb: ")
	if e.obj == "" {
		return "serverdb: " + e.op + ": " + msg
	}
	return "serverdb: " + e.op + " " + e.obj + ": " + msg
}

func (e *opError) Unwrap() error { return e.err }

// reason is a cause with its own words that is one of the sentinel errors.
type reason struct {
	kind error
	msg  string
}

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return r.kind }

func invalidf(format string, args ...any) error {
	return &reason{ErrInvalid, fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error {
	return &reason{ErrNotFound, fmt.Sprintf(format, args...)}
}

func conflictf(format string, args ...any) error {
	return &reason{ErrConflict, fmt.Sprintf(format, args...)}
}

// driverError is a database error sorted into one of the sentinel errors.
type driverError struct {
	kind error
	err  error
}

func (d *driverError) Error() string {
	return strings.TrimPrefix(d.kind.Error(), "serverdb: ") + " (" + d.err.Error() + ")"
}

func (d *driverError) Unwrap() []error { return []error{d.kind, d.err} }

// wrap makes err an opError for op on obj, sorting database errors
// (sql.ErrNoRows, constraint violations) into the sentinel errors.
func (s *store) wrap(op, obj string, err error) error {
	return wrap(s.dialect.classify, op, obj, err)
}

// wrap is store.wrap with the dialect's classify (nil: none). It keeps an
// opError as it is, so that an inner wrap names the innermost object.
func wrap(classify func(error) error, op, obj string, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := errors.AsType[*opError](err); ok {
		return oe
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = ErrNotFound
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrInvalid), errors.Is(err, ErrExpired):
	case classify != nil:
		if kind := classify(err); kind != nil {
			err = &driverError{kind, err}
		}
	}
	return &opError{op, obj, err}
}
