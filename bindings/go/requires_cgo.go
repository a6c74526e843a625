//go:build !cgo

package redilock

// The binding calls the redilock C library, so it cannot be built without cgo (which Go turns
// off when CGO_ENABLED=0 or when it finds no C compiler). Every other file needs cgo; this one
// stops the build with an error whose identifier names the fix.
var _ = redilock_needs_cgo__set_CGO_ENABLED_1_and_install_a_C_compiler
