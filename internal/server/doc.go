// Package server is appv's server: the management API (JSON under
// /api/v1/), App-V's publishing endpoint (GET /), the dynamic configuration
// files publishing documents refer to (/config/<PackageId>/<kind>) and the
// content of uploaded packages (/content/<VersionId>.appv), all behind
// bearer tokens. docs/server.md is the reference of every route; package
// api holds the API's types and a typed client.
//
// # State
//
// Everything is in a serverdb.DB but the content of uploaded packages,
// which lives in DataDir/content as immutable files named by their SHA-256
// (written to a temporary file, synced, verified, renamed into place).
// Several replicas may serve one database and one content directory.
//
// # Caches and their consistency
//
// A refresh should cost almost nothing, so the server keeps, per identity,
// the last publishing document it built, with the serverdb revision tag it
// was built at. Each refresh reads the revision counter (one row) and
// rebuilds the document only when the counter moved; a client whose
// If-None-Match names the document's ETag then gets 304. The counter is in
// the database, so a change made through any replica is seen by every
// replica's next refresh.
//
// Authenticated tokens are cached for Options.TokenCacheTTL (5 s), keyed
// by the SHA-256 of the secret, never past the token's expiry. A revoked
// token, or the tokens of a removed identity, are dropped at once by the
// replica that made the change; other replicas keep accepting them for up
// to the TTL. Only successes are cached, so a new token works at once
// everywhere.
//
// # Lock order
//
// Each cache has one mutex and none is held while another is taken or
// while the database is queried.
package server
