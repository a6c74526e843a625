// Package clib holds what the binding links by default: a copy of include/redilock.h and, for
// each platform, the static library libredilock_GOOS_GOARCH.a that `make go-dist` writes
// (git-ignored in development; a release commits them). It has no code: it is a package, and
// the binding imports it, so that `go mod vendor` copies this directory.
package clib
