package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
)

// maxJSON bounds a JSON request body.
const maxJSON = 1 << 20

type principalKey struct{}

// principalOf returns the authenticated caller of r.
func principalOf(r *http.Request) serverdb.Principal {
	p, _ := r.Context().Value(principalKey{}).(serverdb.Principal)
	return p
}

// routes builds the handler: authentication first, then the routes.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// GET patterns answer HEAD too.
	mux.HandleFunc("GET /{$}", s.servePublishing)
	mux.HandleFunc("GET /config/{package}/{kind}", s.serveConfig)
	mux.HandleFunc("GET /content/{file}", s.serveContent)
	s.apiRoutes(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r.Context(), r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// httpError is a refusal with its status and a message for the caller.
type httpError struct {
	status int
	msg    string
	code   string // api.Code…
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

func badPackage(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...), code: api.CodeBadPackage}
}

// status sorts an error into the status and message the caller gets.
func status(err error) (int, string, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg, he.code
	case errors.Is(err, errUnauthenticated):
		return http.StatusUnauthorized, err.Error(), ""
	}
	msg := strings.TrimPrefix(err.Error(), "serverdb: ")
	switch {
	case errors.Is(err, serverdb.ErrNotFound):
		return http.StatusNotFound, msg, ""
	case errors.Is(err, serverdb.ErrConflict):
		return http.StatusConflict, msg, ""
	case errors.Is(err, serverdb.ErrInvalid):
		return http.StatusBadRequest, msg, ""
	case errors.Is(err, serverdb.ErrExpired):
		return http.StatusUnauthorized, msg, ""
	}
	return http.StatusInternalServerError, "internal error: the server's log says more", ""
}

// fail answers a request with err: JSON for the management API, one line
// of text elsewhere.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg, kind := status(err)
	switch {
	case r.Context().Err() != nil:
		return // the caller has gone
	case code >= 500:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	default:
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", msg)
	}
	h := w.Header()
	if code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="appv"`)
	}
	h.Del("Content-Length")
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Set("Cache-Control", "no-store")
	if isAPI(r) {
		writeJSON(w, code, api.Error{Message: msg, Code: kind})
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

func isAPI(r *http.Request) bool {
	return r.URL.Path == api.Prefix || strings.HasPrefix(r.URL.Path, api.Prefix+"/")
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the caller has gone
}

// mediaType returns r's Content-Type without parameters, lower case.
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type")))
	}
	return mt
}

// decodeJSON reads r's body, one JSON value of at most maxJSON bytes, into
// v. Unknown fields, values of the wrong type and anything after the value
// are refused with a 400 that says what is wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt := mediaType(r); mt != "" && mt != "application/json" {
		return badRequest("the body must be JSON (Content-Type: application/json), not %s", mt)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return badRequest("malformed JSON: more data after the JSON object; send one object")
		}
		return badRequest("%s", describeJSONError(err))
	}
	return nil
}

func describeJSONError(err error) string {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooMuch *http.MaxBytesError
		when    *time.ParseError
	)
	switch {
	case errors.As(err, &tooMuch):
		return fmt.Sprintf("the JSON body is larger than %d bytes", tooMuch.Limit)
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("malformed JSON: field %q must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("malformed JSON: the body must be a %s, not a JSON %s", typ.Type, typ.Value)
	case errors.As(err, &when):
		return fmt.Sprintf("malformed JSON: the time %q is not in RFC 3339 form (2030-01-02T15:04:05Z)", when.Value)
	case errors.Is(err, io.EOF):
		return "empty body: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends in the middle of the object"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ") + ", which this request does not take (docs/server.md lists the fields)"
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}
